"""Pure numpy OFDM PHY for analog semantic payloads (imports neither gnuradio nor torch)."""

from .frame import FrameSpec, FrameSpecError
from .header import HeaderFields
from .tx import FrameTransmitter, TxFrame, normalize_power
from .rx import FrameDemodulator, RxFrame, RxStats, StreamingReceiver, genie_equalize, receive

__all__ = ["FrameSpec", "FrameSpecError", "HeaderFields", "FrameTransmitter", "TxFrame", "normalize_power",
           "FrameDemodulator", "RxFrame", "RxStats", "StreamingReceiver", "genie_equalize", "receive"]
