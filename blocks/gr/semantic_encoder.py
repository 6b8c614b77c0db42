"""``semcom_semantic_encoder``: images -> PDUs of analog symbols for ``semcom_ofdm_tx``.

Per image (see ``semcom.imagelink``)::

    image (file / folder / array) -> CodecRuntime.encode (JSCC at the bandwidth ratio of the
    checkpoint, SNR hint) -> interleaved unit-power symbols [k]
    -> PDU 1: the stream descriptor (BPSK, chunk 0 of 1, flags DESCRIPTOR_FLAG)
    -> PDU 2: the k symbols (no chunk fields: semcom_ofdm_tx cuts them into
              max_payload_symbols frames, chunk_index/chunk_count in every header)

Both PDUs carry ``stream_id`` (consecutive from ``first_stream_id``, mod 65536) and ``codec_id``.
The image and its send time go into ``semcom.imagelink.REFERENCES`` so a decoder in the same
process reports PSNR/SSIM and end-to-end latency.

Inputs: message port ``in`` takes a path (PMT symbol/string), a PDU whose meta has ``path``, or
a PDU of a u8vector image with meta ``height``/``width`` (``[H, W, 3]`` flattened). The
``images`` parameter (file, folder or comma-separated list) is sent by a thread after start,
``rate`` images per second (0: as fast as the encoder runs), once or ``repeat``-ed.

torch is imported only when the block is built (GRC imports this module to read docs).
A bad image (missing, corrupt, too small/large, bad PDU) is logged and counted in
``n_errors``; the flowgraph keeps running.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pmt
from gnuradio import gr

from .pdu_utils import PduError, make_pdu, parse_pdu

__all__ = ["semcom_semantic_encoder", "build_codec"]


def build_codec(config: Any = "", checkpoint: str = "", ratio: str = "", consistency: str = "",
                teacher: str = "", device: str = "", codec_id: int = 0, decoders: str | None = None):
    """A ``CodecRuntime`` from a config (path / ``Config`` / "" = defaults) and explicit overrides.

    Each argument left empty ("" / 0) takes the config's ``model`` field (``semcom.config.with_model``):
    the JSCC checkpoint is ``checkpoint``, else ``model.checkpoint``, else the shipped/trained one
    for ``ratio`` (else ``model.ratio``). ``codec_id`` 0 and ``model.codec_id`` 0: derived from the
    checkpoint. ``decoders`` (a decoder spec; "" = ``model.decoder``): also load the diffusion
    checkpoints those decoders need (``consistency``/``teacher`` arguments, else the config's,
    else the shipped ones paired with the JSCC checkpoint's own ratio); None (the encoder): only
    the ``consistency``/``teacher`` arguments given.
    """
    from semcom.config import with_model
    from semcom.imagelink import CodecRuntime, checkpoint_ratio, extra_checkpoints, find_checkpoint

    cfg = with_model(_config(config), checkpoint=checkpoint or None, ratio=ratio or None,
                     decoder=decoders or None)
    model = cfg.model
    ckpt = find_checkpoint(model.ratio, model.checkpoint)
    if decoders is not None:
        consistency, teacher = extra_checkpoints(checkpoint_ratio(ckpt) or model.ratio, model.decoder,
                                                 consistency or model.consistency, teacher or model.teacher)
    return CodecRuntime(ckpt, consistency, teacher, codec_id or model.codec_id, device or model.device)


def _config(config: Any):
    """The ``Config`` behind a block's ``config`` parameter: a YAML path, a ``Config``, or "" / None (defaults)."""
    from semcom.config import Config, load_config

    if config is None or config == "":
        return Config()
    if isinstance(config, str):
        return load_config(config)
    return config


class semcom_semantic_encoder(gr.basic_block):
    """Images in -> descriptor + symbol PDUs out (message port ``out``) for ``semcom_ofdm_tx``.

    Parameters
    ----------
    config : YAML config path, ``Config`` or "" (defaults); model section: checkpoint, ratio,
        codec_id, device.
    checkpoint : JSCC checkpoint ("" = ``model.checkpoint``, else the shipped one for the ratio).
    ratio : bandwidth ratio selecting the shipped checkpoint ("1/6", "1/24"; "" = ``model.ratio``).
    snr_db : SNR hint given to the encoder (dB, Es/N0).
    images : file, folder or comma-separated files sent after start ("" = none, "sample" = the
        bundled sample image).
    rate : images per second for ``images`` (0 = as fast as possible).
    repeat : loop over ``images`` until stopped.
    first_stream_id : stream id of the first image.
    codec : an existing ``CodecRuntime`` to share (overrides checkpoint/ratio/config).
    """

    def __init__(self, config: Any = "", checkpoint: str = "", ratio: str = "", snr_db: float = 10.0,
                 images: str = "", rate: float = 0.0, repeat: bool = False, first_stream_id: int = 0,
                 codec=None):
        gr.basic_block.__init__(self, name="semcom_semantic_encoder", in_sig=None, out_sig=None)
        self.codec = codec if codec is not None else build_codec(config, checkpoint, ratio)
        self.snr_db = float(snr_db)
        self.images = images
        self.rate = float(rate)
        if self.rate < 0:
            raise ValueError(f"rate: must be >= 0 images/s, got {rate}")
        self.repeat = bool(repeat)
        self._next_id = int(first_stream_id) & 0xFFFF
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.n_images = 0
        self.n_errors = 0
        self.encode_seconds: list[float] = []
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._handle)
        if images == "sample":  # the bundled sample image (semcom.imagelink.sample_image)
            self._paths = ["sample"]
        elif images:  # validate early: a missing file is a construction error, not a silent no-op
            from semcom.imagelink import image_paths

            self._paths = image_paths(images)
        else:
            self._paths = []

    # ------------------------------------------------------------------ control
    def set_snr_db(self, snr_db: float) -> None:
        self.snr_db = float(snr_db)

    def start(self) -> bool:
        if self._paths and (self._thread is None or not self._thread.is_alive()):
            self._stop.clear()
            self._thread = threading.Thread(target=self._feed, name="semcom_encoder_feed", daemon=True)
            self._thread.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(10.0)
        return True

    def _feed(self) -> None:
        from semcom.imagelink import load_image, sample_image

        period = 1.0 / self.rate if self.rate > 0 else 0.0
        t_next = time.monotonic()
        while not self._stop.is_set():
            for p in self._paths:
                if self._stop.wait(max(0.0, t_next - time.monotonic())):
                    return
                t_next = max(t_next + period, time.monotonic()) if period else time.monotonic()
                try:
                    self.send_image(*(sample_image() if p == "sample" else (load_image(p), str(p))))
                except (ValueError, OSError) as e:
                    self._error(f"{e}")
            if not self.repeat:
                return

    # ------------------------------------------------------------------ encoding
    def _error(self, text: str) -> None:
        self.n_errors += 1
        gr.log.error(f"semcom_semantic_encoder: {text}")

    def encode(self, img: np.ndarray, name: str = "") -> tuple[int, list[tuple[dict, np.ndarray]]]:
        """Encode one image -> ``(stream_id, [(meta, symbols complex64), ...])`` (descriptor first).

        Registers the image in ``REFERENCES``. Raises ``ImageError`` for a bad image.
        """
        from semcom.imagelink import DESCRIPTOR_FLAG, REFERENCES, Descriptor, check_image, encode_descriptor

        img = check_image(img, name or "image")
        t0 = time.monotonic()
        z = self.codec.encode(img, self.snr_db)
        with self._lock:
            sid = self._next_id
            self._next_id = (sid + 1) & 0xFFFF
        REFERENCES.put(sid, img, name, t0)
        self.encode_seconds.append(time.monotonic() - t0)
        cid = self.codec.codec_id
        desc = Descriptor(cid, img.shape[0], img.shape[1], self.codec.ratio, self.snr_db, int(z.size),
                          self.codec.interleave_seed)
        base = {"stream_id": sid, "codec_id": cid, "kind": "analog"}
        pdus = [(dict(base, chunk_index=0, chunk_count=1, flags=DESCRIPTOR_FLAG), encode_descriptor(desc)),
                (dict(base), z)]
        self.n_images += 1
        return sid, pdus

    def send_image(self, img: np.ndarray, name: str = "") -> int:
        """Encode ``img`` (uint8 ``[H, W, 3]``) and publish its PDUs on ``out``; returns the stream id."""
        sid, pdus = self.encode(img, name)
        for meta, data in pdus:
            self.message_port_pub(pmt.intern("out"), make_pdu(meta, data))
        return sid

    def _handle(self, msg) -> None:
        from semcom.imagelink import check_image, load_image

        try:
            if pmt.is_symbol(msg):
                path = pmt.symbol_to_string(msg)
                self.send_image(load_image(path), name=path)
                return
            meta, data = parse_pdu(msg)
            if "path" in meta:
                self.send_image(load_image(str(meta["path"])), name=str(meta["path"]))
                return
            h, w = int(meta.get("height", 0)), int(meta.get("width", 0))
            if data.dtype != np.uint8 or h <= 0 or w <= 0 or data.size != h * w * 3:
                raise PduError(f"image PDU needs a u8vector of height*width*3 values and meta height/width, got "
                               f"{data.dtype} [{data.size}] with height={h} width={w}")
            self.send_image(check_image(data.reshape(h, w, 3), "image PDU"), name=str(meta.get("name", "")))
        except (ValueError, TypeError, OSError) as e:  # ImageError, PduError, bad PMT
            self._error(f"dropped input: {e}")
