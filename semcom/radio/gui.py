"""Live receiver dashboard for ``semcom rx --gui`` (pyqtgraph; works offscreen with ``QT_QPA_PLATFORM=offscreen``).

The dashboard of ``semcom loopback --gui`` (``semcom.loopback_gui.LoopbackDashboard``) fed by a
receiver instead of a loopback flowgraph: spectrum of the received samples, constellation of
the latest frame's equalised payload (and header symbols in GNU Radio mode), the receiver's SNR
estimate per frame, PSNR per decoded image (with a reference), and the latest original |
reconstruction side by side with a status line. The receiver runs in a worker thread and hands
data over with ``push`` / ``push_spectrum`` / ``push_image`` (bounded queues: dropped from the
view, never from the receiver, when the GUI lags); in GNU Radio mode ``attach(tb)`` adds taps
to the ``RadioRx`` flowgraph instead. A ``QTimer`` refreshes persistent plot items at 25 Hz;
widgets are touched only from the Qt thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import numpy as np

from semcom.loopback_gui import FFT, LoopbackDashboard

__all__ = ["RxMonitor", "run_window"]


class RxMonitor(LoopbackDashboard):
    """``run(worker)`` shows the window, runs ``worker(monitor)`` in a thread and returns its result
    when it ends (the window then closes; ``png`` saves a screenshot first)."""

    def __init__(self, title: str = "semcom rx"):
        super().__init__(title)
        self._label.setText("waiting for frames ...")
        # where the original / reconstruction sit in the window, (left, top, right, bottom) pixels
        # (for screenshots: the plot items are gone once the window is closed)
        self.image_regions: dict[str, tuple[int, int, int, int]] = {}

    def _locate_images(self) -> None:
        for name, item in (("original", self._orig), ("reconstruction", self._recon)):
            try:
                if item.image is None or item.scene() is None:  # nothing shown, or the window is closing
                    continue
                r = self.win.mapFromScene(item.mapRectToScene(item.boundingRect())).boundingRect()
            except RuntimeError:  # the Qt object is gone (window closed)
                continue
            self.image_regions[name] = (r.left(), r.top(), r.right(), r.bottom())

    def refresh(self) -> None:
        super().refresh()
        self._locate_images()

    def run(self, worker: Callable[["RxMonitor"], Any], png: str | None = None, hold: float = 0.0,
            stop: threading.Event | None = None) -> Any:
        """As ``LoopbackDashboard.run``; ``image_regions`` is taken again once the screenshot is painted
        (view boxes settle their range when they paint)."""
        return run_window(self._app, self.win, self.refresh, lambda: worker(self), png, hold,
                          after_png=self._locate_images, stop=stop)

    def attach(self, tb) -> None:
        """GNU Radio mode: spectrum tap on the radio source, frame/header taps on ``semcom_ofdm_rx`` (before start)."""
        from semcom.loopback_gui import _tap_blocks

        SpectrumTap, FrameTap = _tap_blocks()
        self._spec_tap = SpectrumTap(self.spectra, period=int(tb.cfg.radio.sample_rate // 10))
        self._frame_tap = FrameTap(self.frames)
        tb.connect(tb.source, self._spec_tap)
        tb.msg_connect(tb.rx, "header_syms", self._frame_tap, "hdr")

    def push(self, items: list[tuple[dict, np.ndarray]]) -> None:
        """Worker thread: hand over ``(meta, payload)`` frames (meta needs ``snr_db``)."""
        for meta, payload in items:
            try:
                self.frames.put_nowait(("in", meta, np.asarray(payload)))
            except queue.Full:  # the view lags: drop from the view only
                pass

    def push_spectrum(self, iq: np.ndarray) -> None:
        """Worker thread: a snapshot of received samples for the spectrum (burst mode: the capture)."""
        x = np.asarray(iq)
        if x.size >= FFT:
            try:
                self.spectra.put_nowait(x[-FFT * 8:].copy())
            except queue.Full:
                pass

    def push_image(self, res: dict, original: np.ndarray | None = None) -> None:
        """Worker thread: a decoded image (``res`` with ``image`` uint8 [H, W, 3], ``stream_id``, ``decoder``,
        optional ``psnr``) and the original it is compared with (None: unknown)."""
        self.on_result(res, original)

    def set_status(self, **kw: Any) -> None:
        self.status.update(kw)


def run_window(app, win, refresh: Callable[[], None], worker: Callable[[], Any], png: str | None = None,
               hold: float = 0.0, after_png: Callable[[], None] | None = None,
               stop: threading.Event | None = None) -> Any:
    """Show ``win``, run ``worker()`` in a thread and ``refresh()`` every 40 ms in the Qt thread;
    ``hold`` seconds after the worker ends (negative: when the user closes the window) save a
    screenshot to ``png`` (then call ``after_png()``) and close. Returns the worker's result (its
    exception is re-raised).

    ``stop``: once set (e.g. by ``semcom.stopsignals.StopOnSignals`` on SIGINT / SIGTERM, whose
    handler runs at the next ``refresh``) the window closes as soon as the worker ends, whatever
    ``hold`` says; the worker is expected to watch the same event and return early."""
    import time

    from PyQt5 import QtCore  # noqa: PLC0415

    result: dict[str, Any] = {}

    def body() -> None:
        try:
            result["value"] = worker()
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            result["error"] = e

    thread = threading.Thread(target=body, name="semcom-gui-worker", daemon=True)
    timer = QtCore.QTimer()
    timer.timeout.connect(refresh)
    timer.start(40)
    ended: list[float] = []

    def check_done() -> None:
        if thread.is_alive():
            return
        if not ended:
            ended.append(time.monotonic())
            refresh()
            if png:
                win.grab().save(png)
                if after_png is not None:
                    after_png()
        if (stop is not None and stop.is_set()) or (hold >= 0 and time.monotonic() - ended[0] >= hold):
            timer.stop()  # pyqtgraph's close() deletes the plot items: no refresh after it
            done.stop()
            win.close()
            app.quit()

    done = QtCore.QTimer()
    done.timeout.connect(check_done)
    done.start(100)
    win.show()
    thread.start()
    app.exec_()
    timer.stop()
    done.stop()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
