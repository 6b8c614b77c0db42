"""Chunking of long payloads into frames and their reassembly by (stream id, chunk index).

A lost chunk is reported as missing (its symbols are zeros with infinite noise variance and
``mask == False``); later chunks are never shifted into its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["split_chunks", "Reassembler", "ReassembledStream"]


def split_chunks(n_symbols: int, chunk: int) -> list[tuple[int, int]]:
    """Spans ``[(start, stop), ...]`` cutting ``n_symbols`` into pieces of ``chunk`` (the last may be shorter).

    A zero-length payload is one empty chunk, so it still produces a frame.
    """
    if chunk < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk}")
    if n_symbols <= 0:
        return [(0, 0)]
    return [(a, min(a + chunk, n_symbols)) for a in range(0, n_symbols, chunk)]


@dataclass
class ReassembledStream:
    """A stream put back together.

    ``symbols`` complex64 [n]; ``noise_var`` float32 [n] (inf where missing); ``mask`` bool [n]
    (True where received); ``missing`` chunk indices never received; ``duplicates`` chunks
    received more than once (the first copy is kept).
    """

    stream_id: int
    chunk_count: int
    symbols: np.ndarray
    noise_var: np.ndarray
    mask: np.ndarray
    missing: list[int]
    duplicates: int = 0
    headers: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


class Reassembler:
    """Collects chunks per stream id; ``add`` returns a stream when all its chunks arrived.

    ``chunk_size`` is the nominal chunk length (``FrameSpec.max_payload_symbols``) used to place
    chunks and to size missing ones; ``flush`` hands out incomplete streams (e.g. on a timeout)
    with their gaps marked. ``total_symbols`` (optional, per stream) fixes the length when the
    last chunk is lost.
    """

    def __init__(self, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self._streams: dict[int, dict] = {}

    def add(self, stream_id: int, chunk_index: int, chunk_count: int, symbols: np.ndarray,
            noise_var: np.ndarray | float, header=None) -> ReassembledStream | None:
        if not 0 <= chunk_index < chunk_count:
            raise ValueError(f"chunk_index {chunk_index} outside chunk_count {chunk_count}")
        st = self._streams.get(stream_id)
        if st is not None and st["count"] != chunk_count:  # a new stream reused the id: hand the old one out
            st = None
            self._streams.pop(stream_id, None)
        if st is None:
            st = self._streams.setdefault(stream_id, {"count": chunk_count, "chunks": {}, "dups": 0, "headers": []})
        if chunk_index in st["chunks"]:
            st["dups"] += 1
            return None
        sym = np.asarray(symbols, dtype=np.complex64).ravel()
        nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float32), sym.shape).copy()
        st["chunks"][chunk_index] = (sym, nv)
        st["headers"].append(header)
        if len(st["chunks"]) == chunk_count:
            return self._build(stream_id, self._streams.pop(stream_id))
        return None

    def pending(self) -> list[int]:
        return list(self._streams)

    def flush(self, stream_id: int | None = None, total_symbols: int | None = None) -> list[ReassembledStream]:
        """Hand out incomplete streams (all, or one) with missing chunks marked."""
        ids = list(self._streams) if stream_id is None else [stream_id]
        return [self._build(i, self._streams.pop(i), total_symbols) for i in ids if i in self._streams]

    def _build(self, stream_id: int, st: dict, total_symbols: int | None = None) -> ReassembledStream:
        count, chunks, cs = st["count"], st["chunks"], self.chunk_size
        last = count - 1
        if total_symbols is not None:
            n = total_symbols
        elif last in chunks:
            n = last * cs + chunks[last][0].size
        else:
            n = count * cs
        sym = np.zeros(n, np.complex64)
        nv = np.full(n, np.inf, np.float32)
        mask = np.zeros(n, bool)
        for i, (s, v) in chunks.items():
            a = i * cs
            b = min(a + s.size, n)
            sym[a:b], nv[a:b], mask[a:b] = s[:b - a], v[:b - a], True
        missing = sorted(set(range(count)) - set(chunks))
        return ReassembledStream(stream_id, count, sym, nv, mask, missing, st["dups"], st["headers"])
