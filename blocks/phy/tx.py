"""Transmitter: header + payload symbols -> OFDM frame IQ. Pure numpy reference.

Example::

    spec = FrameSpec()
    tx = FrameTransmitter(spec)
    frames = tx.modulate_stream(symbols, stream_id=7, codec_id=1)   # chunks a long payload
    iq = np.concatenate([f.iq for f in frames])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import header as hdr
from .chunking import split_chunks
from .frame import FrameSpec
from .modulation import bits_per_symbol, modulate
from .ofdm import ofdm_modulate, papr_db

__all__ = ["FrameTransmitter", "TxFrame", "normalize_power"]


@dataclass
class TxFrame:
    """One transmitted frame.

    Attributes: ``iq`` complex64 [spec.frame_len(n_payload)] (guard included); ``header`` the
    fields sent; ``payload`` complex64 [n_payload] the symbols on the data carriers (for a digital
    payload the QAM symbols); ``papr_db`` of the burst.
    """

    iq: np.ndarray
    header: hdr.HeaderFields
    payload: np.ndarray
    papr_db: float


def normalize_power(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale complex symbols to unit average power; returns (scaled complex64, scale applied)."""
    x = np.asarray(x, dtype=np.complex64)
    p = float(np.mean(np.abs(x) ** 2)) if x.size else 0.0
    if p <= 0 or not np.isfinite(p):
        return x, 1.0
    s = 1.0 / np.sqrt(p)
    return (x * s).astype(np.complex64), float(s)


class FrameTransmitter:
    """Builds frames for one ``FrameSpec``; keeps the running frame counter."""

    def __init__(self, spec: FrameSpec):
        self.spec = spec
        self.frame_counter = 0
        self._data_bins = spec.bin(spec.data_carriers)
        self._pilot_bins = spec.bin(spec.pilot_carriers)
        pre = np.stack([spec.sc_symbol_freq()] + [spec.training_freq()] * spec.n_training)
        self._preamble = ofdm_modulate(pre, spec.cp_len)  # complex64 [n_pre * symbol_len]

    # ------------------------------------------------------------------ building blocks
    @property
    def preamble(self) -> np.ndarray:
        """Time-domain preamble (SC symbol + training symbols); complex64."""
        return self._preamble

    def header_symbols(self, h: hdr.HeaderFields) -> np.ndarray:
        """Coded, interleaved, modulated header padded to whole OFDM symbols; complex64 [n_header_symbols * n_data]."""
        spec = self.spec
        coded = hdr.interleave(hdr.conv_encode(hdr.pack(h)))
        bps = bits_per_symbol(spec.header_modulation)
        n_slots = spec.n_header_symbols * spec.n_data * bps
        bits = np.concatenate([coded, np.zeros(n_slots - coded.size, np.uint8)])
        return modulate(bits, spec.header_modulation)

    def data_grid(self, symbols: np.ndarray, first_symbol: int) -> np.ndarray:
        """Data symbols onto data carriers + pilots; complex128 [n_ofdm, fft_len].

        ``first_symbol`` is the index of the first OFDM symbol after the preamble (pilot polarity).
        The last OFDM symbol is zero-padded on unused data carriers.
        """
        spec = self.spec
        n_ofdm = spec.n_payload_ofdm_symbols(symbols.size)
        padded = np.zeros(n_ofdm * spec.n_data, dtype=np.complex128)
        padded[:symbols.size] = symbols
        grid = np.zeros((n_ofdm, spec.fft_len), dtype=np.complex128)
        grid[:, self._data_bins] = padded.reshape(n_ofdm, spec.n_data)
        grid[:, self._pilot_bins] = spec.pilot_matrix(n_ofdm, first_symbol)
        return grid

    # ------------------------------------------------------------------ frames
    def frame_symbols(self, payload: np.ndarray, *, kind: str | None = None, modulation: str | None = None,
                      stream_id: int = 0, chunk_index: int = 0, chunk_count: int = 1, codec_id: int = 0,
                      flags: int = 0) -> tuple[hdr.HeaderFields, np.ndarray, np.ndarray]:
        """Header and data-carrier symbols of the next frame, without OFDM modulation.

        Same arguments as ``modulate_frame``; advances the frame counter. Returns ``(header,
        symbols, payload)``: ``symbols`` complex64 [n_header_symbols * n_data + n] (coded header
        padded to whole OFDM symbols, then the payload), ``payload`` complex64 [n].
        Used by ``modulate_frame`` and by the GNU Radio transmitter (``semcom.blocks.gr.ofdm_tx``).
        """
        spec = self.spec
        kind = kind or spec.payload_kind
        if kind == "digital":
            modulation = modulation or spec.payload_modulation
            symbols = modulate(np.asarray(payload, dtype=np.uint8), modulation)
        elif kind == "analog":
            modulation = None
            symbols = np.asarray(payload, dtype=np.complex64).ravel()
            if not np.all(np.isfinite(symbols)):
                raise ValueError("analog payload contains NaN or Inf")
        else:
            raise ValueError(f"payload kind must be 'analog' or 'digital', got {kind!r}")
        if symbols.size > spec.max_payload_symbols:
            raise ValueError(f"payload of {symbols.size} symbols exceeds frame.max_payload_symbols="
                             f"{spec.max_payload_symbols}; use modulate_stream to chunk it")
        h = hdr.HeaderFields(payload_kind=hdr.payload_kind_code(kind, modulation), flags=flags,
                             spec_id=spec.spec_id, codec_id=codec_id,
                             frame_counter=self.frame_counter & 0xFFFF, stream_id=stream_id,
                             chunk_index=chunk_index, chunk_count=chunk_count, n_payload=symbols.size)
        self.frame_counter += 1
        symbols = symbols.astype(np.complex64)
        return h, np.concatenate([self.header_symbols(h), symbols]), symbols

    def modulate_frame(self, payload: np.ndarray, *, kind: str | None = None, modulation: str | None = None,
                       stream_id: int = 0, chunk_index: int = 0, chunk_count: int = 1, codec_id: int = 0,
                       flags: int = 0) -> TxFrame:
        """One frame carrying ``payload``.

        ``payload``: complex [n] analog symbols (sent as they are: normalise the whole stream
        beforehand, see ``normalize_power``) when ``kind == "analog"``; uint8 bits
        [n * bits_per_symbol] when ``kind == "digital"``. ``n`` must be 0..max_payload_symbols.
        """
        spec = self.spec
        h, all_symbols, symbols = self.frame_symbols(
            payload, kind=kind, modulation=modulation, stream_id=stream_id, chunk_index=chunk_index,
            chunk_count=chunk_count, codec_id=codec_id, flags=flags)
        grid = self.data_grid(all_symbols.astype(np.complex128), 0)
        body = ofdm_modulate(grid, spec.cp_len)
        iq = np.concatenate([self._preamble, body, np.zeros(spec.guard_len, np.complex64)])
        return TxFrame(iq=iq, header=h, payload=symbols, papr_db=papr_db(iq))

    def stream_chunks(self, payload: np.ndarray, *, kind: str | None = None, modulation: str | None = None,
                      stream_id: int = 0, codec_id: int = 0, flags: int = 0) -> list[tuple[np.ndarray, dict]]:
        """Cut a long payload into frames' worth: ``[(part, frame_kwargs), ...]``.

        The chunks are ``split_chunks(n, max_payload_symbols)``; ``frame_kwargs`` are the keyword
        arguments of ``modulate_frame`` / ``frame_symbols`` for that chunk (flag bit 0 marks the
        last chunk).
        """
        spec = self.spec
        kind = kind or spec.payload_kind
        if kind == "digital":
            bps = bits_per_symbol(modulation or spec.payload_modulation)
            bits = np.asarray(payload, dtype=np.uint8).ravel()
            if bits.size % bps:
                raise ValueError(f"{bits.size} bits is not a multiple of {bps} bits per symbol")
            n_sym = bits.size // bps
        else:
            n_sym = np.asarray(payload).size
        spans = split_chunks(n_sym, spec.max_payload_symbols)
        if len(spans) > 0xFFFF:
            raise ValueError(f"payload needs {len(spans)} chunks; at most 65535 per stream")
        out = []
        for i, (a, b) in enumerate(spans):
            part = bits[a * bps:b * bps] if kind == "digital" else np.asarray(payload).ravel()[a:b]
            last = 1 if i == len(spans) - 1 else 0
            out.append((part, dict(kind=kind, modulation=modulation, stream_id=stream_id, chunk_index=i,
                                   chunk_count=len(spans), codec_id=codec_id, flags=(flags & 0xFE) | last)))
        return out

    def modulate_stream(self, payload: np.ndarray, *, kind: str | None = None, modulation: str | None = None,
                        stream_id: int = 0, codec_id: int = 0, flags: int = 0) -> list[TxFrame]:
        """Split a long payload into chunks of at most ``max_payload_symbols`` and build one frame each.

        The chunks are ``split_chunks(n, max_payload_symbols)`` (see ``stream_chunks``); the
        receiver's ``Reassembler`` puts them back by (stream id, chunk index). Flag bit 0 marks
        the last chunk.
        """
        return [self.modulate_frame(part, **kw) for part, kw in
                self.stream_chunks(payload, kind=kind, modulation=modulation, stream_id=stream_id,
                                   codec_id=codec_id, flags=flags)]
