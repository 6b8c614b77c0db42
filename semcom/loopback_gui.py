"""Live dashboard for ``semcom loopback --gui`` (pyqtgraph; works offscreen with ``QT_QPA_PLATFORM=offscreen``).

Panels: spectrum of the received samples (Welch average of the latest snapshots), constellation
of the latest frame's equalised payload (blue) and header (orange) symbols, SNR estimate per
frame, PSNR per decoded image, and the latest original / reconstructed images side by side with
a status line. The flowgraph runs in a worker thread (``run_image_loopback``); GNU Radio blocks
hand data over through bounded queues (dropped from the view, never from the link, when the GUI
lags) and a ``QTimer`` refreshes persistent items at 25 Hz. Widgets are touched only from the
Qt thread.

SIGINT / SIGTERM stop the run cleanly (no traceback from inside a Qt slot): the loopback stops
sending, the window closes, the summary and the report (``--out``) are written and the exit
status is 130 / 143. Without a display (``DISPLAY``, ``WAYLAND_DISPLAY`` and ``QT_QPA_PLATFORM``
all unset on Linux) ``check_display`` refuses with one line before Qt is touched (Qt itself
would abort the process).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from typing import Any

import numpy as np

__all__ = ["LoopbackDashboard", "run_gui", "check_display"]


def check_display() -> None:
    """Raise ``ValueError`` (one line) when Qt would find no display to open a window on.

    On Linux / BSD, with none of ``DISPLAY``, ``WAYLAND_DISPLAY`` or ``QT_QPA_PLATFORM`` set,
    Qt's xcb plugin aborts the whole process (SIGABRT) instead of raising; call this first.
    """
    if sys.platform.startswith(("win", "darwin")):
        return
    if any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return
    raise ValueError("--gui needs a display and none is set (DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM are "
                     "unset): run under `xvfb-run -a`, or set QT_QPA_PLATFORM=offscreen to draw without a window "
                     "(with --out, DIR/dashboard.png keeps the picture)")

FFT = 256
MAX_POINTS = 3072


def _tap_blocks():
    """GNU Radio taps built lazily (this module imports without GNU Radio)."""
    import pmt
    from gnuradio import gr

    from semcom.blocks.gr.pdu_utils import parse_pdu

    class SpectrumTap(gr.sync_block):
        """Complex samples in; keeps a snapshot of ``FFT * 8`` samples every ``period`` samples (no output)."""

        def __init__(self, sink: queue.Queue, period: int = 50_000):
            gr.sync_block.__init__(self, name="semcom_spectrum_tap", in_sig=[np.complex64], out_sig=None)
            self.sink, self.period, self._next = sink, int(period), 0

        def work(self, input_items, output_items):
            x = input_items[0]
            n0 = self.nitems_read(0)
            if n0 + len(x) >= self._next and len(x) >= FFT:
                try:
                    self.sink.put_nowait(np.array(x[: FFT * 8]))
                except queue.Full:
                    pass
                self._next = n0 + len(x) + self.period
            return len(x)

    class FrameTap(gr.basic_block):
        """Message sink: ``(kind, meta, symbols)`` for frames (``in``) and header symbols (``hdr``)."""

        def __init__(self, sink: queue.Queue):
            gr.basic_block.__init__(self, name="semcom_frame_tap", in_sig=None, out_sig=None)
            self.sink = sink
            for port, handler in (("in", self._frame), ("hdr", self._header)):  # bound methods: GR looks them up by name
                self.message_port_register_in(pmt.intern(port))
                self.set_msg_handler(pmt.intern(port), handler)

        def _frame(self, msg):
            self._put("in", msg)

        def _header(self, msg):
            self._put("hdr", msg)

        def _put(self, kind, msg):
            try:
                meta, y = parse_pdu(msg)
                self.sink.put_nowait((kind, meta, y))
            except (queue.Full, ValueError):
                pass

    return SpectrumTap, FrameTap


def _set_curve(curve, values: list[float]) -> None:
    """Line + symbols; symbols only below two points (pyqtgraph 0.13.1 fails to draw a one-point line)."""
    import pyqtgraph as pg

    curve.setData(np.asarray(values, float), pen=pg.mkPen(width=2) if len(values) >= 2 else None)


class LoopbackDashboard:
    """The window. ``run(worker)`` runs ``worker(dashboard)`` in a thread and returns its result."""

    def __init__(self, title: str = "semcom loopback"):
        check_display()  # before Qt: without a display it aborts the process
        import pyqtgraph as pg
        from PyQt5 import QtWidgets

        self._app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
        self.spectra: queue.Queue = queue.Queue(maxsize=8)
        self.frames: queue.Queue = queue.Queue(maxsize=256)
        self.images: queue.Queue = queue.Queue(maxsize=32)
        self.win = pg.GraphicsLayoutWidget(title=title)
        self.win.resize(1200, 800)
        spec = self.win.addPlot(title="received spectrum (dB)")
        self._spec = spec.plot(pen=pg.mkPen(width=1))
        const = self.win.addPlot(title="latest frame: payload (blue) / header (orange) symbols")
        const.setAspectLocked(True)
        const.setRange(xRange=(-2.5, 2.5), yRange=(-2.5, 2.5))
        self._pay = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(60, 120, 255, 120))
        self._hdr = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(255, 150, 30, 200))
        const.addItem(self._pay)
        const.addItem(self._hdr)
        self.win.nextRow()
        snr = self.win.addPlot(title="SNR estimate per frame (dB)")
        snr.showGrid(x=True, y=True, alpha=0.3)
        self._snr_curve = snr.plot(pen=pg.mkPen(width=2), symbol="o", symbolSize=3)
        ps = self.win.addPlot(title="PSNR per decoded image (dB)")
        ps.showGrid(x=True, y=True, alpha=0.3)
        ps.setLabel("bottom", "image")
        ps.addLegend(offset=(-10, 10))
        self._psnr_plot = ps  # one curve per decoder (``_plot_psnr``), created when it first shows up
        self._psnr_curves: dict[str, Any] = {}
        self.win.nextRow()
        v1 = self.win.addViewBox(lockAspect=True, invertY=True)
        v2 = self.win.addViewBox(lockAspect=True, invertY=True)
        self._orig = pg.ImageItem(axisOrder="row-major")
        self._recon = pg.ImageItem(axisOrder="row-major")
        v1.addItem(self._orig)
        v2.addItem(self._recon)
        self.win.nextRow()
        self._label = self.win.addLabel("waiting for images ...", colspan=2)
        self._snr: list[float] = []
        self._psnr: dict[str, tuple[list[int], list[float]]] = {}  # decoder -> (image index, PSNR dB)
        self._image_index: dict[int, int] = {}  # stream id -> image index (order of first decoded result)
        self.n_frames = 0
        self.shown: list[dict] = []  # every decoded result handed to the view (without its image)
        self.displayed: np.ndarray | None = None  # the reconstruction on screen now
        self.status: dict[str, Any] = {}

    # ------------------------------------------------------------------ producer side (any thread)
    def setup(self, tb) -> None:
        """Connect the taps to a loopback top block (before it starts)."""
        SpectrumTap, FrameTap = _tap_blocks()
        self._spec_tap = SpectrumTap(self.spectra)
        self._frame_tap = FrameTap(self.frames)
        tb.connect(tb.channel if tb.channel is not None else tb.tx, self._spec_tap)
        tb.msg_connect(tb.rx, "out", self._frame_tap, "in")
        tb.msg_connect(tb.rx, "header_syms", self._frame_tap, "hdr")

    def on_result(self, res: dict, original: np.ndarray | None = None) -> None:
        try:
            self.images.put_nowait((res, original))
        except queue.Full:
            pass

    # ------------------------------------------------------------------ Qt thread
    def refresh(self) -> None:
        spec = None
        while True:
            try:
                spec = self.spectra.get_nowait()
            except queue.Empty:
                break
        if spec is not None:
            segs = spec[: (spec.size // FFT) * FFT].reshape(-1, FFT)
            p = np.mean(np.abs(np.fft.fftshift(np.fft.fft(segs * np.hanning(FFT), axis=1), axes=1)) ** 2, axis=0)
            self._spec.setData(np.linspace(-0.5, 0.5, FFT, endpoint=False), 10 * np.log10(p + 1e-12))
        pay = hdr = None
        while True:
            try:
                kind, meta, y = self.frames.get_nowait()
            except queue.Empty:
                break
            if kind == "in":
                self.n_frames += 1
                self._snr.append(float(meta.get("snr_db", np.nan)))
                pay = y
            else:
                hdr = y
        if pay is not None:
            z = pay[:MAX_POINTS]
            self._pay.setData(z.real, z.imag)
            _set_curve(self._snr_curve, self._snr[-500:])
        if hdr is not None:
            self._hdr.setData(hdr.real, hdr.imag)
        latest = None
        while True:
            try:
                latest = self.images.get_nowait()
            except queue.Empty:
                break
            self.shown.append({k: v for k, v in latest[0].items() if k != "image"})
            if "psnr" in latest[0]:
                self._add_psnr(latest[0])
        if latest is not None:
            res, orig = latest
            if orig is not None:
                self._orig.setImage(orig, levels=(0, 255))
            self._recon.setImage(res["image"], levels=(0, 255))
            self._plot_psnr()
            self.displayed = res["image"]
            self.status.update(last=f"stream {res['stream_id']} [{res['decoder']}] "
                                    + (f"PSNR {res['psnr']:.2f} dB" if "psnr" in res else ""))
        snr = np.asarray(self._snr, float)
        mean = f"{np.nanmean(snr):.1f} dB" if snr.size and np.isfinite(snr).any() else "-"
        extra = "   ".join(f"{k} {v}" for k, v in self.status.items())
        self._label.setText(f"frames {self.n_frames}   mean SNR {mean}   images {len(self.shown)}   {extra}")

    def _add_psnr(self, res: dict) -> None:
        """Record ``res["psnr"]`` (dB) of decoder ``res["decoder"]`` at the index of image ``res["stream_id"]``."""
        x = self._image_index.setdefault(int(res.get("stream_id", len(self._image_index))), len(self._image_index))
        xs, ys = self._psnr.setdefault(str(res.get("decoder", "")), ([], []))
        xs.append(x)
        ys.append(float(res["psnr"]))

    def _plot_psnr(self) -> None:
        """One line per decoder over the image index: two decoders of one image share an x, never a line."""
        import pyqtgraph as pg

        for i, (dec, (xs, ys)) in enumerate(self._psnr.items()):
            curve = self._psnr_curves.get(dec)
            color = pg.intColor(i, hues=8)
            if curve is None:
                curve = self._psnr_curves[dec] = self._psnr_plot.plot(symbol="o", symbolSize=5, symbolBrush=color,
                                                                       symbolPen=None, name=dec or "-")
            # symbols only below two points (pyqtgraph 0.13.1 fails to draw a one-point line)
            curve.setData(np.asarray(xs, float), np.asarray(ys, float),
                          pen=pg.mkPen(color, width=2) if len(xs) >= 2 else None)

    def run(self, worker, png: str | None = None, hold: float = 0.0, stop: threading.Event | None = None) -> Any:
        """Show the window, run ``worker(self)`` in a thread; close ``hold`` seconds after it ends
        (0: at once; negative: when the user closes the window; at once when ``stop`` is set), saving
        a screenshot to ``png`` first."""
        from semcom.radio.gui import run_window

        return run_window(self._app, self.win, self.refresh, lambda: worker(self), png, hold, stop=stop)


def run_gui(cfg, images, codec, snr_hint: float, decoders: str, nfe: int, args) -> int:
    """``semcom loopback --gui``: the image loopback with the dashboard; prints the usual summary.

    Exit status 0 when every image was decoded, 1 otherwise, 130 / 143 after SIGINT / SIGTERM
    (the summary and the report are written first; ``report["stopped_by"]`` names the signal).
    """
    from pathlib import Path

    from semcom.loopback_image import print_image_summary, run_image_loopback, save_outputs
    from semcom.stopsignals import StopOnSignals

    dash = LoopbackDashboard()
    originals: dict[int, np.ndarray] = {}

    with StopOnSignals() as stop:  # until the report is written
        def worker(d: LoopbackDashboard):
            def on_result(res):
                from semcom.imagelink import REFERENCES

                ref = REFERENCES.get(res["stream_id"])
                d.on_result(res, ref[0] if ref is not None else originals.get(res["stream_id"]))

            return run_image_loopback(cfg, images, codec, snr_hint, decoders=decoders, nfe=nfe,
                                      timeout=args.timeout, interval=0.5, on_result=on_result, setup=d.setup,
                                      stop=stop.event)

        png = str(Path(args.out) / "dashboard.png") if args.out else None
        if png:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        report = dash.run(worker, png=png, hold=getattr(args, "gui_hold", -1.0), stop=stop.event)
        if stop.name:
            report["stopped_by"] = stop.name
            print(f"semcom loopback: {stop.name}: stopped after {report['images_sent']} image(s) sent, "
                  f"{len(report['results'])} decoded", file=sys.stderr, flush=True)
        print_image_summary(report)
        if args.out:
            files = save_outputs(report, Path(args.out))
            print(f"  figure: {files['figure']}\n  dashboard: {png}\n  report: {files['report']}", flush=True)
    if stop.name:
        return stop.exit_status
    return 0 if len(report["results"]) >= report["images_sent"] * len(report["codec"]["decoders"]) else 1
