"""Pure numpy OFDM PHY for analog semantic payloads (imports neither gnuradio nor torch)."""

from .frame import FrameSpec, FrameSpecError
from .header import HeaderFields
from .tx import FrameTransmitter, TxFrame, normalize_power

__all__ = ["FrameSpec", "FrameSpecError", "HeaderFields", "FrameTransmitter", "TxFrame", "normalize_power"]
