"""``semcom_semantic_decoder``: frame PDUs from ``semcom_ofdm_rx`` -> reconstructed images.

Message handler (the scheduler's thread, cheap numpy only)::

    frame PDU -> checks (analog payload, codec id) -> descriptor frame? decode it (soft Viterbi)
              -> else chunking.Reassembler by (stream id, chunk index), noise_var per symbol
              -> stream complete (or timed out: missing chunks are erasures, noise var inf)
              -> bounded job queue

Worker thread (torch)::

    job -> CodecRuntime.decode per decoder (jscc, cmN, teacher) with the measured SNR
        -> PDU on ``image`` + optional PNG + ``results`` (latest ``keep`` images)

so the RX chain keeps consuming samples while an image decodes (torch releases the GIL in its
kernels). When the queue is full the oldest waiting job is dropped (``dropped_backlog``).

Counted drops (logged once per cause and stream, never raised): ``unknown_codec`` (frame codec
id differs from the loaded checkpoint's), ``wrong_ratio`` (frames of a stream whose descriptor
announces another ratio),
``not_analog``, ``bad_pdu``, ``no_descriptor`` (size unknown and not a square image),
``size_mismatch`` (symbol count differs from what the descriptor/checkpoint implies),
``duplicates`` (chunks received twice), ``decode_errors``.

Output PDU on ``image``: ``pmt.cons(meta, u8vector [H*W*3])`` (uint8 RGB, row-major) with meta
``stream_id``, ``decoder``, ``height``, ``width``, ``snr_db`` (mean of the frames' estimates,
linear average), ``chunk_count``, ``missing_chunks`` (list), ``decode_s``, ``backlog`` and, when
the reference is in ``semcom.imagelink.REFERENCES`` (loopback), ``psnr``, ``ssim``,
``latency_s`` (encode start -> decoded).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pmt
from gnuradio import gr

from ..phy.chunking import Reassembler
from .pdu_utils import PduError, make_pdu, parse_pdu

__all__ = ["semcom_semantic_decoder"]

_COUNTERS = ("frames", "descriptors", "descriptor_crc_fail", "unknown_codec", "wrong_ratio", "not_analog",
             "bad_pdu", "no_descriptor", "size_mismatch", "duplicates", "streams_complete", "streams_timed_out",
             "images_out", "dropped_backlog", "decode_errors")


def _mean_snr_db(values: list[float]) -> float:
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    return float(10 * np.log10(np.mean(10 ** (v / 10)))) if v.size else float("nan")


class semcom_semantic_decoder(gr.basic_block):
    """Frame PDUs in (``in``) -> image PDUs out (``image``), decoded in a worker thread.

    Parameters
    ----------
    config : YAML config path, ``Config`` or "" (defaults): frame (chunk size), model (checkpoint,
        ratio, decoder, nfe, consistency/teacher paths, codec id, device), link.stream_timeout_s.
    checkpoint, ratio : the JSCC checkpoint (as ``semcom_semantic_encoder``).
    decoders : comma-separated decoder names: ``jscc``, ``consistency`` (= ``cm<nfe>``), ``cm1``,
        ``cm2``..., ``teacher``, or ``auto`` (jscc, plus consistency when its checkpoint is there).
        A diffusion decoder needs its checkpoint (``consistency`` / ``teacher`` paths, the config's,
        or shipped ones paired with the JSCC checkpoint's ratio): else ValueError.
    nfe : network evaluations of ``consistency`` (1..16).
    consistency, teacher : diffusion checkpoint paths.
    guidance, guidance_steps, start_sigma : the consistency decoder's knob (posterior-guidance
        strength 0..1, gradient steps 0..3, SDEdit start level, 0 = pure noise); negative = the
        config's ``model.guidance`` / ``guidance_steps`` / ``start_sigma``.
    timeout : seconds after a stream's last chunk before it is decoded with missing chunks as
        erasures (0 = config's ``link.stream_timeout_s``).
    out_dir : write ``<out_dir>/stream<id>_<decoder>.png`` ("" = no files).
    max_backlog : images waiting for the worker (older ones dropped beyond).
    keep : decoded images kept in ``results`` for the caller/GUI.
    codec : an existing ``CodecRuntime`` to share with the encoder (loopback).

    ``checkpoint``, ``ratio``, ``decoders``, ``nfe``, ``consistency``, ``teacher`` left empty ("" / 0)
    take the config's ``model`` section (``semcom.config.with_model``: a parameter wins over the file).
    """

    def __init__(self, config: Any = "", checkpoint: str = "", ratio: str = "", decoders: str = "",
                 nfe: int = 0, timeout: float = 0.0, out_dir: str = "", max_backlog: int = 4, keep: int = 16,
                 consistency: str = "", teacher: str = "", codec=None, guidance: float = -1.0,
                 guidance_steps: int = -1, start_sigma: float = -1.0):
        gr.basic_block.__init__(self, name="semcom_semantic_decoder", in_sig=None, out_sig=None)
        from semcom.config import with_model
        from semcom.imagelink import decoder_names

        from .ofdm_tx import spec_from_config
        from .semantic_encoder import _config, build_codec

        cfg = with_model(_config(config), decoder=decoders or None, nfe=nfe or None,
                         guidance=None if guidance < 0 else float(guidance),
                         guidance_steps=None if guidance_steps < 0 else int(guidance_steps),
                         start_sigma=None if start_sigma < 0 else float(start_sigma))
        if codec is None:
            codec = build_codec(cfg, checkpoint, ratio, consistency, teacher, decoders=cfg.model.decoder)
        self.codec = codec
        names = decoder_names(cfg.model.decoder, cfg.model.nfe, codec.codec.consistency is not None,
                              cfg.model.knob_suffix)
        self.decoders = [codec.check_decoder(d) for d in names]
        self.spec = spec_from_config(cfg.frame)
        self.timeout = float(timeout) or cfg.link.stream_timeout_s
        self.out_dir = Path(out_dir) if out_dir else None
        self.reasm = Reassembler(self.spec.max_payload_symbols)
        self._lock = threading.Lock()
        self._streams: dict[int, dict] = {}  # stream id -> {"desc", "snr": [...], "last": t, "first": t}
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, int(max_backlog)))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.results: deque[dict] = deque(maxlen=max(1, int(keep)))
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self._logged: set[tuple[str, int]] = set()
        self._rejected: dict[int, float] = {}  # stream id -> last frame of a stream refused (wrong ratio)
        self._done: dict[int, float] = {}  # stream id -> when it was handed out (late copies are duplicates)
        self.busy = False
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("image"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    # ------------------------------------------------------------------ threads
    def start(self) -> bool:
        if not any(t.is_alive() for t in self._threads):
            self._stop.clear()
            self._threads = [threading.Thread(target=self._work_loop, name="semcom_decoder_worker", daemon=True),
                             threading.Thread(target=self._timeout_loop, name="semcom_decoder_timer", daemon=True)]
            for t in self._threads:
                t.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(30.0)
        return True

    def backlog(self) -> int:
        """Images waiting for the worker plus the one decoding."""
        return self._jobs.qsize() + int(self.busy)

    def stats(self) -> dict[str, Any]:
        """Counters (see module docstring) plus ``backlog`` and ``pending_streams``."""
        with self._lock:
            d = dict(self.counters)
            d["pending_streams"] = len(self.reasm.pending())
        d["backlog"] = self.backlog()
        return d

    def idle(self) -> bool:
        """No stream pending, nothing queued or decoding."""
        with self._lock:
            pending = bool(self.reasm.pending())
        return not pending and self.backlog() == 0

    # ------------------------------------------------------------------ message handler
    def _drop(self, cause: str, stream_id: int, text: str) -> None:
        self.counters[cause] += 1
        if (cause, stream_id) not in self._logged:  # once per cause and stream: no log floods
            self._logged.add((cause, stream_id))
            if len(self._logged) > 4096:
                self._logged.clear()
            gr.log.warn(f"semcom_semantic_decoder: dropped frame of stream {stream_id}: {text}")

    def _handle(self, msg) -> None:
        try:
            meta, y = parse_pdu(msg)
            sid = int(meta["stream_id"])
            cid = int(meta.get("codec_id", -1))
            idx, cnt = int(meta.get("chunk_index", 0)), int(meta.get("chunk_count", 1))
            flags = int(meta.get("flags", 0))
            nv = np.asarray(meta.get("noise_var", np.zeros(y.size)), np.float32)
        except (KeyError, ValueError, TypeError) as e:
            with self._lock:
                self._drop("bad_pdu", -1, f"not a semcom_ofdm_rx frame PDU ({e})")
            return
        with self._lock:
            self.counters["frames"] += 1
            if not np.iscomplexobj(y) or int(meta.get("payload_kind", 0)) != 0:
                self._drop("not_analog", sid, "digital payload (the semantic decoder takes analog frames)")
                return
            if cid != self.codec.codec_id:
                self._drop("unknown_codec", sid, f"codec id {cid} is not this decoder's {self.codec.codec_id} "
                                                 f"({self.codec.describe()})")
                return
            if nv.shape != y.shape:
                self._drop("bad_pdu", sid, f"noise_var has {nv.size} values for {y.size} symbols")
                return
            now = time.monotonic()
            if sid in self._done and now - self._done[sid] < 2 * self.timeout:
                self.counters["duplicates"] += 1  # a late copy of a stream already handed out
                return
            if sid in self._rejected and now - self._rejected[sid] < 2 * self.timeout:
                self._rejected[sid] = now  # the rest of a stream refused for its ratio
                self.counters["wrong_ratio"] += 1
                return
            self._rejected.pop(sid, None)
            st = self._streams.setdefault(sid, {"desc": None, "snr": [], "first": now, "last": now})
            st["last"] = now
            from semcom.imagelink import DESCRIPTOR_FLAG

            if flags & DESCRIPTOR_FLAG:
                self._descriptor(sid, st, y, nv)
                return
            st["snr"].append(float(meta.get("snr_db", np.nan)))
            dups = self.reasm._streams.get(sid, {}).get("dups", 0)
            try:
                done = self.reasm.add(sid, idx, cnt, y, nv)
            except ValueError as e:
                self._drop("bad_pdu", sid, str(e))
                return
            if done is None and self.reasm._streams.get(sid, {}).get("dups", 0) > dups:
                self.counters["duplicates"] += 1
            if done is not None:
                self.counters["streams_complete"] += 1
                self._finish(done, self._streams.pop(sid))

    def _descriptor(self, sid: int, st: dict, y: np.ndarray, nv: np.ndarray) -> None:
        from semcom.imagelink import decode_descriptor

        d = decode_descriptor(y, nv)
        if d is None:
            self.counters["descriptor_crc_fail"] += 1
            return
        self.counters["descriptors"] += 1
        if d.ratio != self.codec.ratio:
            self._rejected[sid] = time.monotonic()
            if len(self._rejected) > 1024:
                self._rejected = {k: t for k, t in self._rejected.items() if time.monotonic() - t < 2 * self.timeout}
            self._streams.pop(sid, None)
            self.reasm.flush(sid)
            self._drop("wrong_ratio", sid, f"stream announces bandwidth ratio {d.ratio} but the checkpoint is "
                                           f"{self.codec.ratio} ({self.codec.checkpoint})")
            return
        st["desc"] = d

    def _timeout_loop(self) -> None:
        while not self._stop.wait(min(0.1, self.timeout / 4)):
            self.check_timeouts()

    def check_timeouts(self, now: float | None = None) -> int:
        """Hand out streams whose last frame is older than ``timeout`` (missing chunks = erasures); returns how many."""
        now = time.monotonic() if now is None else now
        n = 0
        with self._lock:
            for sid in [s for s, st in self._streams.items() if now - st["last"] > self.timeout]:
                st = self._streams.pop(sid)
                desc = st["desc"]
                for r in self.reasm.flush(sid, total_symbols=desc.n_symbols if desc else None):
                    self.counters["streams_timed_out"] += 1
                    self._finish(r, st)
                    n += 1
        return n

    def _size_for(self, sid: int, st: dict, k: int) -> tuple[int, int] | None:
        d = st["desc"]
        if d is not None:
            if self.codec.num_symbols(d.height, d.width) != k:
                self._drop("size_mismatch", sid, f"{k} symbols, but a {d.width}x{d.height} image at ratio "
                                                 f"{self.codec.ratio} has {self.codec.num_symbols(d.height, d.width)}")
                return None
            return d.height, d.width
        # descriptor lost: a square image is the only size the symbol count alone determines
        s = self.codec.config.stride
        c = self.codec.config.latent_channels
        side = int(round(np.sqrt(2 * k / c)))
        if side * side * c == 2 * k:
            return side * s, side * s
        self._drop("no_descriptor", sid, f"descriptor lost and {k} symbols is not a square image: cannot size it")
        return None

    def _finish(self, r, st: dict) -> None:
        """Queue a reassembled stream for the worker (lock held)."""
        now = time.monotonic()
        self._done[r.stream_id] = now
        if len(self._done) > 1024:
            self._done = {s: t for s, t in self._done.items() if now - t < 2 * self.timeout}
        size = self._size_for(r.stream_id, st, r.symbols.size)
        if size is None:
            return
        job = {"stream_id": r.stream_id, "symbols": r.symbols, "noise_var": r.noise_var, "size": size,
               "snr_db": _mean_snr_db(st["snr"]), "missing": list(r.missing), "chunk_count": r.chunk_count,
               "desc": st["desc"], "t_ready": time.monotonic()}
        while True:
            try:
                self._jobs.put_nowait(job)
                return
            except queue.Full:
                try:
                    self._jobs.get_nowait()
                    self.counters["dropped_backlog"] += 1
                    gr.log.warn("semcom_semantic_decoder: decoder backlog full, dropped the oldest waiting image")
                except queue.Empty:
                    pass

    # ------------------------------------------------------------------ worker
    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            self.busy = True
            try:
                self.decode_job(job)
            except Exception as e:  # noqa: BLE001 - a failing decode must not kill the flowgraph
                self.counters["decode_errors"] += 1
                gr.log.error(f"semcom_semantic_decoder: stream {job['stream_id']}: decoding failed: {e}")
            finally:
                self.busy = False

    def decode_job(self, job: dict) -> list[dict]:
        """Decode one reassembled stream with every configured decoder; publish and keep the results."""
        from semcom.imagelink import REFERENCES, image_metrics, save_png

        ref = REFERENCES.get(job["stream_id"])
        snr = job["snr_db"]
        snr_in = snr if np.isfinite(snr) else (job["desc"].snr_hint_db if job["desc"] else 10.0)
        seed_il = job["desc"].interleave_seed if job["desc"] else None
        out = []
        for name in self.decoders:
            t0 = time.monotonic()
            img = self.codec.decode(job["symbols"], job["noise_var"], snr_in, job["size"], name,
                                    seed=job["stream_id"], interleave_seed=seed_il)
            t1 = time.monotonic()
            res: dict[str, Any] = {"stream_id": job["stream_id"], "decoder": name, "height": img.shape[0],
                                   "width": img.shape[1], "snr_db": snr, "chunk_count": job["chunk_count"],
                                   "missing_chunks": job["missing"], "decode_s": t1 - t0,
                                   "backlog": self._jobs.qsize()}
            if ref is not None and ref[0].shape == img.shape:
                res.update(image_metrics(img, ref[0]))
                res["latency_s"] = t1 - ref[1]
                res["reference"] = ref[2]
            if self.out_dir is not None:
                res["png"] = str(save_png(img, self.out_dir / f"stream{job['stream_id']}_{name}.png"))
            meta = {k: v for k, v in res.items() if v is not None}
            self.message_port_pub(pmt.intern("image"), make_pdu(meta, img.ravel()))
            res["image"] = img
            with self._lock:
                self.counters["images_out"] += 1
            self.results.append(res)
            out.append(res)
        return out


def image_from_pdu(msg) -> tuple[dict, np.ndarray]:
    """An ``image`` PDU -> ``(meta, uint8 [H, W, 3])``."""
    meta, data = parse_pdu(msg)
    h, w = int(meta["height"]), int(meta["width"])
    if data.dtype != np.uint8 or data.size != h * w * 3:
        raise PduError(f"image PDU: expected {h * w * 3} uint8 values, got {data.dtype} [{data.size}]")
    return meta, data.reshape(h, w, 3)
