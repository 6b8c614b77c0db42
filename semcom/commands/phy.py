"""``semcom phy``: drive the PHY from files (SigMF / raw IQ) and run the two-process ZMQ link.

Subcommands::

    semcom phy tx-file  --payload X.npy | --bits X.npy --out BASE [--config C] [--set k=v]
    semcom phy rx-file  RECORDING --out OUT.npz [--json STATS.json] [--config C]
    semcom phy channel  IN OUT [--config C] [--set channel.snr_db=10] [--seed S]
    semcom phy zmq-rx   [--frames N] [--out OUT.npz] [--json S.json] [--set channel.snr_db=..]
    semcom phy zmq-tx   [--payload X.npy | --streams 3 --symbols 3072]

``zmq-rx`` / ``zmq-tx`` are the two-process link: the transmitter flowgraph
(``semcom_ofdm_tx`` -> ZMQ PUSH, binds ``radio.zmq_address``, ``tcp://127.0.0.1:5555`` by
default) and the receiver flowgraph (ZMQ PULL -> channel simulator of the config ->
``semcom_ofdm_rx``) run as separate processes; the receiver prints one JSON line per frame and
writes the same ``.npz``/JSON as ``rx-file`` (``--no-channel`` to skip the simulator). The
transmitter waits while its queue is full (back-pressure) and reports what it handed to the socket
(``frames_sent``), not delivery; the receiver reports ``frames_received`` and ``missing_frames``
(gaps in the header frame counter) and writes its results on SIGINT / SIGTERM too (exit 130 / 143).

``tx-file`` writes the IQ of the frames carrying a payload to ``BASE.sigmf-meta`` +
``BASE.sigmf-data`` (``cf32_le``, one annotation per frame with its header fields). An analog
payload is a ``.npy`` of complex symbols, shape ``[n]`` (one stream) or ``[n_streams, n]``
(stream ids ``--stream-id``, ``+1``, ...); each stream is scaled to unit average power and the
scale is stored in the metadata (``semcom:payload_scale``). A digital payload is a ``.npy`` of
bits (0/1, any integer dtype), shape ``[n_bits]`` or ``[n_streams, n_bits]``, mapped with
``frame.payload_modulation`` (or ``--modulation``).

``rx-file`` decodes a recording with the numpy streaming receiver, fed ``link.rx_chunk_samples``
samples at a time (memory stays bounded for long recordings), puts the chunks of every stream
back together and writes ``OUT.npz``:

* ``stream_ids`` int64 [S]; for stream ``i``: ``s{i}_symbols`` complex64 [n] (in the units of the
  transmitted payload when the recording holds its scale, else as received), ``s{i}_noise_var``
  float32 [n] (same units; ``inf`` where missing), ``s{i}_mask`` bool [n], ``s{i}_missing`` int64
  (missing chunk indices), ``s{i}_scale`` (the transmitter's normalisation, 1 if unknown),
  ``s{i}_kind``; digital streams also ``s{i}_llr`` float32 and ``s{i}_bits`` uint8;
* per frame ``f``: ``frame_<header field>`` (frame_counter, stream_id, chunk_index, chunk_count,
  n_payload, codec_id, flags, payload_kind, spec_id, version), ``frame_start`` (sample index),
  ``frame_snr_db``, ``frame_cfo`` (as the receiver reports it), ``frame_noise_var_carrier``
  [F, n_data] float32;

and the receiver statistics plus a per-stream summary as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from semcom.blocks.phy.chunking import ReassembledStream, Reassembler
from semcom.blocks.phy.frame import FrameSpec
from semcom.blocks.phy.header import HeaderFields, payload_kind_name
from semcom.blocks.phy.modulation import bits_per_symbol, demodulate_llr
from semcom.blocks.phy.sigmf_io import (FRAME_SPEC_KEY, RecordingError, jsonable, open_recording, sigmf_paths,
                                        write_recording)
from semcom.blocks.phy.tx import FrameTransmitter, normalize_power
from semcom.config import RANDOM_STREAM_SYMBOLS, add_config_arguments, config_from_args

__all__ = ["add_parser", "run", "TxResult", "transmit_streams", "DecodeResult", "decode_chunks", "StreamAssembler",
           "save_npz", "stats_json", "frame_counter_gaps"]

SCALE_KEY = "semcom:payload_scale"


class PhyCliError(ValueError):
    """A user error in a ``semcom phy`` command (printed without traceback, exit status 2)."""


# ====================================================================== transmit
@dataclass
class TxResult:
    """Frames of one or more streams laid out back to back.

    ``iq`` complex64 [n_samples]; ``annotations`` ``(start, length, metadata)`` per frame;
    ``headers`` the HeaderFields sent; ``payloads`` complex64 symbols on air per frame (unit
    power for analog); ``scales`` stream id -> normalisation applied (analog only).
    """

    iq: np.ndarray
    annotations: list[tuple[int, int, dict]]
    headers: list[HeaderFields]
    payloads: list[np.ndarray]
    starts: list[int]
    scales: dict[int, float] = field(default_factory=dict)
    papr_db: list[float] = field(default_factory=list)


def transmit_streams(spec: FrameSpec, streams: Iterable[np.ndarray], *, kind: str = "analog",
                     modulation: str | None = None, first_stream_id: int = 0, codec_id: int = 0,
                     lead_in: int | None = None, normalize: bool = True) -> TxResult:
    """Modulate streams into one IQ signal (numpy transmitter).

    ``streams``: analog complex arrays (each normalised to unit power when ``normalize``) or
    digital bit arrays; stream ``i`` gets id ``first_stream_id + i`` (mod 65536).
    ``lead_in`` zero samples precede the first frame (default ``spec.guard_len``); every frame
    ends with its own guard.
    """
    tx = FrameTransmitter(spec)
    lead = spec.guard_len if lead_in is None else int(lead_in)
    parts = [np.zeros(lead, np.complex64)]
    pos = lead
    res = TxResult(np.zeros(0, np.complex64), [], [], [], [])
    for i, payload in enumerate(streams):
        sid = (first_stream_id + i) & 0xFFFF
        if kind == "analog":
            x = np.asarray(payload).ravel()
            if not np.all(np.isfinite(x)):
                raise PhyCliError(f"stream {i}: payload contains NaN or Inf")
            if normalize:
                x, scale = normalize_power(x)
                res.scales[sid] = scale
        else:
            x = np.asarray(payload).ravel()
        for f in tx.modulate_stream(x, kind=kind, modulation=modulation, stream_id=sid, codec_id=codec_id):
            h = f.header
            label = f"frame {h.frame_counter} stream {h.stream_id} chunk {h.chunk_index + 1}/{h.chunk_count}"
            res.annotations.append((pos, f.iq.size, {"core:label": label, "header": h.as_dict(),
                                                     "n_payload": int(f.payload.size),
                                                     "papr_db": round(float(f.papr_db), 3)}))
            res.headers.append(h)
            res.payloads.append(f.payload)
            res.starts.append(pos)
            res.papr_db.append(float(f.papr_db))
            parts.append(f.iq)
            pos += f.iq.size
    res.iq = np.concatenate(parts).astype(np.complex64)
    return res


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise PhyCliError(f"{p}: {what} file not found")
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PhyCliError(f"{p}: cannot read as .npy: {e}") from None


def _streams_from_array(a: np.ndarray, path: str) -> list[np.ndarray]:
    if a.ndim == 0:
        raise PhyCliError(f"{path}: payload must be an array of shape [n] or [n_streams, n], got a scalar")
    if a.ndim == 1:
        return [a]
    if a.ndim == 2:
        return list(a)
    raise PhyCliError(f"{path}: payload must have shape [n] or [n_streams, n], got {a.shape}")


def _cmd_tx_file(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    spec = cfg.frame
    if (args.payload is None) == (args.bits is None):
        raise PhyCliError("give exactly one of --payload (analog symbols) or --bits (digital)")
    if args.payload is not None:
        a = _load_npy(args.payload, "payload")
        if not (np.iscomplexobj(a) or np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise PhyCliError(f"{args.payload}: analog payload must be numeric (complex), got dtype {a.dtype}")
        streams, kind, modulation = _streams_from_array(a, args.payload), "analog", None
    else:
        a = _load_npy(args.bits, "bits")
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool) or (a.size and (a.min() < 0 or a.max() > 1)):
            raise PhyCliError(f"{args.bits}: bits must be integers 0/1, got dtype {a.dtype}")
        modulation = args.modulation or spec.payload_modulation
        bps = bits_per_symbol(modulation)
        streams = [s.astype(np.uint8) for s in _streams_from_array(a, args.bits)]
        for s in streams:
            if s.size % bps:
                raise PhyCliError(f"{args.bits}: {s.size} bits per stream is not a multiple of {bps} ({modulation})")
        kind = "digital"
    sid = cfg.link.stream_id if args.stream_id is None else args.stream_id
    if not 0 <= sid <= 0xFFFF:
        raise PhyCliError(f"--stream-id must be 0..65535, got {sid}")
    rate = cfg.radio.sample_rate if args.sample_rate is None else args.sample_rate
    try:
        res = transmit_streams(spec, streams, kind=kind, modulation=modulation, first_stream_id=sid,
                               codec_id=cfg.model.codec_id)
    except ValueError as e:
        raise PhyCliError(str(e)) from None
    extra = {"payload_kind": kind, "n_streams": len(streams), "n_frames": len(res.headers),
             "source_payload": Path(args.payload or args.bits).name}
    if modulation:
        extra["payload_modulation"] = modulation
    if res.scales:
        extra[SCALE_KEY] = {str(k): v for k, v in res.scales.items()}
    meta_path, data_path = write_recording(args.out, res.iq, rate, center_freq=cfg.radio.center_freq,
                                           annotations=res.annotations, frame_spec=spec, extra_global=extra)
    papr = f", PAPR {np.mean(res.papr_db):.1f} dB mean / {np.max(res.papr_db):.1f} dB max" if res.papr_db else ""
    print(f"wrote {meta_path} + {data_path.name}: {len(res.headers)} frames in {len(streams)} stream(s), "
          f"{res.iq.size} samples ({res.iq.size / rate * 1e3:.2f} ms at {rate / 1e6:g} MS/s){papr}")
    print(f"frame: {spec}")
    return 0


# ====================================================================== receive
@dataclass
class DecodeResult:
    """What a receiver run produced.

    ``frames``: one compact dict per delivered frame (header fields, start, snr_db, cfo,
    noise_var_carrier); ``streams``: reassembled streams in completion order; ``stats``: the
    receiver statistics dict; ``payloads``: per-frame received payload symbols (only with
    ``keep_payloads``); ``n_samples`` fed.
    """

    frames: list[dict]
    streams: list[ReassembledStream]
    stats: dict
    n_samples: int
    payloads: list[np.ndarray] = field(default_factory=list)
    noise_vars: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


def _stats_dict(stats: Any) -> dict:
    if stats is None:
        return {}
    if hasattr(stats, "as_dict"):
        return dict(stats.as_dict())
    if isinstance(stats, dict):
        return dict(stats)
    return dict(vars(stats))


def _frame_record(fr: Any) -> dict:
    h: HeaderFields = fr.header
    rec: dict[str, Any] = dict(h.as_dict())
    rec["start"] = int(fr.start)
    rec["snr_db"] = float(fr.snr_db)
    cfo = getattr(fr, "cfo", float("nan"))
    rec["cfo"] = float(cfo) if cfo is not None else float("nan")
    nvc = getattr(fr, "noise_var_carrier", None)
    rec["noise_var_carrier"] = None if nvc is None else np.asarray(nvc, dtype=np.float32)
    return rec


class StreamAssembler:
    """Puts received frames back into streams (``chunking.Reassembler``) and keeps a compact record.

    ``add(header, payload, noise_var)`` per frame; ``finish()`` hands out the incomplete streams.
    A stream id reused with another chunk count first hands out the old stream (gaps marked).
    """

    def __init__(self, spec: FrameSpec):
        self.reasm = Reassembler(spec.max_payload_symbols)
        self.counts: dict[int, int] = {}
        self.streams: list[ReassembledStream] = []
        self.bad_chunk_index = 0

    def add(self, h: HeaderFields, payload: np.ndarray, noise_var: np.ndarray) -> None:
        if self.counts.get(h.stream_id, h.chunk_count) != h.chunk_count:
            self.streams.extend(self.reasm.flush(h.stream_id))
        self.counts[h.stream_id] = h.chunk_count
        try:
            done = self.reasm.add(h.stream_id, h.chunk_index, h.chunk_count, payload, noise_var, header=h)
        except ValueError:  # chunk index outside chunk count: counted, not placed
            self.bad_chunk_index += 1
            return
        if done is not None:
            self.streams.append(done)
            self.counts.pop(h.stream_id, None)

    def finish(self) -> list[ReassembledStream]:
        self.streams.extend(self.reasm.flush())
        self.counts.clear()
        return self.streams


def decode_chunks(chunks: Iterable[np.ndarray], spec: FrameSpec, *, keep_payloads: bool = False,
                  on_frame=None) -> DecodeResult:
    """Run the numpy ``StreamingReceiver`` over consecutive sample blocks and reassemble streams.

    ``chunks``: complex sample blocks of any size (e.g. ``Recording.chunks(n)``). Every stream
    still incomplete at the end is handed out with its missing chunks marked (never shifted).
    ``on_frame(record, frame)``, if given, sees every delivered frame as it arrives (its record in
    ``frames``, which it may extend, and the receiver's frame with payload and noise variance).
    """
    from semcom.blocks.phy.rx import StreamingReceiver

    rx = StreamingReceiver(spec)
    asm = StreamAssembler(spec)
    res = DecodeResult([], [], {}, 0)
    t0 = time.perf_counter()

    def take(frames: list) -> None:
        for fr in frames:
            res.frames.append(_frame_record(fr))
            if on_frame is not None:
                on_frame(res.frames[-1], fr)
            if keep_payloads:
                res.payloads.append(np.asarray(fr.payload, np.complex64))
                res.noise_vars.append(np.asarray(fr.noise_var, np.float32))
            asm.add(fr.header, fr.payload, fr.noise_var)

    for block in chunks:
        block = np.asarray(block, dtype=np.complex64)
        res.n_samples += block.size
        take(rx.process(block))
    take(rx.flush())
    res.streams = asm.finish()
    res.seconds = time.perf_counter() - t0
    res.stats = _stats_dict(getattr(rx, "stats", None))
    if asm.bad_chunk_index:
        res.stats["bad_chunk_index"] = asm.bad_chunk_index
    return res


def _stream_kind(st: ReassembledStream) -> tuple[str, str | None]:
    for h in st.headers:
        if h is not None:
            return payload_kind_name(h.payload_kind)
    return "analog", None


def save_npz(path: str | Path, res: DecodeResult, scales: dict[int, float] | None = None) -> None:
    """Write a ``DecodeResult`` as the ``.npz`` layout documented in this module."""
    scales = scales or {}
    out: dict[str, np.ndarray] = {"stream_ids": np.array([s.stream_id for s in res.streams], dtype=np.int64)}
    for i, st in enumerate(res.streams):
        kind, mod = _stream_kind(st)
        scale = float(scales.get(st.stream_id, 1.0)) if kind == "analog" else 1.0
        out[f"s{i}_symbols"] = (st.symbols / scale).astype(np.complex64)
        out[f"s{i}_noise_var"] = (st.noise_var / scale ** 2).astype(np.float32)
        out[f"s{i}_mask"] = st.mask
        out[f"s{i}_missing"] = np.array(st.missing, dtype=np.int64)
        out[f"s{i}_scale"] = np.float64(scale)
        out[f"s{i}_kind"] = np.array(kind if mod is None else f"{kind}:{mod}")
        if kind == "digital":
            bps = bits_per_symbol(mod)
            llr = demodulate_llr(st.symbols, mod, st.noise_var).astype(np.float32)  # 0 where missing
            llr[~np.repeat(st.mask, bps)] = 0.0
            out[f"s{i}_llr"] = llr
            out[f"s{i}_bits"] = (llr < 0).astype(np.uint8)
    fields = list(HeaderFields().as_dict())
    for name in fields + ["start"]:
        out[f"frame_{name}"] = np.array([f[name] for f in res.frames], dtype=np.int64)
    out["frame_snr_db"] = np.array([f["snr_db"] for f in res.frames], dtype=np.float32)
    out["frame_cfo"] = np.array([f["cfo"] for f in res.frames], dtype=np.float32)
    nvc = [f["noise_var_carrier"] for f in res.frames if f["noise_var_carrier"] is not None]
    if nvc and len(nvc) == len(res.frames) and len({v.shape for v in nvc}) == 1:
        out["frame_noise_var_carrier"] = np.stack(nvc)
    np.savez(path, **out)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def stats_json(res: DecodeResult, spec: FrameSpec, extra: dict | None = None) -> dict:
    """Receiver statistics, frame summary and per-stream summary as a JSON-safe dict."""
    snr = np.array([f["snr_db"] for f in res.frames], dtype=np.float64)
    cfo = np.array([f["cfo"] for f in res.frames], dtype=np.float64)
    streams = []
    for st in res.streams:
        kind, mod = _stream_kind(st)
        streams.append({"stream_id": st.stream_id, "kind": kind, "modulation": mod, "chunk_count": st.chunk_count,
                        "n_symbols": int(st.symbols.size), "received_symbols": int(st.mask.sum()),
                        "missing_chunks": list(st.missing), "complete": st.complete,
                        "duplicates": st.duplicates})
    d = {
        "frame_spec": {"summary": str(spec), "spec_id": spec.spec_id},
        "samples": res.n_samples,
        "seconds": round(res.seconds, 4),
        "samples_per_second": _finite(res.n_samples / res.seconds) if res.seconds > 0 else None,
        "frames": len(res.frames),
        "snr_db": {"mean": _finite(snr.mean()) if snr.size else None,
                   "min": _finite(snr.min()) if snr.size else None,
                   "max": _finite(snr.max()) if snr.size else None},
        "cfo": {"mean": _finite(np.nanmean(cfo)) if cfo.size and np.isfinite(cfo).any() else None},
        "receiver": jsonable(res.stats),
        "streams": streams,
    }
    d.update(extra or {})
    return d


def _cmd_rx_file(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    try:
        rec = open_recording(args.recording, sample_rate=args.sample_rate)
    except RecordingError as e:
        raise PhyCliError(str(e)) from None
    spec = cfg.frame
    if args.spec_from == "recording" and rec.frame_spec is not None:
        spec = rec.frame_spec
        if spec != cfg.frame and (args.config or any(o.startswith("frame.") for o in args.overrides)):
            print("note: using the frame description stored in the recording "
                  "(--spec-from config to use the configured one)", file=sys.stderr)
    g = rec.meta.get("global", {})
    scales = {int(k): float(v) for k, v in (g.get(SCALE_KEY) or {}).items()}
    chunk = args.chunk or cfg.link.rx_chunk_samples
    res = decode_chunks(rec.chunks(chunk), spec)
    out = Path(args.out)
    save_npz(out, res, scales)
    rate = rec.sample_rate or cfg.radio.sample_rate
    info = {"recording": {"path": str(args.recording), "datatype": rec.datatype, "n_samples": rec.n_samples,
                          "sample_rate": rate, "annotated_frames": len(rec.annotations)},
            "spec_source": "recording" if spec is rec.frame_spec else "config"}
    stats = stats_json(res, spec, info)
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=2) + "\n")
    print(f"{rec.n_samples} samples -> {len(res.frames)} frames, {len(res.streams)} stream(s) -> {out}"
          + (f", stats {args.json}" if args.json else ""))
    for s in stats["streams"]:
        miss = f", missing chunks {s['missing_chunks']}" if s["missing_chunks"] else ""
        print(f"  stream {s['stream_id']}: {s['received_symbols']}/{s['n_symbols']} symbols "
              f"({s['chunk_count']} chunks){miss}")
    if stats["snr_db"]["mean"] is not None:
        print(f"  SNR estimate {stats['snr_db']['mean']:.2f} dB mean "
              f"({stats['snr_db']['min']:.2f} .. {stats['snr_db']['max']:.2f})")
    print(f"  receiver: {json.dumps(stats['receiver'])}")
    return 0


# ====================================================================== channel
def _cmd_channel(args: argparse.Namespace) -> int:
    from semcom.blocks.phy.channel import ChannelSimulator

    try:
        rec = open_recording(args.input, sample_rate=args.sample_rate)
    except RecordingError as e:
        raise PhyCliError(str(e)) from None
    extra = [f"channel.seed={args.seed}"] if args.seed is not None else []
    if rec.sample_rate and not any(o.startswith("radio.sample_rate=") for o in args.overrides):
        extra.append(f"radio.sample_rate={rec.sample_rate!r}")  # profile delays at the recording's rate
    if rec.frame_spec is not None and not any(o.startswith("frame.fft_len=") for o in args.overrides):
        extra.append(f"frame.fft_len={rec.frame_spec.fft_len}")  # cfo in the recording's subcarrier spacings
    cfg = config_from_args(args, extra)
    if sigmf_paths(args.output)[1].resolve() == rec.data_path.resolve():
        raise PhyCliError(f"{args.output}: output would overwrite the input recording")
    sim = ChannelSimulator(cfg.channel)
    chunk = cfg.link.rx_chunk_samples
    n_out = [0]

    def blocks():  # streamed: bounded memory for long recordings; flush() ends a resampler (SRO)
        for x in rec.chunks(chunk):
            y = sim.apply(x)
            n_out[0] += y.size
            yield y
        y = sim.flush()
        n_out[0] += y.size
        yield y

    g = rec.meta.get("global", {})
    glob = {k: v for k, v in g.items() if k.startswith("semcom:") and k != FRAME_SPEC_KEY}
    ch = cfg.channel
    glob["semcom:channel"] = ch.to_dict()
    caps = rec.meta.get("captures") or [{}]
    # annotations keep their positions (a channel delay / sample-rate offset moves frames a little);
    # a negative SRO shortens the output (by |sro| n samples, and the resampler's kernel at the end):
    # annotations that may fall off its end are left out; otherwise the output is as long as the input
    n_min = rec.n_samples if ch.sro_ppm >= 0 else int(rec.n_samples * (1.0 + ch.sro_ppm * 1e-6)) - 32
    anns = [(a["core:sample_start"], a.get("core:sample_count", 0),
             {k: v for k, v in a.items() if k not in ("core:sample_start", "core:sample_count")})
            for a in rec.annotations if a["core:sample_start"] + a.get("core:sample_count", 0) <= n_min]
    rate = rec.sample_rate or cfg.radio.sample_rate
    meta_path, _ = write_recording(args.output, blocks(), rate, center_freq=caps[0].get("core:frequency"),
                                   annotations=anns, frame_spec=rec.frame_spec, extra_global=glob,
                                   description=f"{g.get('core:description', 'IQ')} through the semcom channel simulator")
    print(f"{args.input} ({rec.n_samples} samples) -> channel {ch} -> {meta_path} ({n_out[0]} samples)")
    return 0


# ====================================================================== ZMQ two-process link
def _topblocks():
    try:
        from semcom.blocks.gr import topblocks
    except ImportError as e:
        raise PhyCliError(f"the GNU Radio flowgraphs are unavailable: {e}") from None
    return topblocks


ZMQ_TX_QUEUE_FRAMES = 256  # frames waiting in zmq-tx before it blocks (back-pressure; ~8 bytes per symbol each)
DELIVERY_NOTE = ("unknown at the transmitter (ZMQ PUSH has no acknowledgement): compare frames_sent with the "
                 "receiver's frames_received and missing_frames")


def _wait_progress(count, total: int, stall: float, poll: float = 0.02) -> bool:
    """Wait until ``count() >= total``; False once it has not grown for ``stall`` seconds."""
    last, since = count(), time.monotonic()
    while last < total:
        time.sleep(poll)
        now, n = time.monotonic(), count()
        if n != last:
            last, since = n, now
        elif now - since > stall:
            return False
    return True


def _cmd_zmq_tx(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    tb_mod = _topblocks()
    from semcom.blocks.gr.ofdm_tx import TxQueueFull

    spec = cfg.frame
    if args.repeat < 1:
        raise PhyCliError(f"--repeat must be at least 1, got {args.repeat}")
    if args.timeout <= 0:
        raise PhyCliError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.payload:
        a = _load_npy(args.payload, "payload")
        streams = _streams_from_array(a, args.payload)
    else:
        if args.streams < 1 or args.symbols < 1:
            raise PhyCliError(f"--streams and --symbols must be at least 1, got {args.streams} and {args.symbols}")
        rng = np.random.default_rng(args.seed)
        streams = [(rng.standard_normal(args.symbols) + 1j * rng.standard_normal(args.symbols)) / np.sqrt(2)
                   for _ in range(args.streams)]
    streams = [normalize_power(np.asarray(x).ravel())[0] for x in streams]  # once, not per repeat
    lens = [spec.frame_len(b0 - a0) for x in streams for a0, b0 in _spans(x.size, spec.max_payload_symbols)]
    ends = np.cumsum(np.tile(np.asarray(lens, dtype=np.int64), args.repeat))  # end sample of every frame on air
    total = int(ends[-1]) if ends.size else 0
    address = args.address or cfg.radio.zmq_address
    tb = tb_mod.ZmqTx(spec, address, max_queued_frames=ZMQ_TX_QUEUE_FRAMES)  # ZmqAddressError: port in use
    queued, error = 0, None
    tb.start()
    try:
        time.sleep(args.connect_wait)  # let the receiver connect before the first burst
        for rep in range(args.repeat):
            for i, x in enumerate(streams):
                sid = (cfg.link.stream_id + rep * len(streams) + i) & 0xFFFF
                tb.send(x, timeout=args.timeout, stream_id=sid, codec_id=cfg.model.codec_id)  # blocks while full
                queued += 1
        if not _wait_progress(tb.samples_sent, total, args.timeout):
            raise TxQueueFull("stalled")
        time.sleep(args.linger)
    except TxQueueFull:
        error = (f"no sample left for {args.timeout:g} s (--timeout) with frames waiting: is 'semcom phy zmq-rx' "
                 f"running and connected to {address}?")
    finally:
        tb.stop()
        tb.wait()
    sent = tb.samples_sent()
    report = {"address": address, "streams": len(streams) * args.repeat, "streams_queued": queued,
              "frames": int(ends.size), "frames_sent": int(np.searchsorted(ends, sent, side="right")),
              "samples_sent": sent, "expected_samples": total, "complete": sent >= total, "delivery": DELIVERY_NOTE}
    print(json.dumps(report), flush=True)
    if error:
        print(f"semcom phy zmq-tx: {error} (sent {report['frames_sent']} of {report['frames']} frames)",
              file=sys.stderr)
    return 0 if report["complete"] else 1


def _spans(n: int, chunk: int) -> list[tuple[int, int]]:
    from semcom.blocks.phy.chunking import split_chunks

    return split_chunks(n, chunk)


def frame_counter_gaps(counters: Iterable[int], modulo: int = 1 << 16, max_listed: int = 20) -> dict:
    """Frames lost between received ones, from their header ``frame_counter`` (arrival order).

    The counter runs mod ``modulo`` (16 header bits). A step of +1 is the next frame; +k (below
    ``modulo / 2``) means k - 1 frames lost in between; 0 a duplicate; a step back (a restarted
    transmitter counts from 0 again) is a ``restart``, not a loss. Frames lost before the first
    or after the last received one leave no gap: compare with the transmitter's ``frames_sent``.

    Returns ``{"first", "last", "missing", "gaps", "duplicates", "restarts"}``; ``gaps`` lists
    ``[counter before, counter after, frames missing]`` for the first ``max_listed`` gaps.
    """
    first = last = None
    missing = duplicates = restarts = 0
    gaps: list[list[int]] = []
    for c in counters:
        c = int(c) % modulo
        if last is not None:
            step = (c - last) % modulo
            if step == 0:
                duplicates += 1
            elif step > modulo // 2:
                restarts += 1
            elif step > 1:
                missing += step - 1
                if len(gaps) < max_listed:
                    gaps.append([last, c, step - 1])
        else:
            first = c
        last = c
    return {"first": first, "last": last, "missing": missing, "gaps": gaps, "duplicates": duplicates,
            "restarts": restarts}


def _cmd_zmq_rx(args: argparse.Namespace) -> int:
    from semcom.stopsignals import StopOnSignals

    cfg = config_from_args(args)
    tb_mod = _topblocks()
    spec = cfg.frame
    address = args.address or cfg.radio.zmq_address
    tb = tb_mod.ZmqRx(spec, address, channel=None if args.no_channel else cfg.channel)
    res = DecodeResult([], [], {}, 0)
    asm = StreamAssembler(spec)
    names = list(HeaderFields().as_dict())
    seen, lost, last_new, t0 = 0, 0, time.monotonic(), time.monotonic()
    with StopOnSignals() as stop:  # SIGINT / SIGTERM: leave the loop, write what arrived
        tb.start()
        try:
            while not stop.is_set():
                seen, n_lost, frames = tb.collector.since(seen)
                lost += n_lost
                for meta, payload in frames:
                    h = HeaderFields(**{k: int(meta[k]) for k in names if k in meta})
                    nv = np.asarray(meta.get("noise_var", np.zeros(payload.size)), dtype=np.float32)
                    res.frames.append(dict(h.as_dict(), start=int(meta.get("start", -1)),
                                           snr_db=float(meta.get("snr_db", np.nan)),
                                           cfo=float(meta.get("cfo", np.nan)), noise_var_carrier=None))
                    asm.add(h, np.asarray(payload, np.complex64), nv)
                    print(json.dumps({k: res.frames[-1][k] for k in ("frame_counter", "stream_id", "chunk_index",
                                                                     "chunk_count", "n_payload", "snr_db", "cfo")}),
                          flush=True)
                    last_new = time.monotonic()
                now = time.monotonic()
                if ((args.frames and seen >= args.frames) or now - last_new > args.timeout
                        or now - t0 > args.max_seconds):
                    break
                stop.event.wait(0.02)
        finally:
            tb.stop()
            tb.wait()
        if stop.is_set():
            print(f"semcom phy zmq-rx: {stop.name}: stopping, writing the {len(res.frames)} frames received",
                  file=sys.stderr, flush=True)
        res.streams = asm.finish()
        res.seconds = time.monotonic() - t0
        res.stats = _stats_dict(tb.rx.stats())
        res.n_samples = int(res.stats.get("samples", 0))
        gaps = frame_counter_gaps(f["frame_counter"] for f in res.frames)
        link = {"frames_received": seen, "missing_frames": gaps["missing"], "frame_counter": gaps,
                "incomplete_streams": sum(not st.complete for st in res.streams),
                "stopped_by": stop.name}
        if lost:
            link["frames_not_read"] = lost  # decoded but pushed out of the collector before this loop took them
        if args.out:
            save_npz(args.out, res)
        summary = stats_json(res, spec, {"address": address,
                                         "channel": None if args.no_channel else cfg.channel.to_dict(), **link})
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps({"received": seen, **link, "streams": summary["streams"], "receiver": summary["receiver"]}),
              flush=True)
    if stop.is_set():
        return stop.exit_status
    return 0 if (not args.frames or seen >= args.frames) else 1


# ====================================================================== argparse
def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    sub = parser.add_subparsers(dest="phy_command", metavar="SUBCOMMAND")

    def _help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_help)

    p = sub.add_parser("tx-file", help="write the IQ of frames carrying a payload to a SigMF recording",
                       description="Write the IQ of frames carrying a payload to BASE.sigmf-meta/.sigmf-data "
                                   "(cf32_le, one annotation per frame). The channel is applied separately "
                                   "('semcom phy channel') or by any external tool.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--payload", metavar="X.npy", help="analog payload: complex symbols [n] or [n_streams, n]")
    src.add_argument("--bits", metavar="X.npy", help="digital payload: bits 0/1 [n_bits] or [n_streams, n_bits]")
    p.add_argument("--out", required=True, metavar="BASE", help="output base name (BASE.sigmf-meta + BASE.sigmf-data)")
    p.add_argument("--modulation", choices=("bpsk", "qpsk", "16qam", "64qam"), default=None,
                   help="constellation of a digital payload (default: frame.payload_modulation)")
    p.add_argument("--stream-id", type=int, default=None, help="id of the first stream (default: link.stream_id)")
    p.add_argument("--sample-rate", type=float, default=None, help="samples/s stored in the metadata "
                                                                     "(default: radio.sample_rate)")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_tx_file)

    p = sub.add_parser("rx-file", help="decode a SigMF or raw cf32 recording into payloads (.npz) and stats (JSON)",
                       description="Decode a recording (x.sigmf-meta, x.sigmf-data, base name, or raw .cf32/.fc32/"
                                   ".bin/.raw/.ci16) with the numpy streaming receiver.")
    p.add_argument("recording", help="SigMF recording or raw IQ file")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="payloads, noise variances, header fields")
    p.add_argument("--json", metavar="STATS.json", default=None, help="receiver statistics")
    p.add_argument("--sample-rate", type=float, default=None, help="sample rate of a raw file (samples/s)")
    p.add_argument("--spec-from", choices=("recording", "config"), default="recording",
                   help="frame description: the one stored in the recording (default, falls back to the config) "
                        "or the configured one")
    p.add_argument("--chunk", type=int, default=None, help="samples per receiver call (default: link.rx_chunk_samples)")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_rx_file)

    p = sub.add_parser("channel", help="apply the channel simulator to a recording, file to file",
                       description="Read IN (SigMF or raw), apply the channel of the config (with --set "
                                   "channel.KEY=VALUE overrides), write OUT as SigMF.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT", help="output base name")
    p.add_argument("--seed", type=int, default=None, help="channel random seed (sets channel.seed)")
    p.add_argument("--sample-rate", type=float, default=None, help="sample rate of a raw input file "
                   "(the channel's profile delays use radio.sample_rate)")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_channel)

    p = sub.add_parser("zmq-tx", help="GNU Radio transmitter pushing IQ over ZMQ (two-process link)",
                       description="Send payload streams through semcom_ofdm_tx into a ZMQ PUSH socket (binds "
                                   "radio.zmq_address, localhost by default). Start 'semcom phy zmq-rx' first or "
                                   "within --connect-wait seconds. Sending blocks while "
                                   f"{ZMQ_TX_QUEUE_FRAMES} frames wait (the receiver sets the pace); it gives up "
                                   "when no sample has left for --timeout seconds. Prints one JSON line: frames and "
                                   "samples handed to the socket (frames_sent, samples_sent) out of those planned; "
                                   "whether they arrived is known only at the receiver (its frames_received, "
                                   "missing_frames). Exit status 0 when every sample was sent, 1 when it gave up, "
                                   "2 for a usage error (e.g. the port is already in use).")
    p.add_argument("--payload", metavar="X.npy", default=None, help="analog payload [n] or [n_streams, n] "
                                                                     "(default: random unit-power symbols)")
    p.add_argument("--streams", type=int, default=3, help="random streams when no --payload")
    p.add_argument("--symbols", type=int, default=RANDOM_STREAM_SYMBOLS, help="symbols per random stream")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="send the payload this many times (new stream ids; any "
                                                          "number: sending waits for the receiver)")
    p.add_argument("--address", default=None, help="ZMQ endpoint to bind (default: radio.zmq_address)")
    p.add_argument("--connect-wait", type=float, default=1.0, help="seconds to wait for the receiver to connect")
    p.add_argument("--linger", type=float, default=1.0, help="seconds to keep the socket open after the last sample")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="give up when no sample has left for this many seconds (receiver gone or not connected)")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_zmq_tx)

    p = sub.add_parser("zmq-rx", help="GNU Radio receiver pulling IQ over ZMQ, channel applied in between",
                       description="Pull IQ from a ZMQ socket (connects to radio.zmq_address), apply the "
                                   "configured channel (unless --no-channel), decode with semcom_ofdm_rx; print "
                                   "one JSON line per frame, write payloads (.npz) and statistics (JSON). The last "
                                   "line (and the JSON) counts frames_received and missing_frames (gaps in the "
                                   "header frame counter; frame_counter lists them). SIGINT/SIGTERM stop it: what "
                                   "arrived is written and the exit status is 130/143. Otherwise 0, or 1 when "
                                   "fewer than --frames arrived.")
    p.add_argument("--address", default=None, help="ZMQ endpoint to connect to (default: radio.zmq_address)")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: on --timeout)")
    p.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds without a new frame")
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop after this many seconds in any case")
    p.add_argument("--no-channel", action="store_true", help="no channel simulator between TX and RX")
    p.add_argument("--out", default=None, metavar="OUT.npz", help="payloads as in rx-file")
    p.add_argument("--json", default=None, metavar="STATS.json")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_zmq_rx)


def run(args: argparse.Namespace) -> int:
    return int(args.func(args) or 0)
