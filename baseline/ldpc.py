"""LDPC channel coding of the baseline with GNU Radio's gr-fec (no hand-written decoder).

Encoder: ``fec.ldpc_par_mtrx_encoder`` (parity-check matrix in approximate lower triangular form,
gap from the file name; systematic, info bits at the *end* of the codeword). Decoder:
``fec.ldpc_decoder`` (sum-product belief propagation, 50 iterations). Both run through gr-fec's
generic ``fec.encoder``/``fec.decoder`` blocks in a small flowgraph, one per distinct code and call.

Conventions (checked by ``tests/test_baseline.py``): the PHY's LLRs are positive for bit 0
(``blocks/phy/modulation.py``); gr-fec's ``ldpc_decoder`` wants soft values positive for bit **1**
and turns each into the likelihood ratio ``exp(-y / (2 sigma**2))``, so ``decode`` negates the LLRs
and builds the decoder with ``sigma = 1/sqrt(2)`` (then ``y`` *is* the LLR; measured: sigma 0.5
doubles every LLR and loses ~1 dB at 64-QAM). The decoder's belief propagation loses blocks
when LLRs are very large (64-QAM at 15-20 dB, |LLR| > 100): they are clipped to ``LLR_CLIP``.

Codes (``RATES``): matrices shipped with GNU Radio in ``/usr/share/gnuradio/fec/ldpc`` (rates
~1/4, 2/5, 1/2) and Gallager (n, 3, q) regular codes made with gr-fec's own
``Generate_LDPC_matrix_functions`` (full rank + ALT search) in ``baseline/ldpc_matrices`` (rates
~2/3, 3/4). Each rate lists block lengths longest first; ``plan`` fills a coded-bit budget
greedily (as many long blocks as fit, then shorter ones), like 5G code-block segmentation.

Every code block carries a CRC-16 (``semcom.blocks.phy.header.crc16``) on its info bits: a block
whose CRC fails after decoding is **lost** (``decode`` returns ``ok = False`` for it).
gnuradio is imported lazily, so ``import semcom.baseline`` works without it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semcom.blocks.phy.header import crc16

__all__ = ["LdpcCode", "RATES", "LLR_CLIP", "CRC_BITS", "code", "code_family", "plan", "encode_blocks", "decode_blocks",
           "encode", "decode", "info_bits"]

SYSTEM_DIR = Path("/usr/share/gnuradio/fec/ldpc")
LOCAL_DIR = Path(__file__).resolve().parent / "ldpc_matrices"
LLR_CLIP = 16.0  # measured: 8..30 all fine; 50 loses blocks at 64-QAM 15-20 dB (BP overflow)
SIGMA = 2 ** -0.5  # gr-fec ldpc_decoder: LR = exp(-y / (2 sigma^2)) = exp(-y)
CRC_BITS = 16
MAX_ITER = 50

RATES: dict[str, tuple[str, ...]] = {
    "1/4": ("n_0500_k_0127_gap_21", "n_0100_k_0023_gap_10"),
    "2/5": ("n_1300_k_0522_gap_30", "n_0700_k_0282_gap_16", "n_0100_k_0042_gap_02"),
    "1/2": ("n_1800_k_0902_gap_28", "n_0300_k_0152_gap_03"),
    "2/3": ("n_1800_k_1202_gap_10", "n_0360_k_0242_gap_01"),
    "3/4": ("n_1800_k_1352_gap_07", "n_0360_k_0272_gap_01"),
}


@dataclass(frozen=True)
class LdpcCode:
    """One LDPC code: ``name`` (alist stem), ``path``, codeword length ``n``, info bits ``k``, ALT ``gap``."""

    name: str
    path: Path
    n: int
    k: int
    gap: int

    @property
    def payload(self) -> int:
        """Info bits per block left for data after the CRC-16."""
        return self.k - CRC_BITS


@functools.lru_cache(maxsize=None)
def code(name: str) -> LdpcCode:
    """Code from its alist stem (``n_NNNN_k_KKKK_gap_GG``); raises ValueError if missing."""
    m = re.fullmatch(r"n_(\d+)_k_(\d+)_gap_(\d+)", name)
    if not m:
        raise ValueError(f"LDPC code name {name!r} is not n_NNNN_k_KKKK_gap_GG")
    for d in (LOCAL_DIR, SYSTEM_DIR):
        p = d / f"{name}.alist"
        if p.is_file():
            return LdpcCode(name, p, int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise ValueError(f"LDPC matrix {name}.alist not found in {LOCAL_DIR} or {SYSTEM_DIR}")


def code_family(rate: str) -> list[LdpcCode]:
    """Codes of ``rate``, longest block first."""
    if rate not in RATES:
        raise ValueError(f"code rate {rate!r} unknown; valid: {tuple(RATES)}")
    return [code(n) for n in RATES[rate]]


def plan(n_coded_bits: int, rate: str) -> list[LdpcCode]:
    """Code blocks filling at most ``n_coded_bits`` (greedy, longest first); may be empty."""
    left, out = int(n_coded_bits), []
    for c in code_family(rate):
        while left >= c.n:
            out.append(c)
            left -= c.n
    return out


def info_bits(blocks: list[LdpcCode]) -> int:
    """Data bits carried by ``blocks`` (CRC excluded)."""
    return sum(c.payload for c in blocks)


# ---------------------------------------------------------------------- gr-fec wrappers
def _fec():
    try:
        from gnuradio import blocks, fec, gr
    except ImportError as e:
        raise ImportError(f"the LDPC baseline needs GNU Radio's gr-fec ({e})") from None
    return gr, blocks, fec


def _run(coder, data: np.ndarray, soft: bool) -> np.ndarray:
    """Push ``data`` through a gr-fec generic encoder/decoder block; uint8 output."""
    gr, blocks, fec = _fec()
    tb = gr.top_block()
    if soft:
        src = blocks.vector_source_f(data.astype(np.float32).tolist())
        blk = fec.decoder(coder, gr.sizeof_float, gr.sizeof_char)
    else:
        src = blocks.vector_source_b(data.astype(np.uint8).tolist())
        blk = fec.encoder(coder, gr.sizeof_char, gr.sizeof_char)
    snk = blocks.vector_sink_b()
    tb.connect(src, blk, snk)
    tb.run()
    return np.asarray(snk.data(), dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def _encoder(c: LdpcCode):
    """gr-fec encoder object of ``c`` (building the ALT-form H matrix takes ~0.4 s: built once per code)."""
    _, _, fec = _fec()
    H = fec.ldpc_H_matrix(str(c.path), c.gap)
    return H, fec.ldpc_par_mtrx_encoder.make_H(H)  # H kept alive with the encoder that uses it


@functools.lru_cache(maxsize=None)
def _decoder(c: LdpcCode):
    """gr-fec decoder object of ``c`` (~0.4 s to build: built once per code; stateless between frames)."""
    _, _, fec = _fec()
    return fec.ldpc_decoder.make(str(c.path), SIGMA, MAX_ITER)


def encode_blocks(c: LdpcCode, info: np.ndarray) -> np.ndarray:
    """``info`` uint8 [b, k] -> codewords uint8 [b, n] (gr-fec ``ldpc_par_mtrx_encoder``)."""
    info = np.asarray(info, np.uint8).reshape(-1, c.k)
    if info.shape[0] == 0:
        return np.zeros((0, c.n), np.uint8)
    out = _run(_encoder(c)[1], info.ravel(), soft=False)
    return out.reshape(-1, c.n)


def decode_blocks(c: LdpcCode, llr: np.ndarray) -> np.ndarray:
    """LLRs float [b, n] (positive = bit 0) -> info bits uint8 [b, k] (gr-fec ``ldpc_decoder``)."""
    llr = np.asarray(llr, np.float64).reshape(-1, c.n)
    if llr.shape[0] == 0:
        return np.zeros((0, c.k), np.uint8)
    soft = -np.clip(np.nan_to_num(llr), -LLR_CLIP, LLR_CLIP)  # gr-fec: positive = bit 1
    out = _run(_decoder(c), soft.ravel(), soft=True)
    return out.reshape(-1, c.k)


# ---------------------------------------------------------------------- with CRC
def _crc_bits(x: np.ndarray) -> np.ndarray:
    v = crc16(x)
    return ((v >> np.arange(CRC_BITS - 1, -1, -1)) & 1).astype(np.uint8)


def encode(data_bits: np.ndarray, blocks: list[LdpcCode]) -> np.ndarray:
    """Data bits uint8 [info_bits(blocks)] -> coded bits uint8 [sum n]: per block data + CRC-16, LDPC."""
    data_bits = np.asarray(data_bits, np.uint8).ravel()
    if data_bits.size != info_bits(blocks):
        raise ValueError(f"data_bits: {data_bits.size} bits, the blocks carry {info_bits(blocks)}")
    infos, a = [], 0
    for c in blocks:
        d = data_bits[a:a + c.payload]
        a += c.payload
        infos.append(np.concatenate([d, _crc_bits(d)]))
    out: list[np.ndarray | None] = [None] * len(blocks)
    for c in set(blocks):  # one flowgraph per distinct code
        idx = [i for i, b in enumerate(blocks) if b == c]
        cw = encode_blocks(c, np.stack([infos[i] for i in idx]))
        for j, i in enumerate(idx):
            out[i] = cw[j]
    return np.concatenate(out) if out else np.zeros(0, np.uint8)


def decode(llr: np.ndarray, blocks: list[LdpcCode]) -> tuple[np.ndarray, np.ndarray]:
    """Coded-bit LLRs [sum n] (positive = bit 0) -> (data bits uint8 [info_bits], ok bool [n_blocks]).

    ``ok[i]`` is False when block ``i``'s CRC fails (its data bits are then the decoder's guess).
    """
    llr = np.asarray(llr, np.float64).ravel()
    total = sum(c.n for c in blocks)
    if llr.size != total:
        raise ValueError(f"llr: {llr.size} values, the blocks need {total}")
    starts = np.cumsum([0] + [c.n for c in blocks])
    data: list[np.ndarray | None] = [None] * len(blocks)
    ok = np.zeros(len(blocks), bool)
    for c in set(blocks):
        idx = [i for i, b in enumerate(blocks) if b == c]
        info = decode_blocks(c, np.stack([llr[starts[i]:starts[i] + c.n] for i in idx]))
        for j, i in enumerate(idx):
            d, crc = info[j, :c.payload], info[j, c.payload:]
            data[i] = d
            ok[i] = bool(np.array_equal(_crc_bits(d), crc))
    return (np.concatenate(data) if data else np.zeros(0, np.uint8)), ok
