"""Live receiver view for ``semcom rx --gui`` (pyqtgraph; works offscreen with ``QT_QPA_PLATFORM=offscreen``).

Three panels: the equalised payload symbols of the latest frame (what the decoder gets), the
receiver's SNR estimate per frame, and a status line (frames, mean SNR, overflows). The
receiver runs in a worker thread and hands frames over with ``push`` (a bounded queue: frames are
dropped from the view, never from the receiver, when the GUI lags); a ``QTimer`` refreshes
persistent plot items at 25 Hz. Widgets are touched only from the Qt thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

import numpy as np

__all__ = ["RxMonitor", "run_window"]

MAX_POINTS = 4096  # constellation points drawn per frame
SNR_HISTORY = 500


class RxMonitor:
    """``run(worker)`` shows the window, runs ``worker(monitor)`` in a thread and returns its result
    when it ends (the window then closes; ``png`` saves a screenshot first)."""

    def __init__(self, title: str = "semcom rx"):
        import pyqtgraph as pg  # noqa: PLC0415 (GUI only)
        from PyQt5 import QtWidgets  # noqa: PLC0415

        self._app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self.win = pg.GraphicsLayoutWidget(title=title)
        self.win.resize(900, 400)
        const = self.win.addPlot(title="equalised payload symbols (latest frame)")
        const.setAspectLocked(True)
        const.setRange(xRange=(-2, 2), yRange=(-2, 2))
        self._scatter = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(60, 120, 255, 150))
        const.addItem(self._scatter)
        snr = self.win.addPlot(title="SNR estimate per frame (dB)")
        snr.showGrid(x=True, y=True, alpha=0.3)
        self._curve = snr.plot(pen=pg.mkPen(width=2), symbol="o", symbolSize=4)
        self.win.nextRow()
        self._label = self.win.addLabel("waiting for frames ...", colspan=2)
        self._snr: list[float] = []
        self.frames = 0
        self.status: dict[str, Any] = {}

    def push(self, items: list[tuple[dict, np.ndarray]]) -> None:
        """Worker thread: hand over ``(meta, payload)`` frames (meta needs ``snr_db``)."""
        for item in items:
            try:
                self._queue.put_nowait(item)
            except queue.Full:  # the view lags: drop from the view only
                pass

    def set_status(self, **kw: Any) -> None:
        self.status.update(kw)

    def _refresh(self) -> None:
        latest = None
        while True:
            try:
                meta, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            self.frames += 1
            self._snr.append(float(meta.get("snr_db", np.nan)))
            latest = payload
        if latest is not None:
            z = np.asarray(latest)[:MAX_POINTS]
            self._scatter.setData(z.real, z.imag)
            self._curve.setData(np.asarray(self._snr[-SNR_HISTORY:]))
        snr = np.asarray(self._snr, float)
        mean = f"{np.nanmean(snr):.1f} dB" if snr.size and np.isfinite(snr).any() else "-"
        extra = "  ".join(f"{k} {v}" for k, v in self.status.items())
        self._label.setText(f"frames {self.frames}   mean SNR {mean}   {extra}")

    def run(self, worker: Callable[["RxMonitor"], Any], png: str | None = None) -> Any:
        return run_window(self._app, self.win, self._refresh, lambda: worker(self), png)


def run_window(app, win, refresh: Callable[[], None], worker: Callable[[], Any], png: str | None = None,
               hold: float = 0.0) -> Any:
    """Show ``win``, run ``worker()`` in a thread and ``refresh()`` every 40 ms in the Qt thread;
    ``hold`` seconds after the worker ends (negative: when the user closes the window) save a
    screenshot to ``png`` and close. Returns the worker's result (its exception is re-raised)."""
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
        if hold >= 0 and time.monotonic() - ended[0] >= hold:
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
