"""Images over a radio: what ``semcom tx --image`` sends and ``semcom rx --decode`` rebuilds.

The wire format is the one of the GNU Radio blocks (``semcom_semantic_encoder`` /
``semcom_semantic_decoder``, see ``semcom.imagelink``), so either end may be a GRC flowgraph:
per image one *descriptor* frame (header flag ``DESCRIPTOR_FLAG``, chunk 0 of 1: codec id, image
size, bandwidth ratio, SNR hint, symbol count, interleaver seed) then the analog payload frames,
all with the image's stream id and the codec id in every header.

* ``load_codec`` / ``CodecSet``: the JSCC checkpoint of ``model.checkpoint`` or of the ratio
  (``--ratio``, else ``model.ratio``); a receiver follows the ratio each stream announces unless
  ``--ratio`` or ``model.checkpoint`` fixes it.
* ``encode_images``: images -> *sends* ``(symbols, meta)`` (what ``RadioTx.send(data, **meta)``
  takes and ``semcom.radio.link.waveform_of`` modulates) plus a plan row per image.
* ``ImageReceiver``: received frames (header record, payload, per-symbol noise variance) ->
  reassembled streams (missing chunks erased, duplicates dropped) -> decoded images with the
  receiver's SNR estimate, PSNR/SSIM against a reference, PNG files.

torch is imported only when a checkpoint is loaded (``semcom.imagelink.CodecRuntime``).
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

from semcom.imagelink import DESCRIPTOR_FLAG, DESCRIPTOR_SYMBOLS, Descriptor, decode_descriptor, encode_descriptor

__all__ = ["StreamError", "load_codec", "CodecSet", "encode_images", "image_plan", "ImageReceiver"]

_LOADED: dict[tuple, Any] = {}  # CodecRuntime per (checkpoints, codec id, device): a process loads each once


class StreamError(ValueError):
    """One received image stream cannot be decoded (wrong codec id or ratio, no checkpoint, unsizable)."""


def load_codec(cfg, ratio: str | None = None, consistency: str = "", teacher: str = ""):
    """The ``CodecRuntime`` of ``model.checkpoint`` (if set) or of the shipped/trained JSCC for ``ratio``
    (None: ``model.ratio``).

    Codec id: ``model.codec_id`` (0: derived from the checkpoint, the same at both ends).
    Raises ``FileNotFoundError`` (no checkpoint, with how to train one) or ``ValueError`` when an
    explicit ``ratio`` (``--ratio``) contradicts ``model.checkpoint`` (``model.ratio`` does not: a
    checkpoint carries its own ratio). Loaded runtimes are kept for the process (inference only,
    so a transmitter and a receiver in one process share them).
    """
    from semcom.imagelink import CodecRuntime, find_checkpoint

    ckpt = find_checkpoint(ratio or cfg.model.ratio, cfg.model.checkpoint)
    key = (str(ckpt.resolve()), str(consistency or ""), str(teacher or ""), cfg.model.codec_id, cfg.model.device)
    if key not in _LOADED:
        _LOADED[key] = CodecRuntime(ckpt, consistency or "", teacher or "", cfg.model.codec_id, cfg.model.device)
    codec = _LOADED[key]
    if ratio is not None and cfg.model.checkpoint and Fraction(str(ratio)) != codec.ratio:
        raise ValueError(f"--ratio {ratio}: model.checkpoint {ckpt} is ratio {codec.ratio}")
    return codec


class CodecSet:
    """The codecs a receiver decodes with, one per bandwidth ratio, loaded on first use.

    ``ratio`` (``--ratio``) or ``model.checkpoint`` fixes the codec: a stream announcing another
    ratio is refused with a ``StreamError`` saying so. Without either, the codec follows the ratio
    each stream's descriptor announces (``find_checkpoint(ratio)``), ``model.ratio`` for a stream
    whose descriptor was lost. ``decoders`` (names or a spec; None: ``model.decoder`` with
    ``model.nfe``), ``consistency``/``teacher`` paths (None: ``model.consistency``/``model.teacher``)
    go with the first codec; for it and for other ratios the shipped/trained diffusion checkpoints
    paired with the JSCC checkpoint's own ratio are used when a decoder needs them
    (``semcom.imagelink.extra_checkpoints``).
    """

    def __init__(self, cfg, decoders: list[str] | str | None = None, ratio: str | None = None,
                 consistency: str | None = None, teacher: str | None = None):
        from semcom.imagelink import checkpoint_ratio, decoder_names, find_checkpoint

        m = cfg.model
        self.cfg = cfg
        self._spec = m.decoder if decoders is None else decoders
        self.fixed = bool(ratio or m.checkpoint)
        self._extra = {"consistency": consistency or m.consistency or "", "teacher": teacher or m.teacher or ""}
        own = checkpoint_ratio(find_checkpoint(ratio or m.ratio, m.checkpoint)) or (ratio or m.ratio)
        paths = self._paths(own, explicit=True)
        self.decoders = decoder_names(self._spec, m.nfe, bool(paths[0]), m.knob_suffix)
        first = load_codec(cfg, ratio, *paths)
        for d in self.decoders:  # a decoder without its checkpoint fails here, before any device is touched
            first.check_decoder(d)
        self.default = first
        self._by_ratio = {first.ratio: first}

    def _paths(self, ratio, explicit: bool) -> tuple[str, str]:
        """(consistency, teacher) for a codec of ``ratio``: the first codec (``explicit``) gets the given paths
        and what the decoder spec needs; later ones what the decoders chosen for the first need."""
        from semcom.imagelink import extra_checkpoints

        if explicit:
            return extra_checkpoints(ratio, self._spec, self._extra["consistency"], self._extra["teacher"])
        return extra_checkpoints(ratio, self.decoders)

    def loaded(self) -> list:
        return list(self._by_ratio.values())

    def for_ratio(self, ratio: Fraction):
        """The codec for a stream announcing ``ratio``; ``StreamError`` when it cannot be had."""
        if ratio in self._by_ratio:
            return self._by_ratio[ratio]
        if self.fixed:
            raise StreamError(f"the stream announces bandwidth ratio {ratio}, but the receiver is set to "
                              f"{self.default.describe()} (drop --ratio / model.checkpoint to follow the "
                              f"announced ratio)")
        try:
            codec = load_codec(self.cfg, str(ratio), *self._paths(ratio, explicit=False))
            for d in self.decoders:
                codec.check_decoder(d)
        except (FileNotFoundError, ValueError) as e:
            raise StreamError(f"the stream announces bandwidth ratio {ratio}: {e}") from None
        self._by_ratio[ratio] = codec
        return codec

    def for_stream(self, desc: Descriptor | None, codec_id: int):
        """The codec of a stream (its descriptor, else the codec id of its frames), checked against that id."""
        if desc is not None:
            codec = self.for_ratio(desc.ratio)
        else:
            codec = next((c for c in self.loaded() if c.codec_id == codec_id), self.default)
        if codec.codec_id != codec_id:
            raise StreamError(f"its frames announce codec id {codec_id}, but {codec.describe()} has codec id "
                              f"{codec.codec_id}: the transmitter used another checkpoint or model.codec_id; "
                              f"give the receiver the same (--set model.checkpoint=PATH / --set model.codec_id=N)")
        return codec


# ---------------------------------------------------------------------- transmitter side
def _frames_of(spec, n_symbols: int) -> list[int]:
    """Payload sizes of the frames of one image: the descriptor, then the chunks of ``n_symbols``."""
    from semcom.blocks.phy.chunking import split_chunks

    return [DESCRIPTOR_SYMBOLS] + [b - a for a, b in split_chunks(n_symbols, spec.max_payload_symbols)]


def image_plan(cfg, codec, images: list[tuple[np.ndarray, str]], first_stream_id: int) -> list[dict]:
    """What sending ``images`` takes, without encoding: per image stream id, size, symbols, frames, samples."""
    rows = []
    for i, (img, name) in enumerate(images):
        h, w = img.shape[:2]
        k = codec.num_symbols(h, w)
        sizes = _frames_of(cfg.frame, k)
        rows.append({"image": name, "stream_id": (first_stream_id + i) & 0xFFFF, "size": f"{w}x{h}", "symbols": k,
                     "frames": len(sizes), "samples": sum(cfg.frame.frame_len(n) for n in sizes)})
    return rows


def encode_images(cfg, codec, images: list[tuple[np.ndarray, str]], snr_hint_db: float,
                  first_stream_id: int) -> tuple[list[tuple[np.ndarray, dict]], list[dict]]:
    """Encode ``images`` (uint8 ``[H, W, 3]``, name) -> ``(sends, rows)``.

    ``sends``: per image the descriptor ``(BPSK symbols complex64 [DESCRIPTOR_SYMBOLS], meta with
    chunk 0/1 and DESCRIPTOR_FLAG)`` then the payload ``(air-order symbols complex64 [k], meta)``;
    stream ids ``first_stream_id + i`` (mod 65536). ``rows``: ``image_plan`` rows plus ``encode_s``.
    """
    sends: list[tuple[np.ndarray, dict]] = []
    rows = image_plan(cfg, codec, images, first_stream_id)
    for (img, _), row in zip(images, rows):
        t0 = time.perf_counter()
        z = codec.encode(img, snr_hint_db)
        row["encode_s"] = time.perf_counter() - t0
        desc = Descriptor(codec.codec_id, img.shape[0], img.shape[1], codec.ratio, snr_hint_db, int(z.size),
                          codec.interleave_seed)
        meta = {"stream_id": row["stream_id"], "codec_id": codec.codec_id, "kind": "analog"}
        sends.append((encode_descriptor(desc), dict(meta, chunk_index=0, chunk_count=1, flags=DESCRIPTOR_FLAG)))
        sends.append((z, meta))
    return sends, rows


# ---------------------------------------------------------------------- receiver side
def _mean_snr_db(values: list[float]) -> float:
    """Mean of dB values taken in linear power (NaN when none is finite)."""
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    return float(10 * np.log10(np.mean(10 ** (v / 10)))) if v.size else float("nan")


def _square_size(codec, k: int) -> tuple[int, int] | None:
    """(H, W) of a square image of ``k`` symbols (the only size ``k`` alone determines), else None."""
    c, s = codec.config.latent_channels, codec.config.stride
    side = int(round(math.sqrt(2 * k / c)))
    return (side * s, side * s) if side * side * c == 2 * k else None


class ImageReceiver:
    """Received frames -> decoded images.

    Parameters
    ----------
    codecs : ``CodecSet``.
    chunk_size : ``frame.max_payload_symbols`` (places the chunks).
    timeout_s : a stream whose last frame is older than this is decoded as it is (missing chunks
        erased: zeros with infinite noise variance); a complete stream waits this long for a
        descriptor that has not arrived yet (a cyclic capture can start after it).
    references : ``(uint8 [H, W, 3], name)`` per stream, in order from ``first_stream_id`` (the
        order ``semcom tx --image`` sends them): PSNR/SSIM when the sizes agree.
    png_base : write ``<png_base>_stream<id>_<decoder>.png`` (None: no files).
    clock : seconds (``time.monotonic``); tests pass their own.

    ``add`` takes one frame: its record (``stream_id``, ``chunk_index``, ``chunk_count``,
    ``codec_id``, ``flags``, ``payload_kind``, ``snr_db``), payload complex ``[n]`` and noise
    variance float ``[n]``. ``poll`` decodes what is ready, ``finish`` everything left. A frame of
    a stream decoded within the last ``2 * timeout_s`` is a duplicate (cyclic buffers, repeats).
    Results (``results``) and refused streams (``errors``: stream id + message) accumulate.
    """

    COUNTERS = ("frames", "descriptors", "descriptor_crc_fail", "not_analog", "bad_chunk", "duplicates")

    def __init__(self, codecs: CodecSet, chunk_size: int, timeout_s: float,
                 references: list[tuple[np.ndarray, str]] | None = None, first_stream_id: int = 0,
                 png_base: str | Path | None = None, clock: Callable[[], float] = time.monotonic):
        from semcom.blocks.phy.chunking import Reassembler

        self.codecs = codecs
        self.decoders = codecs.decoders
        self.reasm = Reassembler(chunk_size)
        self.timeout = float(timeout_s)
        self.references = list(references or [])
        self.first_stream_id = int(first_stream_id)
        self.png_base = str(png_base) if png_base else None
        self.clock = clock
        self._streams: dict[int, dict[str, Any]] = {}
        self._done: dict[int, float] = {}
        self.results: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.counters = dict.fromkeys(self.COUNTERS, 0)

    # ------------------------------------------------------------------ frames in
    def add(self, rec: dict, payload: np.ndarray, noise_var: np.ndarray | float, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.counters["frames"] += 1
        sid = int(rec["stream_id"])
        if int(rec.get("payload_kind", 0)) != 0 or not np.iscomplexobj(payload):
            self.counters["not_analog"] += 1
            return
        if now - self._done.get(sid, -math.inf) < 2 * self.timeout:
            self.counters["duplicates"] += 1
            return
        st = self._streams.setdefault(sid, {"desc": None, "codec_ids": {}, "snr": [], "chunks": set(),
                                            "stream": None, "last": now})
        st["last"] = now
        cid = int(rec.get("codec_id", 0))
        st["codec_ids"][cid] = st["codec_ids"].get(cid, 0) + 1
        y = np.asarray(payload, np.complex64).ravel()
        nv = np.broadcast_to(np.asarray(noise_var, np.float32), y.shape)
        if int(rec.get("flags", 0)) & DESCRIPTOR_FLAG:
            d = decode_descriptor(y, nv)
            self.counters["descriptors" if d is not None else "descriptor_crc_fail"] += 1
            st["desc"] = d or st["desc"]
            return
        idx, cnt = int(rec.get("chunk_index", 0)), int(rec.get("chunk_count", 1))
        if st["stream"] is not None or idx in st["chunks"]:
            self.counters["duplicates"] += 1
            return
        try:
            done = self.reasm.add(sid, idx, cnt, y, nv)
        except ValueError:  # chunk index outside chunk count
            self.counters["bad_chunk"] += 1
            return
        st["chunks"].add(idx)
        st["snr"].append(float(rec.get("snr_db", np.nan)))
        if done is not None:
            st["stream"] = done

    def pending(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------------ images out
    def poll(self, now: float | None = None, final: bool = False) -> list[dict]:
        """Decode the streams that are ready (complete with their descriptor, or idle ``timeout_s``;
        all with ``final``); returns the new results (refused streams go to ``errors``)."""
        now = self.clock() if now is None else now
        new: list[dict] = []
        for sid in list(self._streams):
            st = self._streams[sid]
            idle = now - st["last"] > self.timeout
            if not (final or idle or (st["stream"] is not None and st["desc"] is not None)):
                continue
            del self._streams[sid]
            self._done[sid] = now
            stream = st["stream"]
            if stream is None:
                desc = st["desc"]
                flushed = self.reasm.flush(sid, total_symbols=desc.n_symbols if desc else None)
                if not flushed:
                    self._refuse(sid, "only its descriptor arrived (no payload frame)")
                    continue
                stream = flushed[0]
            try:
                new.extend(self._decode(sid, st, stream, now))
            except StreamError as e:
                self._refuse(sid, str(e))
        self._done = {s: t for s, t in self._done.items() if now - t < 2 * self.timeout}
        return new

    def finish(self) -> list[dict]:
        """Decode every stream still pending (missing chunks erased)."""
        return self.poll(final=True)

    def _refuse(self, sid: int, why: str) -> None:
        self.errors.append({"stream_id": sid, "error": f"stream {sid}: {why}"})

    def reference(self, sid: int) -> tuple[np.ndarray, str] | None:
        i = (sid - self.first_stream_id) & 0xFFFF
        return self.references[i] if i < len(self.references) else None

    def _decode(self, sid: int, st: dict, stream, t_ready: float) -> list[dict]:
        from semcom.imagelink import image_metrics, save_png

        desc: Descriptor | None = st["desc"]
        cid = max(st["codec_ids"], key=st["codec_ids"].get)
        codec = self.codecs.for_stream(desc, cid)
        k = stream.symbols.size
        if desc is not None:
            size = (desc.height, desc.width)
            if codec.num_symbols(*size) != k:
                raise StreamError(f"{k} symbols, but a {desc.width}x{desc.height} image at ratio {codec.ratio} has "
                                  f"{codec.num_symbols(*size)}")
        else:
            size = _square_size(codec, k)
            if size is None:
                raise StreamError(f"descriptor lost and {k} symbols is not a square image: cannot size it")
        snr = _mean_snr_db(st["snr"])
        snr_in = snr if np.isfinite(snr) else (desc.snr_hint_db if desc else 10.0)
        ref = self.reference(sid)
        out = []
        for name in self.decoders:
            t0 = self.clock()
            img = codec.decode(stream.symbols, stream.noise_var, snr_in, size, name, seed=sid,
                               interleave_seed=desc.interleave_seed if desc else None)
            t1 = self.clock()
            res: dict[str, Any] = {"stream_id": sid, "decoder": name, "width": size[1], "height": size[0],
                                   "ratio": str(codec.ratio), "codec_id": codec.codec_id, "snr_db": snr,
                                   "frames": len(st["chunks"]), "chunk_count": stream.chunk_count,
                                   "missing_chunks": list(stream.missing), "descriptor": desc is not None,
                                   "decode_s": t1 - t0, "latency_s": t1 - st["last"]}
            if ref is not None:
                res["reference"] = ref[1]
                if ref[0].shape == img.shape:
                    res.update(image_metrics(img, ref[0]))
                else:
                    res["note"] = (f"reference {ref[0].shape[1]}x{ref[0].shape[0]} differs from the decoded "
                                   f"{size[1]}x{size[0]}: no PSNR/SSIM")
            if self.png_base:
                res["png"] = str(save_png(img, f"{self.png_base}_stream{sid}_{name}.png"))
            res["image"] = img
            out.append(res)
            self.results.append(res)
        return out

    def report(self) -> dict[str, Any]:
        """JSON-able summary: ``images`` (results without pixels), ``refused`` streams, ``counters``, codecs."""
        return {"images": [{k: v for k, v in r.items() if k != "image"} for r in self.results],
                "refused": list(self.errors), "counters": dict(self.counters), "decoders": list(self.decoders),
                "codecs": [{"checkpoint": c.checkpoint, "ratio": str(c.ratio), "codec_id": c.codec_id}
                           for c in self.codecs.loaded()]}
