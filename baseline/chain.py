"""The classical baseline chain: image codec -> CRC + LDPC -> QAM, on the same channel-symbol budget.

Example::

    scheme = BaselineScheme("16qam", "1/2")
    tx = transmit_image(img, n_channel_symbols=512, scheme=scheme)     # tx.symbols complex64
    llr = awgn_llr(tx.symbols, scheme, snr_db=12.0, rng=rng)          # fast path on the symbols
    img_hat, info = receive_image(llr, tx.blocks, img.shape)

Budget: an image gets ``n_channel_symbols`` complex symbols (``ratio * 3 * H * W``). They carry
``n_channel_symbols * bits_per_symbol`` coded bits, filled with whole LDPC blocks
(``ldpc.plan``); each block gives ``k - 16`` data bits (CRC-16 per block), and the source
codec's container (codec id + length, ``source_codec.pack``) must fit the data bytes
(``BaselineScheme.budget_bytes``). Channel symbols left over after the last whole block are not
sent (the baseline never uses more symbols than semcom).

Loss model: a code block whose CRC fails is lost; the bytes of the container are kept up to the
first lost block, so the image decoder gets a **truncated** bitstream (what a receiver that
cannot resynchronise inside a codec stream shows). Nothing decodable gives the fallback image
(uniform grey 128, ``source_codec.FALLBACK_VALUE``).

SNR: Es/N0 per complex symbol (``semcom.blocks.phy.snr``). ``awgn_llr`` adds the noise to the
QAM symbols directly; ``phy_llr`` sends them through the OFDM PHY's digital payload mode
(``phylink.exchange``: ``FrameTransmitter.modulate_stream(kind="digital")`` -> channel -> receiver,
in numpy or in GNU Radio).
Capacity bound (``capacity_bytes``): ``floor(n_channel_symbols * log2(1 + SNR) / 8)`` bytes fed
to the same codec rate control (ideal channel code, no framing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semcom.blocks.phy.frame import MODULATIONS
from semcom.blocks.phy.modulation import bits_per_symbol, demodulate_llr, modulate
from semcom.blocks.phy.snr import add_awgn, noise_variance, undb

from . import ldpc
from .source_codec import Encoded, decode_container, encode_to_budget, fallback_image

__all__ = ["BaselineScheme", "MCS", "TxImage", "transmit_image", "receive_image", "receive_images", "awgn_llr", "phy_llr",
           "capacity_bytes", "required_snr_db"]


@dataclass(frozen=True)
class BaselineScheme:
    """A modulation and coding scheme: ``modulation`` in bpsk..64qam, ``code_rate`` a key of ``ldpc.RATES``."""

    modulation: str
    code_rate: str

    def __post_init__(self) -> None:
        bits_per_symbol(self.modulation)  # validates
        if self.code_rate not in ldpc.RATES:
            raise ValueError(f"code_rate: {self.code_rate!r} unknown; valid: {tuple(ldpc.RATES)}")

    @property
    def name(self) -> str:
        return f"{self.modulation}-{self.code_rate}"

    @property
    def bps(self) -> int:
        return bits_per_symbol(self.modulation)

    def blocks(self, n_channel_symbols: int) -> list[ldpc.LdpcCode]:
        """LDPC blocks that fit ``n_channel_symbols`` symbols."""
        if n_channel_symbols < 0:
            raise ValueError(f"n_channel_symbols must be >= 0, got {n_channel_symbols}")
        return ldpc.plan(int(n_channel_symbols) * self.bps, self.code_rate)

    def budget_bits(self, n_channel_symbols: int) -> int:
        """Data bits per image (CRCs excluded, container included)."""
        return ldpc.info_bits(self.blocks(n_channel_symbols))

    def budget_bytes(self, n_channel_symbols: int) -> int:
        """Container bytes per image: ``budget_bits // 8``."""
        return self.budget_bits(n_channel_symbols) // 8


MCS: tuple[BaselineScheme, ...] = tuple(BaselineScheme(m, r) for m in MODULATIONS for r in ldpc.RATES)


@dataclass
class TxImage:
    """What ``transmit_image`` sends: ``bits`` uint8 coded bits (a multiple of bps), ``symbols``
    complex64 [len(bits) // bps] (<= n_channel_symbols), ``blocks`` the LDPC blocks, ``encoded``
    the source container and its error-free reconstruction."""

    bits: np.ndarray
    symbols: np.ndarray
    blocks: list
    encoded: Encoded
    scheme: BaselineScheme
    shape: tuple = field(default=())


def transmit_image(img: np.ndarray, n_channel_symbols: int, scheme: BaselineScheme,
                   encoded: Encoded | None = None) -> TxImage:
    """Source-code ``img`` (uint8 [H, W, 3]) to the scheme's budget, add CRC + LDPC, map to QAM.

    ``encoded``: a ``source_codec.encode_to_budget(img, scheme.budget_bytes(n))`` result to reuse
    (schemes with equal budgets share it); computed when None.
    """
    blocks = scheme.blocks(n_channel_symbols)
    budget = scheme.budget_bytes(n_channel_symbols)
    enc = encode_to_budget(img, budget) if encoded is None else encoded
    if len(enc.data) > budget:
        raise ValueError(f"encoded: {len(enc.data)} bytes exceed the budget of {budget}")
    n_info = ldpc.info_bits(blocks)
    data = np.zeros(n_info, np.uint8)
    bits = np.unpackbits(np.frombuffer(enc.data, np.uint8))
    data[:bits.size] = bits
    coded = ldpc.encode(data, blocks) if blocks else np.zeros(0, np.uint8)
    pad = (-coded.size) % scheme.bps
    coded = np.concatenate([coded, np.zeros(pad, np.uint8)])
    return TxImage(coded, modulate(coded, scheme.modulation), blocks, enc, scheme, tuple(np.shape(img)))


def receive_image(llr: np.ndarray, blocks: list, shape: tuple[int, int, int]) -> tuple[np.ndarray, dict]:
    """Coded-bit LLRs (positive = bit 0; 0 where a frame was lost) -> (uint8 image, info).

    ``llr`` holds at least ``sum(block.n)`` values (the QAM padding after them is ignored).
    ``info``: ``blocks_ok`` (per block True/False; None after the first lost block: not decoded),
    ``bytes_kept`` (container bytes handed to the image decoder), ``decoded`` (bool, False when the
    fallback image was shown).
    """
    return receive_images([llr], blocks, [shape])[0]


def receive_images(llrs: list[np.ndarray], blocks: list, shapes: list[tuple[int, int, int]]
                   ) -> list[tuple[np.ndarray, dict]]:
    """``receive_image`` for several images sent with the same ``blocks``.

    Blocks are decoded in stages (block 0, then the next 4, 16, ... blocks), each stage one gr-fec
    pass per code over the images whose blocks all passed so far: the container is cut at the first
    lost block, so the blocks after it cannot change the image and are not decoded (their
    ``blocks_ok`` entry is None). Same images as decoding every block, much faster below the cliff.
    """
    if not blocks:
        return [(fallback_image(s), {"blocks_ok": [], "bytes_kept": 0, "decoded": False}) for s in shapes]
    n = sum(c.n for c in blocks)
    parts = []
    for llr in llrs:
        llr = np.asarray(llr, np.float64).ravel()
        if llr.size < n:
            raise ValueError(f"llr: {llr.size} values, the blocks need {n}")
        parts.append(llr[:n])
    nb = len(blocks)
    starts = np.cumsum([0] + [c.n for c in blocks])
    pay = np.cumsum([0] + [c.payload for c in blocks])
    data = [np.zeros(int(pay[-1]), np.uint8) for _ in parts]
    ok: list[list] = [[None] * nb for _ in parts]
    alive, a, step = list(range(len(parts))), 0, 1
    while alive and a < nb:
        b = min(nb, a + step)
        d, k = ldpc.decode(np.concatenate([parts[i][starts[a]:starts[b]] for i in alive]), list(blocks[a:b]) * len(alive))
        m, still = int(pay[b] - pay[a]), []
        for j, i in enumerate(alive):
            data[i][pay[a]:pay[b]] = d[j * m:(j + 1) * m]
            kk = k[j * (b - a):(j + 1) * (b - a)]
            ok[i][a:b] = [bool(v) for v in kk]
            if kk.all():
                still.append(i)
        alive, a, step = still, b, step * 4
    out = []
    for d, k, shape in zip(data, ok, shapes):
        good_bits = 0
        for c, fine in zip(blocks, k):
            if not fine:
                break
            good_bits += c.payload
        kept = np.packbits(d[:good_bits - good_bits % 8]).tobytes()
        img, decoded = decode_container(kept, shape)
        out.append((img, {"blocks_ok": k, "bytes_kept": len(kept), "decoded": decoded}))
    return out


def awgn_llr(symbols: np.ndarray, scheme: BaselineScheme, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """QAM symbols + complex AWGN at Es/N0 ``snr_db`` -> max-log LLRs (positive = bit 0); float64."""
    y = add_awgn(symbols, snr_db, rng)
    return demodulate_llr(y, scheme.modulation, noise_variance(snr_db))


def phy_llr(bits: np.ndarray, scheme: BaselineScheme, snr_db: float, *, spec=None, channel: dict | None = None,
            seed: int = 0, stream_id: int = 1, engine: str = "numpy") -> tuple[np.ndarray, dict]:
    """Coded bits through the OFDM PHY (digital payload) and the channel -> (LLRs float64 [bits.size], info).

    ``phylink.exchange`` with ``kind="digital"``: ``FrameTransmitter.modulate_stream`` frames ->
    channel (``channel`` overrides of ``ChannelConfig``, default flat AWGN at ``snr_db`` with
    ``seed``) -> receiver (``engine`` numpy or gnuradio). LLRs of each received chunk are placed
    by its chunk index; those of lost chunks stay 0. ``info``: ``frames_sent``, ``frames_ok``,
    ``snr_est_db`` (mean of the receiver's estimates).
    """
    from .phylink import exchange, llr_of

    bits = np.asarray(bits, np.uint8).ravel()
    rx = exchange(bits, {"snr_db": float(snr_db), "seed": seed, **(channel or {})}, kind="digital",
                  modulation=scheme.modulation, engine=engine, spec=spec, stream_id=stream_id)
    llr = llr_of(rx, scheme.modulation)[:bits.size]
    return llr, {"frames_sent": rx.frames_sent, "frames_ok": rx.frames_ok, "snr_est_db": rx.snr_est_db}


def capacity_bytes(n_channel_symbols: int, snr_db: float) -> int:
    """Bytes per image at Shannon capacity: ``floor(n * log2(1 + SNR) / 8)``."""
    return int(n_channel_symbols * np.log2(1.0 + undb(snr_db)) // 8)


def required_snr_db(scheme: BaselineScheme) -> float:
    """Shannon limit Es/N0 (dB) of the scheme's spectral efficiency ``bps * rate`` (a lower bound on its cliff)."""
    num, den = scheme.code_rate.split("/")
    eta = scheme.bps * int(num) / int(den)
    return float(10 * np.log10(2 ** eta - 1))
