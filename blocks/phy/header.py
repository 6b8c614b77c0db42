"""Frame header: fixed bit layout, CRC-16, rate-1/2 K=7 convolutional code, interleaver.

Layout (``HEADER_BITS`` = 136 bits, big-endian fields, then CRC-16/CCITT-FALSE over the first 120):

=============  =====  ===========================================================
field          bits   meaning
=============  =====  ===========================================================
version        4      header format version (``HEADER_VERSION``)
payload_kind   4      0 analog, 1..4 digital bpsk/qpsk/16qam/64qam
flags          8      application flags (bit 0: last frame of a stream)
spec_id        16     ``FrameSpec.spec_id`` of the transmitter
codec_id       8      semantic codec / source codec identifier
frame_counter  16     running frame number (mod 65536)
stream_id      16     image / stream identifier
chunk_index    16     index of this chunk within the stream
chunk_count    16     number of chunks of the stream
n_payload      16     payload complex symbols in this frame
crc16          16
=============  =====  ===========================================================

Coding: the 128 bits plus 6 zero tail bits go through the 802.11 K=7 (133, 171) code; coded
bits are then spread over the data carriers by a block interleaver so a faded carrier hits
non-adjacent code bits. Decoding is soft-decision Viterbi (numpy, vectorised over states).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from .frame import HEADER_BITS, HEADER_CODE_K, MODULATIONS

__all__ = ["HeaderFields", "HeaderError", "HEADER_VERSION", "pack", "unpack", "crc16",
           "conv_encode", "viterbi_decode", "interleave", "deinterleave", "payload_kind_code",
           "payload_kind_name"]

HEADER_VERSION = 1
_LAYOUT = (("version", 4), ("payload_kind", 4), ("flags", 8), ("spec_id", 16), ("codec_id", 8),
           ("frame_counter", 16), ("stream_id", 16), ("chunk_index", 16), ("chunk_count", 16),
           ("n_payload", 16))
_PAYLOAD_BITS = sum(w for _, w in _LAYOUT)
assert _PAYLOAD_BITS + 16 == HEADER_BITS

_KINDS = ("analog",) + MODULATIONS  # code 0 analog, 1.. digital modulations


class HeaderError(ValueError):
    """A header field out of range (names the field)."""


def payload_kind_code(kind: str, modulation: str | None = None) -> int:
    """Code of a payload: ``("analog", None) -> 0``, ``("digital", "qpsk") -> 2``."""
    if kind == "analog":
        return 0
    if kind == "digital" and modulation in MODULATIONS:
        return 1 + MODULATIONS.index(modulation)
    raise HeaderError(f"payload_kind: unknown kind/modulation {kind!r}/{modulation!r}")


def payload_kind_name(code: int) -> tuple[str, str | None]:
    """Inverse of ``payload_kind_code``: ``(kind, modulation or None)``."""
    if code == 0:
        return "analog", None
    if 1 <= code <= len(MODULATIONS):
        return "digital", MODULATIONS[code - 1]
    raise HeaderError(f"payload_kind: unknown code {code}")


@dataclass(frozen=True)
class HeaderFields:
    """Decoded header of one frame."""

    payload_kind: int = 0
    flags: int = 0
    spec_id: int = 0
    codec_id: int = 0
    frame_counter: int = 0
    stream_id: int = 0
    chunk_index: int = 0
    chunk_count: int = 1
    n_payload: int = 0
    version: int = HEADER_VERSION

    def __post_init__(self) -> None:
        widths = dict(_LAYOUT)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise HeaderError(f"{f.name}: must be an integer, got {v!r}")
            if not 0 <= int(v) < (1 << widths[f.name]):
                raise HeaderError(f"{f.name}: {v} does not fit in {widths[f.name]} bits")
            object.__setattr__(self, f.name, int(v))
        if self.chunk_count < 1:
            raise HeaderError(f"chunk_count: must be >= 1, got {self.chunk_count}")
        if self.chunk_index >= self.chunk_count:
            raise HeaderError(f"chunk_index: {self.chunk_index} must be < chunk_count {self.chunk_count}")

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _crc_table() -> np.ndarray:
    """CRC-16/CCITT-FALSE remainder of every byte value; uint16 [256]."""
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        reg = byte << 8
        for _ in range(8):
            reg = ((reg << 1) ^ 0x1021) if reg & 0x8000 else (reg << 1)
        table[byte] = reg & 0xFFFF
    return table


_CRC_TABLE = _crc_table()
_CRC_LIST = _CRC_TABLE.tolist()


def crc16(bits: np.ndarray) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over a bit array (MSB first).

    Whole bytes go through a 256-entry table (the header's 112 bits are 14 bytes); a trailing
    partial byte is processed bit by bit.
    """
    bits = np.asarray(bits, dtype=np.uint8)
    n_bytes = bits.size // 8
    reg = 0xFFFF
    for byte in np.packbits(bits[:n_bytes * 8]).tolist():
        reg = ((reg << 8) & 0xFFFF) ^ _CRC_LIST[(reg >> 8) ^ byte]
    for b in bits[n_bytes * 8:].tolist():
        top = ((reg >> 15) & 1) ^ b
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return reg


def _int_bits(value: int, width: int) -> np.ndarray:
    return ((value >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


# bit i of the header body (MSB first per field) is bit _BIT_SHIFT[i] of field _BIT_FIELD[i]
_BIT_FIELD = np.repeat(np.arange(len(_LAYOUT)), [w for _, w in _LAYOUT])
_BIT_SHIFT = np.concatenate([np.arange(w - 1, -1, -1) for _, w in _LAYOUT])
_FIELD_WEIGHTS = np.zeros((len(_LAYOUT), _PAYLOAD_BITS), dtype=np.int64)  # field values = this @ body bits
_FIELD_WEIGHTS[_BIT_FIELD, np.arange(_PAYLOAD_BITS)] = 1 << _BIT_SHIFT
_CRC_WEIGHTS = 1 << np.arange(15, -1, -1)


def pack(h: HeaderFields) -> np.ndarray:
    """Header fields -> uint8 bits [HEADER_BITS] (CRC appended)."""
    vals = np.array([getattr(h, name) for name, _ in _LAYOUT], dtype=np.int64)
    bits = ((vals[_BIT_FIELD] >> _BIT_SHIFT) & 1).astype(np.uint8)
    return np.concatenate([bits, _int_bits(crc16(bits), 16)])


def unpack(bits: np.ndarray) -> HeaderFields | None:
    """uint8 bits [HEADER_BITS] -> fields, or ``None`` when the CRC fails or the version is unknown."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.size != HEADER_BITS:
        return None
    body, crc = bits[:_PAYLOAD_BITS], bits[_PAYLOAD_BITS:]
    if crc16(body) != int(crc @ _CRC_WEIGHTS):
        return None
    vals = dict(zip((name for name, _ in _LAYOUT), (_FIELD_WEIGHTS @ body).tolist()))
    if vals["version"] != HEADER_VERSION:
        return None
    try:  # a CRC-valid header with impossible fields (e.g. chunk_count 0) is still rejected
        return HeaderFields(**vals)
    except HeaderError:
        return None


# ---------------------------------------------------------------------- convolutional code
_G = (0o133, 0o171)
_NSTATES = 1 << (HEADER_CODE_K - 1)


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for s in (4, 2, 1):
        x ^= x >> s
    return x & 1


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """Output bits for (state, input): int8 [n_states, 2, 2]; next state [n_states, 2]."""
    st = np.arange(_NSTATES)
    out = np.zeros((_NSTATES, 2, 2), dtype=np.int8)
    nxt = np.zeros((_NSTATES, 2), dtype=np.int64)
    for b in (0, 1):
        reg = (b << (HEADER_CODE_K - 1)) | st  # newest bit at the top
        for i, g in enumerate(_G):
            out[:, b, i] = _parity(reg & g)
        nxt[:, b] = reg >> 1
    return out, nxt


_OUT, _NEXT = _trellis()


# Generator taps by delay: output i at time t is the XOR over d of _TAPS[i, d] * bit[t - d].
_TAPS = np.array([[(g >> (HEADER_CODE_K - 1 - d)) & 1 for d in range(HEADER_CODE_K)] for g in _G], dtype=np.int64)
_TAPS_INTERLEAVED = _TAPS.T.ravel()  # [2K]: tap 2d + i = generator i at delay d


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2 K=7 encoding with K-1 zero tail bits; uint8 [2 * (n + K - 1)].

    Same output as stepping the trellis (``_OUT``/``_NEXT``) from state 0, computed as one
    binary convolution: the input upsampled by 2 against the generators interleaved.
    """
    bits = np.asarray(bits, dtype=np.uint8).ravel()
    n = bits.size + HEADER_CODE_K - 1
    up = np.zeros(2 * n, dtype=np.int64)
    up[0:2 * bits.size:2] = bits
    return (np.convolve(up, _TAPS_INTERLEAVED)[:2 * n] & 1).astype(np.uint8)


def _predecessors() -> tuple[np.ndarray, np.ndarray]:
    """For each next state, the two (state, input bit) pairs leading to it; int64 [n_states, 2] each."""
    prev_state = np.zeros((_NSTATES, 2), dtype=np.int64)
    prev_bit = np.zeros((_NSTATES, 2), dtype=np.int64)
    counts = np.zeros(_NSTATES, dtype=np.int64)
    for s in range(_NSTATES):
        for b in (0, 1):
            ns = _NEXT[s, b]
            prev_state[ns, counts[ns]] = s
            prev_bit[ns, counts[ns]] = b
            counts[ns] += 1
    return prev_state, prev_bit


_PREV_STATE, _PREV_BIT = _predecessors()
# +-1 image of the expected output bits of the branch (prev_state -> state): [n_states, 2 (branch), 2 (bit i)]
_PREV_SIGN = (1.0 - 2.0 * _OUT[_PREV_STATE, _PREV_BIT]).astype(np.float64)


def _gf2_mul(a: int, b: int) -> int:
    """Product of two GF(2) polynomials held as ints (bit d = coefficient of D^d)."""
    r = 0
    while b:
        if b & 1:
            r ^= a
        a, b = a << 1, b >> 1
    return r


def _gf2_inverse_filters() -> tuple[np.ndarray, np.ndarray]:
    """FIR filters ``f0, f1`` with ``f0*g0 + f1*g1 = 1`` over GF(2) (extended Euclid); int64 [deg+1] each.

    Hence ``u = f0*c0 + f1*c1`` recovers the information bits ``u`` from the two coded streams
    ``c_i = u*g_i`` of ``conv_encode`` (the code is not catastrophic: gcd(g0, g1) = 1).
    """
    g = [int(sum(int(b) << d for d, b in enumerate(t))) for t in _TAPS]
    a, b, x0, x1, y0, y1 = g[0], g[1], 1, 0, 0, 1  # invariants: a = x0 g0 + y0 g1, b = x1 g0 + y1 g1
    while b:
        q, r = 0, a
        while r and r.bit_length() >= b.bit_length():
            s = r.bit_length() - b.bit_length()
            q, r = q | (1 << s), r ^ (b << s)
        a, b = b, r
        x0, x1 = x1, x0 ^ _gf2_mul(q, x1)
        y0, y1 = y1, y0 ^ _gf2_mul(q, y1)
    assert a == 1, "convolutional code must not be catastrophic"

    def taps(p: int) -> np.ndarray:
        return np.array([(p >> d) & 1 for d in range(max(p.bit_length(), 1))], dtype=np.int64)

    return taps(x0), taps(y0)


_INV0, _INV1 = _gf2_inverse_filters()


def _hard_decision_decode(llr: np.ndarray, n_bits: int) -> np.ndarray | None:
    """The Viterbi result without the trellis when the hard decisions already form a codeword.

    ``llr`` float64 [n, 2]. When every ``|llr|`` is clearly non-zero and the signs of the LLRs
    are a terminated codeword, that codeword has the largest possible correlation metric
    (``sum |llr|``; every other path loses at least ``2 min |llr|``), so it is the unique
    maximum-likelihood path that ``viterbi_decode`` would return. Returns uint8 [n_bits] or None.
    """
    mag = np.abs(llr)
    if not mag.min() > 1e-9 * mag.sum():  # also False for NaN: an erasure or a near-tie -> trellis
        return None
    hard = (llr < 0).view(np.int8).astype(np.int64)  # [n, 2]
    u = (np.convolve(hard[:, 0], _INV0) + np.convolve(hard[:, 1], _INV1))[:n_bits] & 1
    if not np.array_equal(conv_encode(u).reshape(-1, 2), hard):
        return None
    return u.astype(np.uint8)


def viterbi_decode(llr: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft Viterbi for ``conv_encode``; ``llr`` float [2 * (n_bits + K - 1)], positive = bit 0.

    Returns uint8 [n_bits], the path of largest correlation of the LLRs with the +-1 image of
    the coded bits that starts and ends in state 0. Erased positions (LLR 0) are allowed; ties
    keep the branch from the lower predecessor state.

    Fast path: when the hard decisions are already a codeword (clean header) it is the
    maximum-likelihood path and no trellis is run (``_hard_decision_decode``). Otherwise a
    trellis over the butterflies of the shift register: state ``s`` goes to ``(b << 5) | (s >> 1)``,
    so the predecessors of states ``j`` and ``32 + j`` are ``2j`` and ``2j + 1``; the branch
    metrics of all steps are computed at once and each step costs two numpy calls (``_forward``).
    """
    llr = np.asarray(llr, dtype=np.float64).reshape(-1, 2)
    n = llr.shape[0]
    if n == n_bits + HEADER_CODE_K - 1:
        fast = _hard_decision_decode(llr, n_bits)
        if fast is not None:
            return fast
    # decisions of each step as one 64-bit int (bit s: survivor of state s from 2j+1)
    dec = np.packbits(_forward(llr), axis=1, bitorder="little").view("<u8").ravel().tolist()
    state, bits = 0, np.empty(n, dtype=np.uint8)  # tail bits force state 0
    for t in range(n - 1, -1, -1):
        c = (dec[t] >> state) & 1
        bits[t] = state >> (HEADER_CODE_K - 2)  # input bit = top bit of the new state
        state = ((state << 1) & (_NSTATES - 1)) | c
    return bits[:n_bits]


def _forward(llr: np.ndarray) -> np.ndarray:
    """Survivor decisions of the add-compare-select; bool [n, n_states] (True: from state 2j+1).

    The loop only propagates the path metrics (an add and a max per step, the least numpy calls
    found); the decisions of all steps are then recomputed from the stored metrics with the same
    additions, in two vectorised calls.
    """
    n = llr.shape[0]
    half = _NSTATES // 2
    sign = _PREV_SIGN.reshape(2, half, 2, 2)  # [b, j, c, bit i] for the branch 2j+c -> b*half+j
    bm = llr[:, None, None, None, 0] * sign[None, ..., 0] + llr[:, None, None, None, 1] * sign[None, ..., 1]
    hist = np.full((n + 1, _NSTATES), -np.inf)  # path metrics before each step
    hist[0, 0] = 0.0
    pairs = hist.reshape(n + 1, half, 2)  # [t, j, c] = state 2j + c
    new = hist.reshape(n + 1, 2, half)  # [t, b, j] = state b*half + j
    cand = np.empty((2, half, 2))
    c0, c1 = cand[..., 0], cand[..., 1]
    for t in range(n):
        np.add(pairs[t], bm[t], out=cand)
        np.maximum(c0, c1, out=new[t + 1])
    cand = pairs[:-1, None] + bm  # [n, b, j, c], the very additions of the loop
    return (cand[..., 1] > cand[..., 0]).reshape(n, _NSTATES)


# ---------------------------------------------------------------------- interleaver
@functools.lru_cache(maxsize=32)
def _perm(n: int, cols: int) -> np.ndarray:
    """Block interleaver permutation: write row-wise into ``cols`` columns, read column-wise. Cached, read-only."""
    rows = -(-n // cols)
    idx = np.arange(rows * cols).reshape(rows, cols).T.ravel()
    idx = idx[idx < n]
    idx.flags.writeable = False
    return idx


def interleave(bits: np.ndarray, cols: int = 16) -> np.ndarray:
    bits = np.asarray(bits)
    return bits[_perm(bits.size, cols)]


def deinterleave(values: np.ndarray, cols: int = 16) -> np.ndarray:
    values = np.asarray(values)
    out = np.empty_like(values)
    out[_perm(values.size, cols)] = values
    return out
