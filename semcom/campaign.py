"""Measurement campaigns: sweep config fields, N payloads per point, one CSV row per payload and decoder.

A campaign file (YAML, strictly checked: unknown keys and wrong types are errors naming the key)::

    config: ../hw_configs/loopback.yaml   # base config, relative to this file
    set: [channel.profile=indoor]         # fixed overrides (optional)
    sweep:                                # cartesian product; the last field varies fastest
      channel.snr_db: [0, 5, 10]
      radio.tx_gain_db: [-20, -10]
    payloads_per_point: 4
    payload: {kind: random, streams: 1, symbols: 3072, seed: 0}
    link: simulator                       # simulator (numpy channel of the config) | radio
    record_iq: false                      # SigMF capture per payload (frame annotations)
    out: ../runs/campaign_snr             # --out overrides

``payload: {kind: images, images: ../pics, seed: 0}`` sends images instead (``images``: a file, a
folder or a comma-separated list, relative to this file, or ``cifar10:PATH:N``: the first ``N``
images of a CIFAR-10 npz, ``PATH`` a folder holding ``test.npz`` or the npz itself, in the fixed
shuffle of ``semcom.bench_compare.load_images``, labels from its ``y``; payload ``k`` sends image
``k % count``; without ``images``, seeded synthetic ``SYNTHETIC_SIZE`` scenes): each is encoded by
the point's JSCC, framed as one stream, sent over the link, reassembled (lost chunks erased, with
the receiver's per-symbol noise variance) and decoded by every decoder of the point, one row each
(the decoders see the same received symbols); ``psnr_db`` and ``ssim`` compare it with the
original. The shipped CIFAR-10 classifier (``CLASSIFIER``; images resized to 32x32 first) then
gives ``accuracy`` (its top-1 on the reconstruction equals the label: labelled CIFAR-10 images
only) and ``agreement`` (its top-1 on the reconstruction equals its top-1 on the original: any
image), 1 or 0 per row, so a point's mean is the accuracy / agreement rate; an image lost entirely
counts 0 for both. Works on every link (simulator, Pluto burst mode, USRP through GNU Radio).

The models of a point come from its config's ``model`` section (``point_models``), so
``model.ratio``, ``model.checkpoint``, ``model.decoder``, ``model.nfe``, ``model.consistency`` and
``model.teacher`` can be swept like any field: the JSCC checkpoint is ``model.checkpoint`` or the
shipped/trained one for ``model.ratio``; the decoders are ``model.decoder`` (``jscc``, ``cmN``,
``consistency`` = ``cm<model.nfe>``, ``teacher``; ``auto`` = jscc plus consistency when a
checkpoint exists); the diffusion checkpoints are ``model.consistency``/``model.teacher`` or the
shipped/trained ones paired with the JSCC checkpoint's own ratio. A decoder without its checkpoint,
a missing or wrong-kind checkpoint, or a swept ``model.ratio`` that a fixed ``model.checkpoint``
contradicts stops the campaign before anything runs, naming the point and the field. Relative
``model.checkpoint``/``consistency``/``teacher`` paths in the file's ``set:`` and ``sweep:`` are
relative to the campaign file (``--set`` on the command line: to the working directory). Loaded
codecs are kept per (checkpoints, codec id, device) for the whole run. Sweeping ``model.*`` with
random payloads is refused (it would change nothing).

Every point's config is validated before anything runs (a bad sweep value fails at once,
naming the point and field). ``link: radio`` drives ``radio.device``: pluto / fake_pluto in
burst mode (cyclic TX + capture, ``semcom.radio.pluto_burst``), uhd / fake_uhd through GNU Radio
(``semcom.radio.link.GnuRadioLink``: TX and RX flowgraphs on the same USRP; decoded frames only,
so no IQ recording there; ``timeout_s`` bounds the wait for a payload's frames).

Output directory: ``run.json`` (campaign, resolved base config, git revision, checksum of the
campaign file, ``models``: role, path, sha256 and points of every checkpoint used, classifier
included; a fingerprint), ``results.csv`` (``ROW_FIELDS`` plus one column per swept field after
the key columns), ``iq/`` (SigMF captures). Rows are appended one at a time (flush + fsync), so a
run killed at any moment keeps every finished row; running the same command again resumes: a torn
last line is cut, finished ``(point, payload, decoder)`` keys are skipped (a payload whose rows
were cut short is sent again and decoded by the missing decoders only), so no row is lost or
duplicated. Results of a different campaign in the same directory are refused, and so is a resume
whose checkpoints changed (checksums differ from ``run.json``).

``run_campaign(..., workers=N)`` (N > 1) or ``cluster=ADDRESS`` runs the payloads as independent
jobs on a local Dask pool or a running Dask cluster (``semcom.sweep_pool``; ``_run_on_pool``): the
same rows as ``workers=1`` (every payload is seeded by its point and index), appended by this
process alone as jobs finish, so the resume above holds; weights load once per worker.

Per row: ``decoder`` (empty for random payloads), ``nfe`` (network evaluations of the decoder,
the JSCC decoder pass counting one as in ``semcom bench codec``: 1 for jscc, N + 1 for cmN,
2 x steps for teacher), ``ratio`` (the JSCC checkpoint's own), ``symbols``
(payload symbols sent), ``status`` (``ok`` / ``no_frames``), frames sent/received, ``frame_loss``,
the receiver's ``snr_est_db``, the post-equalisation ``snr_meas_db`` against the sent symbols,
``latency_s`` (TX start to frames decoded, plus this decoder's image decode), ``decode_s`` (the
image decode alone), and, for image payloads, ``psnr_db`` / ``ssim`` / ``accuracy`` /
``agreement`` (``ACCURACY_NOTE``). Failures: a device error aborts with ``CampaignError`` (rows so
far intact; rerun to resume); a full disk while recording IQ is recorded in the row's ``note`` (IQ
recording stops, measurements go on); a full disk while appending a row cuts the partial line and
aborts.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import itertools
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from semcom.blocks.phy.sigmf_io import jsonable
from semcom.config import RANDOM_STREAM_SYMBOLS, ConfigError, load_config, parse_override, yaml_load

_DEFAULT_PAYLOAD = {"kind": "random", "streams": 1, "symbols": RANDOM_STREAM_SYMBOLS, "seed": 0}

__all__ = ["Campaign", "CampaignError", "PointModels", "load_campaign", "point_models", "run_campaign", "read_rows",
           "summarize", "quality_series", "plot", "ROW_FIELDS"]

KEY_FIELDS = ["point", "payload", "decoder"]  # a row's identity (resume skips finished keys)
ROW_FIELDS = KEY_FIELDS + ["status", "nfe", "ratio", "symbols", "frames_sent", "frames_received", "frame_loss",
                           "snr_est_db", "snr_meas_db", "latency_s", "decode_s", "psnr_db", "ssim", "accuracy",
                           "agreement", "iq_file", "note", "time_utc"]
LINKS = ("simulator", "radio")
_KEYS = {"config": (str, type(None)), "set": list, "sweep": dict, "payloads_per_point": int, "payload": dict,
         "link": str, "record_iq": bool, "out": (str, type(None)), "timeout_s": (int, float)}
_PAYLOAD_KEYS = {"kind": str, "streams": int, "symbols": int, "seed": int, "images": str}
PAYLOAD_KINDS = ("random", "images")
MODEL_PATHS = ("model.checkpoint", "model.consistency", "model.teacher")  # rebased on the campaign file
SYNTHETIC_SIZE = (96, 128)  # (H, W) of the synthetic images ``payload.kind: images`` sends without ``images``
CIFAR_PREFIX = "cifar10:"


def _shipped_classifier() -> Path:
    import semcom.models as m  # light: the package folder (installed or editable), no torch

    return Path(m.__path__[0]) / "checkpoints" / "classifier.safetensors"


CLASSIFIER = _shipped_classifier()  # the CIFAR-10 evaluation classifier (models/checkpoints/README.md)
ACCURACY_NOTE = ("accuracy: shipped CIFAR-10 classifier's top-1 on the reconstruction == label (labelled CIFAR-10 "
                 "images only); agreement: its top-1 on the reconstruction == its top-1 on the original (any "
                 "image, resized to 32x32); 1/0 per row, a lost image counts 0")


class CampaignError(ValueError):
    """A campaign that cannot run or go on; the message names the file/field/point."""


@dataclass
class Campaign:
    """A validated campaign file. ``sweep``: field -> values (ordered); ``source``: the file."""

    config: str | None
    sweep: dict[str, list]
    payloads_per_point: int = 4
    payload: dict = field(default_factory=lambda: dict(_DEFAULT_PAYLOAD))
    link: str = "simulator"
    record_iq: bool = False
    out: str | None = None
    set: list = field(default_factory=list)
    timeout_s: float = 10.0
    source: str | None = None

    def points(self) -> list[dict[str, Any]]:
        """Every sweep point as ``{field: value}`` (cartesian product, last field fastest)."""
        names = list(self.sweep)
        return [dict(zip(names, vals)) for vals in itertools.product(*(self.sweep[n] for n in names))]

    def overrides(self, point: dict[str, Any]) -> list[str]:
        return list(self.set) + [f"{k}={json.dumps(v)}" for k, v in point.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "set": self.set, "sweep": self.sweep, "payloads_per_point": self.payloads_per_point,
                "payload": self.payload, "link": self.link, "record_iq": self.record_iq, "timeout_s": self.timeout_s}


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file (see the module docstring); paths are made absolute."""
    p = Path(path)
    if not p.is_file():
        raise CampaignError(f"{p}: campaign file not found")
    try:
        d = yaml_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise CampaignError(f"{p}: cannot read campaign: {e}") from None
    if not isinstance(d, dict):
        raise CampaignError(f"{p}: top level must be a mapping")

    def bad(key: str, msg: str) -> CampaignError:
        return CampaignError(f"{p}: {key}: {msg}")

    for k, v in d.items():
        if k not in _KEYS:
            raise bad(k, f"unknown key (valid keys: {', '.join(_KEYS)})")
        if isinstance(v, bool) and _KEYS[k] is not bool or not isinstance(v, _KEYS[k]):
            raise bad(k, f"wrong type {type(v).__name__}")
    sweep = d.get("sweep") or {}
    if not sweep:
        raise bad("sweep", "needs at least one field with a list of values")
    for k, v in sweep.items():
        if not isinstance(k, str) or "." not in k:
            raise bad(f"sweep.{k}", "must be a section.key config field")
        if not isinstance(v, list) or not v:
            raise bad(f"sweep.{k}", "must be a non-empty list of values")
    payload = dict(_DEFAULT_PAYLOAD)
    for k, v in (d.get("payload") or {}).items():
        if k not in _PAYLOAD_KEYS:
            raise bad(f"payload.{k}", f"unknown key (valid keys: {', '.join(_PAYLOAD_KEYS)})")
        if isinstance(v, bool) or not isinstance(v, _PAYLOAD_KEYS[k]):
            raise bad(f"payload.{k}", f"wrong type {type(v).__name__}")
        payload[k] = v
    if payload["kind"] not in PAYLOAD_KINDS:
        raise bad("payload.kind", f"{payload['kind']!r}: must be one of {', '.join(PAYLOAD_KINDS)}")
    if "images" in payload:
        if payload["kind"] != "images":
            raise bad("payload.images", "only with kind: images")
    if payload.get("images", "").startswith(CIFAR_PREFIX):
        try:
            npz, count = _cifar_spec(payload["images"], p.parent)
        except ValueError as e:
            raise bad("payload.images", str(e)) from None
        payload["images"] = f"{CIFAR_PREFIX}{npz}:{count}"
    elif "images" in payload:
        from semcom.imagelink import ImageError, image_paths

        spec = [str((p.parent / s.strip()).resolve()) for s in payload["images"].split(",") if s.strip()]
        try:
            if not image_paths(spec):
                raise ImageError("names no image")
        except ImageError as e:
            raise bad("payload.images", str(e)) from None
        payload["images"] = ",".join(spec)
    if payload["streams"] < 1 or payload["symbols"] < 1:
        raise bad("payload", "streams and symbols must be >= 1")
    n = d.get("payloads_per_point", 4)
    if n < 1:
        raise bad("payloads_per_point", f"must be >= 1, got {n}")
    link = d.get("link", "simulator")
    if link not in LINKS:
        raise bad("link", f"must be one of {', '.join(LINKS)}; got {link!r}")
    model_swept = [k for k in sweep if k.startswith("model.")]
    if model_swept and payload["kind"] != "images":
        raise bad(f"sweep.{model_swept[0]}", "the model section acts on image payloads only (payload.kind: images); "
                                             "with random payloads every point would send the same")
    base = p.parent
    sweep = {k: [_rebase(v, base) for v in vals] if k in MODEL_PATHS else vals for k, vals in sweep.items()}
    sets = []
    for s in d.get("set") or []:
        try:
            key, value = parse_override(s) if isinstance(s, str) else (None, None)
        except ConfigError as e:
            raise bad("set", str(e)) from None
        if key is None:
            raise bad("set", f"{s!r}: entries must be section.key=value strings")
        dotted = ".".join(key)
        sets.append(f"{dotted}={json.dumps(_rebase(value, base))}" if dotted in MODEL_PATHS else s)
    cfg = d.get("config")
    out = d.get("out")
    return Campaign(config=str((base / cfg).resolve()) if cfg else None, sweep=sweep, payloads_per_point=n,
                    payload=payload, link=link, record_iq=bool(d.get("record_iq", False)),
                    out=str((base / out).resolve()) if out else None, set=sets,
                    timeout_s=float(d.get("timeout_s", 10.0)), source=str(p))


def _rebase(value: Any, base: Path) -> Any:
    """A relative checkpoint path of the campaign file, made absolute against its folder (others as given)."""
    if isinstance(value, str) and value.strip() and not Path(value).expanduser().is_absolute():
        return str((base / value).resolve())
    return value


# ---------------------------------------------------------------------- metadata
def _sha256(path: str | Path | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _git_revision() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        return (rev + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def _fingerprint(camp: Campaign, base_cfg) -> str:
    blob = json.dumps({"campaign": camp.to_dict(), "config": jsonable(base_cfg.to_dict())}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _models_record(models: list[PointModels | None], images: bool) -> list[dict[str, Any]]:
    """``run.json`` ``models``: ``{role, path, sha256, points}`` per checkpoint the run loads (the
    classifier for image payloads included)."""
    pts: dict[tuple[str, str], list[int]] = {}
    for i, pm in enumerate(models):
        for key in pm.paths() if pm is not None else []:
            pts.setdefault(key, []).append(i)
    if images and CLASSIFIER.is_file():
        pts[("classifier", str(CLASSIFIER))] = list(range(len(models)))
    return [{"role": r, "path": p, "sha256": _sha256(p), "points": v} for (r, p), v in pts.items()]


# ---------------------------------------------------------------------- rows
def _repair(csv_path: Path) -> None:
    """Cut a torn last line (a run killed while writing it)."""
    if not csv_path.is_file():
        return
    data = csv_path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(csv_path, "r+b") as fh:
            fh.truncate(keep)


def read_rows(out: str | Path) -> list[dict[str, str]]:
    """Rows of ``out/results.csv`` (strings as written); a torn last line is ignored."""
    path = Path(out) / "results.csv"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


class _RowWriter:
    """Appends whole rows: one write, flush and fsync per row; a failed write is cut back."""

    def __init__(self, path: Path, fields: list[str]):
        self.path = path
        self.fields = fields
        _repair(path)
        new = not path.is_file() or path.stat().st_size == 0
        if not new:
            with open(path, encoding="utf-8") as fh:
                header = next(csv.reader(fh), None)
            if header != fields:
                raise CampaignError(f"{path}: existing header {header} differs from this campaign's columns {fields}")
        self.fh = open(path, "a", encoding="utf-8", newline="")
        if new:
            self._write(fields)

    def _write(self, values: list) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        pos = self.fh.tell()
        try:
            self.fh.write(buf.getvalue())
            self.fh.flush()
            os.fsync(self.fh.fileno())
        except OSError as e:
            try:
                self.fh.truncate(pos)
            except OSError:
                pass
            raise CampaignError(f"{self.path}: cannot append a results row ({e}); every earlier row is intact, "
                                f"free space and rerun to resume") from None

    def write(self, row: dict[str, Any]) -> None:
        self._write(["" if row.get(k) is None else row[k] for k in self.fields])

    def close(self) -> None:
        self.fh.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return v


# ---------------------------------------------------------------------- one payload
def _exchange_simulator(cfg, tx, index: int):
    from semcom.blocks.phy.channel import simulate

    ch = cfg.channel
    if ch.seed is not None:
        ch = ch.replace(seed=int(ch.seed) + index)
    tail = np.zeros(4 * cfg.frame.symbol_len, np.complex64)
    return simulate(np.concatenate([tx.iq, tail]), ch), {}


def _cifar_spec(spec: str, base: Path | None = None) -> tuple[Path, int]:
    """``cifar10:PATH:N`` -> (npz path, N); ``PATH`` (relative to ``base``) is a folder holding
    ``test.npz`` or an npz file. Raises ValueError saying what is wrong."""
    path, sep, count = spec[len(CIFAR_PREFIX):].rpartition(":")
    if not spec.startswith(CIFAR_PREFIX) or not sep or not path:
        raise ValueError(f"{spec!r} must look like cifar10:PATH:N (a CIFAR-10 folder or npz and an image count)")
    try:
        n = int(count)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{spec!r}: the image count {count!r} must be an integer >= 1")
    p = ((base / path) if base is not None else Path(path)).resolve()
    npz = p / "test.npz" if p.is_dir() else p
    if not npz.is_file() or npz.suffix != ".npz":
        raise ValueError(f"{spec!r}: {npz} is not an npz file (give a folder holding test.npz or the npz)")
    return npz, n


class _ImageSource:
    """The images of ``payload``: ``get(k)`` -> ``(uint8 [H, W, 3], label or None)`` for payload ``k``."""

    def __init__(self, pl: dict):
        from semcom.imagelink import image_paths

        spec = pl.get("images") or ""
        self.seed = pl["seed"]
        self.arrays: list[np.ndarray] | None = None
        self.labels: np.ndarray | None = None
        self.files = []
        if spec.startswith(CIFAR_PREFIX):
            from semcom.bench_compare import load_images

            npz, n = _cifar_spec(spec)
            try:
                self.arrays, self.labels, _ = load_images(npz, n)
            except (OSError, ValueError, KeyError) as e:
                raise CampaignError(f"payload.images: {npz}: {e}") from None
        elif spec:
            self.files = image_paths(spec.split(","))

    def get(self, k: int) -> tuple[np.ndarray, int | None]:
        from semcom.imagelink import load_image, synthetic_image

        if self.arrays is not None:
            i = k % len(self.arrays)
            return self.arrays[i], (None if self.labels is None else int(self.labels[i]))
        if self.files:
            return load_image(self.files[k % len(self.files)]), None
        return synthetic_image(*SYNTHETIC_SIZE, seed=self.seed + k), None


class _Classifier:
    """The shipped CIFAR-10 classifier: ``top1(uint8 [H, W, 3]) -> class`` (resized to 32x32 first)."""

    def __init__(self, path: str | Path = CLASSIFIER):
        from semcom.bench_compare import load_classifier

        self.model = load_classifier(str(path))

    def top1(self, img: np.ndarray) -> int:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1)[None].float() / 255.0
        if tuple(x.shape[-2:]) != (32, 32):
            x = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            return int(self.model(x).argmax(1)[0])


@dataclass(frozen=True)
class PointModels:
    """The models of one sweep point (image payloads), resolved from its ``model`` section.

    ``checkpoint``: the JSCC checkpoint path; ``ratio``: its own bandwidth ratio (``"1/6"``);
    ``decoders``: the decoder names to run, one row each (``jscc``, ``cmN``, ``teacher``);
    ``consistency``/``teacher``: the diffusion checkpoints those decoders need ("" = not needed).
    """

    checkpoint: str
    ratio: str
    decoders: tuple[str, ...]
    consistency: str = ""
    teacher: str = ""

    def paths(self) -> list[tuple[str, str]]:
        """``(role, path)`` of every checkpoint this point loads."""
        return [(r, p) for r, p in (("jscc", self.checkpoint), ("consistency", self.consistency),
                                    ("teacher", self.teacher)) if p]


def _checkpoint_kind(path: str | Path) -> str | None:
    """``semcom.kind`` of a checkpoint's safetensors metadata (no tensor read); None if unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return (f.metadata() or {}).get("semcom.kind")
    except Exception:  # noqa: BLE001 - safetensors raises several types for a corrupt header
        return None


def point_models(cfg, where: str = "config", point: dict | None = None) -> PointModels:
    """Resolve the models of a point whose config is ``cfg`` (no weights loaded).

    ``where`` names the point in errors, ``point`` its swept fields (a swept ``model.ratio`` must
    agree with a fixed ``model.checkpoint``). Raises ``CampaignError`` naming ``where`` and the
    ``model.*`` field: no JSCC checkpoint for the ratio, a file that is missing or of another kind,
    a decoder whose diffusion checkpoint is neither given nor shipped/trained for the ratio.
    """
    from fractions import Fraction

    from semcom.imagelink import checkpoint_ratio, decoder_names, extra_checkpoints, find_checkpoint, ratio_tag

    m = cfg.model
    field_ = "model.checkpoint" if m.checkpoint else "model.ratio"
    try:
        ckpt = str(find_checkpoint(m.ratio, m.checkpoint).resolve())
    except FileNotFoundError as e:
        raise CampaignError(f"{where}: {field_}: {e}") from None
    own = checkpoint_ratio(ckpt)
    if own is None:
        raise CampaignError(f"{where}: {field_}: {ckpt} is not a readable JSCC checkpoint")
    if m.checkpoint and "model.ratio" in (point or {}) and Fraction(m.ratio) != own:
        raise CampaignError(f"{where}: model.ratio {m.ratio} contradicts model.checkpoint {ckpt} (ratio {own}): a "
                            f"checkpoint carries its own ratio; sweep model.checkpoint instead, or drop it")
    cons, teach = extra_checkpoints(own, m.decoder, m.consistency, m.teacher)
    names = tuple(dict.fromkeys(decoder_names(m.decoder, m.nfe, bool(cons), m.knob_suffix)))  # "consistency,cm1": one cm1
    need = {"consistency": any(d.startswith("cm") for d in names), "teacher": "teacher" in names}
    found = {"consistency": cons, "teacher": teach}
    for kind, path in found.items():
        if not need[kind]:
            found[kind] = ""
            continue
        if not path:
            tag = ratio_tag(own)
            raise CampaignError(
                f"{where}: model.decoder {m.decoder!r} needs a {kind} checkpoint for ratio {own}: model.{kind} is "
                f"not set and none is shipped or trained (models/checkpoints/{kind}-{tag}.safetensors, "
                f"runs/{kind}*{tag}*/best.safetensors); set model.{kind}=PATH or drop the decoder")
        path = Path(path).expanduser()
        if not path.is_file():
            raise CampaignError(f"{where}: model.{kind}: {path}: checkpoint not found")
        if (got := _checkpoint_kind(path)) != kind:
            raise CampaignError(f"{where}: model.{kind}: {path} is " +
                                (f"a {got!r} checkpoint, not a {kind} one" if got else "not a readable checkpoint"))
        found[kind] = str(path.resolve())
    return PointModels(ckpt, str(own), names, found["consistency"], found["teacher"])


def _codec(cfg, models: PointModels, cache: dict, where: str = "config"):
    """The ``CodecRuntime`` of ``models``, loaded once per (checkpoints, codec id, device) into ``cache``."""
    from semcom.imagelink import CodecRuntime

    key = ("codec", models.checkpoint, models.consistency, models.teacher, cfg.model.codec_id, cfg.model.device)
    if key not in cache:
        try:
            cache[key] = CodecRuntime(models.checkpoint, models.consistency, models.teacher,
                                      codec_id=cfg.model.codec_id, device=cfg.model.device)
        except (OSError, ValueError, RuntimeError) as e:  # CheckpointError is a ValueError
            raise CampaignError(f"{where}: cannot load the models {dict(models.paths())}: {e}") from None
    return cache[key]


def _image_payload(cfg, pl: dict, k: int, cache: dict, models: PointModels | None = None, where: str = "config"):
    """``(uint8 [H, W, 3] image, label or None, CodecRuntime, encoder SNR hint dB)`` for payload ``k``;
    ``models``: the point's (None: resolved from ``cfg``), ``where`` names it in errors; the image
    source and the codecs are kept in ``cache``."""
    codec = _codec(cfg, models or point_models(cfg, where), cache, where)
    if "images" not in cache:
        cache["images"] = _ImageSource(pl)
    img, label = cache["images"].get(k)
    snr = cfg.channel.snr_db
    return img, label, codec, float(snr) if snr is not None and np.isfinite(snr) else 10.0


def _classifier(cache: dict) -> "_Classifier | None":
    """The shipped classifier, loaded once (None when the checkpoint is missing)."""
    if "classifier" not in cache:
        cache["classifier"] = _Classifier() if CLASSIFIER.is_file() else None
    return cache["classifier"]


def _image_metrics_rows(cfg, codec, decoders: list[str] | tuple[str, ...], img: np.ndarray, dec, sid: int,
                        n_symbols: int, snr_hint: float, clf: "_Classifier | None" = None, label: int | None = None,
                        seed: int = 0) -> dict[str, dict]:
    """Reassemble stream ``sid`` from ``dec`` (``frames``, ``payloads``, ``noise_vars``; lost chunks
    erased) once and decode it with each of ``decoders`` (diffusion noise seeded by ``seed``).

    Returns ``{decoder: {psnr_db, ssim, decode_s (s), note, and with clf: agreement, accuracy
    (label given), 1/0}}``; a lost image has no PSNR and counts 0 for the classifier columns.
    """
    from semcom.blocks.phy.chunking import Reassembler
    from semcom.imagelink import image_metrics

    cls: dict[str, Any] = {}
    if clf is not None:  # a lost image: no decision, counted wrong
        cls = {"agreement": 0, **({"accuracy": 0} if label is not None else {})}
    asm = Reassembler(cfg.frame.max_payload_symbols)
    got, snrs = None, []
    for rec, y, nv in zip(dec.frames, dec.payloads, dec.noise_vars):
        if int(rec["stream_id"]) == sid & 0xFFFF:
            snrs.append(float(rec["snr_db"]))
            got = asm.add(sid, int(rec["chunk_index"]), int(rec["chunk_count"]), y, nv) or got
    if got is None:
        got = next(iter(asm.flush(sid, total_symbols=n_symbols)), None)
    if got is None:
        note = "image lost (no frame of its stream)" + (": counted misclassified" if cls else "")
        return {d: {**cls, "note": note} for d in decoders}
    snr = float(np.nanmean(snrs)) if np.isfinite(snrs).any() else snr_hint
    lost = f"{len(got.missing)} of {got.chunk_count} chunks lost" if got.missing else ""
    clean = clf.top1(img) if clf is not None else None
    rows = {}
    for d in decoders:
        t0 = time.perf_counter()
        out = codec.decode(got.symbols[:n_symbols], got.noise_var[:n_symbols], snr, img.shape[:2], d, seed=seed)
        row = {"decode_s": _fmt(time.perf_counter() - t0), "note": lost}
        m = image_metrics(out, img)
        row.update(psnr_db=_fmt(m["psnr"]), ssim=_fmt(m.get("ssim", float("nan"))))
        if clf is not None:
            pred = clf.top1(out)
            row.update(agreement=int(pred == clean), **({"accuracy": int(pred == label)} if label is not None else {}))
        rows[d] = row
    return rows


def _gr_image_frames(gr_link, sid: int):
    """The frames of stream ``sid`` the GNU Radio receiver delivered, with their per-symbol noise
    variance (``semcom_ofdm_rx`` meta ``noise_var``), in the layout ``_image_metrics_row`` reads.
    (``exchange`` returns ``CollectedFrames``, which keeps scalar metadata only.)"""
    from types import SimpleNamespace

    frames, payloads, nvs = [], [], []
    for meta, y in gr_link.rx.collector.frames():
        if int(meta.get("stream_id", -1)) != sid & 0xFFFF:
            continue
        y = np.asarray(y, np.complex64)
        nv = meta.get("noise_var")
        if nv is None or np.size(nv) != y.size:  # no per-symbol variance: the frame's SNR estimate
            nv = np.full(y.size, 10 ** (-float(meta.get("snr_db", 10.0)) / 10), np.float32)
        frames.append({k: v for k, v in meta.items() if np.isscalar(v)})
        payloads.append(y)
        nvs.append(np.asarray(nv, np.float32))
    return SimpleNamespace(frames=frames, payloads=payloads, noise_vars=nvs)


def _uses_gnuradio(cfg) -> bool:
    """USRPs (real or fake) run through GNU Radio; PlutoSDRs through pyadi-iio burst mode."""
    from semcom.radio.limits import hardware_kind

    return hardware_kind(cfg.radio.device) == "uhd"


def _payload_rows(camp: Campaign, out: Path, i: int, pt: dict[str, Any], cfg, pm: PointModels | None, k: int,
                  need: list[str], cache: dict, *, radio=None, gr_link=None, record: bool = False,
                  save: Callable | None = None,
                  log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]], bool]:
    """Send payload ``k`` of point ``i`` (swept fields ``pt``, config ``cfg``, models ``pm``) over the link
    (``radio``: a ``PlutoBurst``, ``gr_link``: a ``GnuRadioLink``, neither: the simulator) and measure it.

    Returns the rows (one per decoder of ``need``: ``ROW_FIELDS`` and the swept fields, ready to write)
    and whether IQ recording goes on (False once the disk is full). Codecs, classifier and images come
    from ``cache``; ``save`` writes a SigMF capture. A device error raises ``CampaignError``."""
    from semcom.radio import RadioError
    from semcom.radio.link import build_waveform, decode_iq, evaluate, random_payloads

    images = camp.payload["kind"] == "images"
    pl = camp.payload
    where = f"point {i} {pt}"
    if images:
        img, label, codec, snr_hint = _image_payload(cfg, pl, k, cache, pm, where)
        streams = [codec.encode(img, snr_hint)]
    else:
        streams = random_payloads(pl["streams"], pl["symbols"], pl["seed"] + 1000 * k)
    t0 = time.perf_counter()
    # distinct stream ids per payload: a late frame of the previous payload never
    # matches this one's symbols
    sid = cfg.link.stream_id + k * pl["streams"]
    tx = build_waveform(cfg, streams, first_stream_id=sid)
    iq = None
    try:
        if gr_link is not None:  # no raw IQ in the GNU Radio path: frames come decoded
            dec = gr_link.exchange(streams, len(tx.headers), camp.timeout_s, sid)
        else:
            if radio is not None:
                from semcom.radio.link import burst_exchange

                iq, _ = burst_exchange(radio, tx)
            else:
                iq, _ = _exchange_simulator(cfg, tx, k)
            dec = decode_iq(cfg, iq)
    except (RadioError, OSError) as e:
        raise CampaignError(f"{where}, payload {k}: device error: {e}. Rows so far are "
                            f"intact in {out / 'results.csv'}; fix it and rerun to resume") from None
    ev = evaluate(tx, dec)
    t_link = time.perf_counter() - t0
    row = {"point": i, "payload": k, **pt, **{c: _fmt(v) for c, v in ev.items() if c in ROW_FIELDS},
           "status": "ok" if ev["frames_received"] else "no_frames",
           "symbols": sum(int(z.size) for z in streams)}
    notes = []
    per: dict[str, dict] = {"": {}}
    if images:
        got = _gr_image_frames(gr_link, sid) if gr_link is not None else dec
        per = _image_metrics_rows(cfg, codec, need, img, got, sid, streams[0].size, snr_hint,
                                  _classifier(cache), label, seed=pl["seed"] + k)
        row["ratio"] = str(codec.ratio)
    if record and iq is None:
        notes.append("iq not recorded: the GNU Radio link delivers decoded frames only")
    elif record:
        base = out / "iq" / f"p{i:03d}_n{k:03d}"
        base.parent.mkdir(exist_ok=True)
        try:
            save(base, iq, cfg, dec, hw=f"{cfg.radio.device} ({camp.link})",
                 extra={"point": i, "payload": k, "sweep": pt})
            row["iq_file"] = str(base.relative_to(out)) + ".sigmf-meta"
        except OSError as e:
            notes.append(f"iq not recorded: {e}" + (" (IQ recording stopped)"
                                                    if e.errno == errno.ENOSPC else ""))
            if e.errno == errno.ENOSPC:
                record = False
            log(f"campaign: point {i} payload {k}: {notes[-1]}")
    rows = []
    for d in need:
        m = dict(per[d])
        decode_s = _f(m.get("decode_s"))
        rows.append({**row, **m, "decoder": d,
                     "nfe": codec.codec.nfe(d) if d else None,  # the JSCC decoder pass counts one
                     "latency_s": _fmt(t_link + (decode_s if np.isfinite(decode_s) else 0.0)),
                     "note": "; ".join(n for n in [m.get("note"), *notes] if n),
                     "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return rows, record


def _todo(camp: Campaign, i: int, pm: PointModels | None, done: set) -> tuple[dict[int, list[str]], int]:
    """``({payload: decoders still to run}, rows already done)`` of point ``i``; ``done``: the finished
    ``(point, payload, decoder)`` keys (strings). A payload cut short keeps its missing decoders only."""
    names = list(pm.decoders) if pm is not None else [""]
    todo = {k: [d for d in names if (str(i), str(k), d) not in done] for k in range(camp.payloads_per_point)}
    todo = {k: ds for k, ds in todo.items() if ds}
    return todo, camp.payloads_per_point * len(names) - sum(map(len, todo.values()))


def run_campaign(camp: Campaign, out: str | Path | None = None, *, radio_factory: Callable | None = None,
                 after_row: Callable[[int], None] | None = None, log: Callable[[str], None] = print,
                 record_writer: Callable | None = None, allow_high_tx_gain: bool = False, workers: int = 1,
                 cluster: str | None = None, cluster_timeout_s: float = 10.0,
                 stats: dict | None = None) -> dict[str, Any]:
    """Run (or resume) ``camp`` into ``out`` (default ``camp.out``); returns ``{"rows_written", "rows_total",
    "skipped", "out"}``.

    ``workers``: 1 runs every payload here, in order; N > 1 runs them on a local Dask pool of N worker
    processes, ``cluster`` (a scheduler address, reached within ``cluster_timeout_s`` seconds or a
    ``CampaignError`` naming it) on a running Dask cluster (``_run_on_pool``); either
    way this process alone appends the rows, as they come back. ``stats``, if given, receives
    ``compute_s`` (s spent sending and measuring payloads, model loading included, all workers added),
    ``model_loads`` and, on a pool, ``workers``, ``startup_s`` / ``shutdown_s`` (the pool's), ``run_s``
    (s from the first job to the last row), ``loads_by_worker`` and ``jobs_by_worker``.

    ``allow_high_tx_gain``: let the campaign's ``set``/``sweep`` raise the base config's TX safety cap
    ``radio.tx_gain_max_db`` (``--allow-high-tx-gain``; refused otherwise, see ``semcom.config.load_config``).

    ``radio_factory``: replaces ``adi.Pluto`` for ``link: radio`` (tests inject a fake);
    ``after_row(n)``: called after each written row (tests raise here to simulate a kill);
    ``record_writer``: replaces ``semcom.radio.link.save_capture`` (tests simulate a full disk).
    """
    from semcom.radio.link import save_capture

    if (workers > 1 or cluster) and camp.link == "radio":
        raise CampaignError("link: radio drives one radio: run it with --workers 1 and no --cluster")
    out = Path(out or camp.out or "")
    if not str(out):
        raise CampaignError("no output directory: give --out or `out:` in the campaign file")
    where = dict(allow_high_tx_gain=allow_high_tx_gain, override_source=f"{camp.source or 'campaign'} set/sweep")
    try:
        base_cfg = load_config(camp.config, camp.set, **where)
    except ConfigError as e:
        raise CampaignError(str(e)) from None
    points = camp.points()
    cfgs = []
    for i, pt in enumerate(points):
        try:
            cfgs.append(load_config(camp.config, camp.overrides(pt), **where))
        except ConfigError as e:
            raise CampaignError(f"sweep point {i} {pt}: {e}") from None
    if camp.link == "radio":
        from semcom.radio.limits import hardware_kind

        if hardware_kind(base_cfg.radio.device) is None:
            raise CampaignError(f"link: radio needs a radio (radio.device pluto, uhd, fake_pluto, fake_uhd); "
                                f"the config has {base_cfg.radio.device!r}")
    images = camp.payload["kind"] == "images"
    cache: dict = {}  # image source, codecs, classifier
    models: list[PointModels | None] = [None] * len(points)
    if images:
        from semcom.imagelink import ImageError

        try:
            cache["images"] = _ImageSource(camp.payload)
        except ImageError as e:
            raise CampaignError(str(e)) from None
        models = [point_models(cfg, f"sweep point {i} {pt}", pt) for i, (pt, cfg) in enumerate(zip(points, cfgs))]
    used = _models_record(models, images)
    out.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(camp, base_cfg)
    meta_path = out / "run.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("fingerprint") != fp:
            raise CampaignError(f"{out} holds results of another campaign (fingerprint {old.get('fingerprint')} != "
                                f"{fp}); use another --out")
        if "models" in old and old["models"] != used:
            was = {(m["role"], m["path"]): m["sha256"] for m in old["models"]}
            now = {(m["role"], m["path"]): m["sha256"] for m in used}
            diff = sorted(f"{r} {p_}" for r, p_ in set(was) | set(now) if was.get((r, p_)) != now.get((r, p_)))
            raise CampaignError(f"{out}: the models changed since this run started ({'; '.join(diff)}: checksum "
                                f"differs, or the model is new or gone); restore them or use another --out")
    else:
        meta = {"fingerprint": fp, "campaign": camp.to_dict(), "campaign_file": camp.source,
                "campaign_sha256": _sha256(camp.source), "config": jsonable(base_cfg.to_dict()),
                "git_revision": _git_revision(), "models": used,
                "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "columns_note":
                ("psnr_db, ssim, accuracy, agreement: image payloads only; " if images
                 else "psnr_db, ssim, accuracy, agreement, decoder, nfe, ratio: empty (random payloads); ") +
                "nfe: network evaluations of the decoder, the JSCC decoder pass included (1 jscc, N + 1 cmN, "
                "2 x steps teacher); " +
                ACCURACY_NOTE + ("" if CLASSIFIER.is_file() else f"; no classifier at {CLASSIFIER}: accuracy/agreement "
                                                                 "empty")}
        tmp = meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, meta_path)
    sweep_cols = list(camp.sweep)
    nk = len(KEY_FIELDS)
    fields = ROW_FIELDS[:nk] + sweep_cols + ROW_FIELDS[nk:]
    writer = _RowWriter(out / "results.csv", fields)
    done = {tuple(r[c] for c in KEY_FIELDS) for r in read_rows(out)}
    if workers > 1 or cluster:
        try:
            written, skipped = _run_on_pool(camp, out, points, cfgs, models, done, writer, used, fp,
                                            workers=workers, cluster=cluster, timeout_s=cluster_timeout_s,
                                            after_row=after_row, log=log, stats=stats)
        finally:
            writer.close()
        return {"rows_written": written, "skipped": skipped, "rows_total": len(read_rows(out)), "out": str(out)}
    record = camp.record_iq
    save = record_writer or save_capture
    written = skipped = 0
    try:
        for i, (pt, cfg, pm) in enumerate(zip(points, cfgs, models)):
            todo, n_done = _todo(camp, i, pm, done)
            skipped += n_done
            if not todo:
                continue
            radio = gr_link = None
            try:
                if camp.link == "radio" and _uses_gnuradio(cfg):
                    from semcom.radio.link import GnuRadioLink

                    gr_link = GnuRadioLink(cfg).__enter__()
                elif camp.link == "radio":
                    from semcom.radio.pluto_burst import PlutoBurst

                    radio = PlutoBurst(cfg, factory=radio_factory)
                for k, need in todo.items():
                    t_job = time.perf_counter()
                    rows, record = _payload_rows(camp, out, i, pt, cfg, pm, k, need, cache, radio=radio,
                                                 gr_link=gr_link, record=record, save=save, log=log)
                    if stats is not None:
                        stats["compute_s"] = stats.get("compute_s", 0.0) + time.perf_counter() - t_job
                    for r in rows:
                        writer.write(r)
                        written += 1
                        if after_row is not None:
                            after_row(written)
            finally:
                if radio is not None:
                    radio.close()
                if gr_link is not None:
                    gr_link.__exit__(None, None, None)
            log(f"campaign: point {i + 1}/{len(points)} {pt} done")
    finally:
        writer.close()
    if stats is not None:
        stats["model_loads"] = _model_loads(cache)
    return {"rows_written": written, "skipped": skipped, "rows_total": len(read_rows(out)), "out": str(out)}



# ---------------------------------------------------------------------- on a Dask pool or cluster
def _run_on_pool(camp: Campaign, out: Path, points: list[dict], cfgs: list, models: list, done: set,
                 writer: _RowWriter, used: list[dict], fp: str, *, workers: int, cluster: str | None,
                 timeout_s: float, after_row: Callable[[int], None] | None, log: Callable[[str], None],
                 stats: dict | None) -> tuple[int, int]:
    """Every unfinished payload as one job on a Dask pool (``semcom.sweep_pool.Pool``: ``workers`` local
    processes, or the cluster at ``cluster``). The workers send and measure (``_pool_payload``); this
    process appends the rows as jobs finish, so the CSV keeps one writer and a kill loses only the jobs
    in flight (a resume sends them again). Progress lines with an ETA go to ``log``. Returns
    ``(rows written, rows already done)``."""
    from semcom.sweep_pool import Pool, PoolError, Progress

    jobs, skipped = [], 0
    for i, (pt, cfg, pm) in enumerate(zip(points, cfgs, models)):
        todo, n_done = _todo(camp, i, pm, done)
        skipped += n_done
        jobs += [{"i": i, "pt": pt, "cfg": cfg, "pm": pm, "k": k, "need": need} for k, need in todo.items()]
    if not jobs:
        return 0, skipped
    common = {"camp": camp, "out": str(out), "fingerprint": fp, "models": {m["path"]: m["sha256"] for m in used}}
    written, compute, by_worker, jobs_by_worker = 0, 0.0, {}, {}
    try:
        with Pool(workers, cluster, timeout_s) as pool:
            prog = Progress(len(jobs), pool.size, log)
            t0 = time.perf_counter()
            for _, res in pool.run(_pool_payload, jobs, common):
                for note in res["log"]:
                    log(note)
                for r in res["rows"]:
                    writer.write(r)
                    written += 1
                    if after_row is not None:
                        after_row(written)
                compute += res["compute_s"]
                by_worker[res["worker"]] = by_worker.get(res["worker"], 0) + res["loads"]
                jobs_by_worker[res["worker"]] = jobs_by_worker.get(res["worker"], 0) + 1
                prog.step()
            run_s = time.perf_counter() - t0
    except PoolError as e:
        raise CampaignError(str(e)) from None
    except Exception as e:  # a worker process died (KilledWorker), the scheduler went away ...
        if type(e).__module__.startswith(("distributed", "tornado")) or isinstance(e, (OSError, TimeoutError)):
            raise CampaignError(f"the Dask pool failed ({type(e).__name__}: {e}); rows so far are intact in "
                                f"{out / 'results.csv'}: rerun to resume") from None
        raise
    if stats is not None:
        stats.update(workers=pool.size, startup_s=pool.startup_s, shutdown_s=pool.close_s, run_s=run_s,
                     compute_s=compute, model_loads=sum(by_worker.values()), loads_by_worker=by_worker,
                     jobs_by_worker=jobs_by_worker)
    return written, skipped


def _model_loads(cache: dict) -> int:
    """Models loaded into a payload cache: its codecs plus the classifier."""
    return sum(1 for k in cache if isinstance(k, tuple) and k[0] == "codec") + (cache.get("classifier") is not None)


def _pool_payload(common: dict, job: dict) -> dict[str, Any]:
    """One payload on a Dask worker (``common``: ``camp``, ``out``, ``fingerprint``, ``models`` path ->
    sha256; ``job``: ``i``, ``pt``, ``cfg``, ``pm``, ``k``, ``need``). Returns ``{"rows", "log",
    "loads" (models loaded for this job: 0 once cached), "compute_s", "worker" (host:pid)}``.

    The worker keeps its image source, codecs and classifier for the whole run
    (``sweep_pool.worker_cache``), so weights load once per worker; before its first job it checks
    that its checkpoint files are the driver's (sha256): a node with other weights stops the run."""
    import socket

    from semcom.radio.link import save_capture
    from semcom.sweep_pool import worker_cache

    cache, _ = worker_cache(common["fingerprint"])
    host = f"{socket.gethostname()}:{os.getpid()}"
    if not cache.get("verified"):
        for path, sha in common["models"].items():
            if _sha256(path) != sha:
                raise CampaignError(f"worker {host}: {path}: " + ("checksum differs from the driver's" if
                                    Path(path).is_file() else "not found") +
                                    " (every worker needs the driver's checkpoint files at the same paths)")
        cache["record"] = common["camp"].record_iq
        cache["verified"] = True
    before = _model_loads(cache)
    notes: list[str] = []
    t0 = time.perf_counter()
    rows, cache["record"] = _payload_rows(common["camp"], Path(common["out"]), job["i"], job["pt"], job["cfg"],
                                          job["pm"], job["k"], job["need"], cache, record=cache["record"],
                                          save=save_capture, log=notes.append)
    return {"rows": rows, "log": notes, "loads": _model_loads(cache) - before,
            "compute_s": time.perf_counter() - t0, "worker": host}

# ---------------------------------------------------------------------- summary / plot
def _f(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def summarize(out: str | Path) -> list[dict[str, Any]]:
    """One dict per point and decoder: ``point``, swept fields, for image payloads ``decoder``,
    ``nfe``, ``ratio`` and mean ``symbols``, then ``payloads`` and the means of frame loss / SNR
    est / SNR meas / latency / decode time / PSNR / SSIM / accuracy / agreement (None where a
    column is empty). Ordered by point, decoders in the order they ran."""
    rows = read_rows(out)
    if not rows:
        raise CampaignError(f"{out}: no results.csv rows")
    meta = json.loads((Path(out) / "run.json").read_text())
    sweep = list(meta["campaign"]["sweep"])
    by: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by.setdefault((r["point"], r.get("decoder") or ""), []).append(r)
    decoded = any(d for _, d in by)
    table = []
    for p, dec in sorted(by, key=lambda pd: int(pd[0])):  # stable: decoders keep their order
        rs = by[(p, dec)]
        d: dict[str, Any] = {"point": int(p), **{k: rs[0][k] for k in sweep}}
        if decoded:
            d.update(decoder=dec or None, nfe=rs[0].get("nfe") or None, ratio=rs[0].get("ratio") or None,
                     symbols=float(np.nanmean([_f(r.get("symbols")) for r in rs])))
        d["payloads"] = len(rs)
        for col in ("frame_loss", "snr_est_db", "snr_meas_db", "latency_s", "decode_s", "psnr_db", "ssim", "accuracy",
                    "agreement"):
            v = np.array([_f(r.get(col)) for r in rs])  # a column older runs lack reads as nan
            d[col] = float(np.nanmean(v)) if np.isfinite(v).any() else None
        table.append(d)
    return table


def _varying(table: list[dict], sweep: list[str]) -> list[str]:
    """The swept fields that take more than one value in ``table``."""
    return [k for k in sweep if len({t[k] for t in table}) > 1]


def quality_series(table: list[dict], sweep: list[str], xkey: str | None = None) -> dict[str, list[tuple[float, dict]]]:
    """The lines of the quality panels: label -> ``[(measured SNR dB, summary entry), ...]`` sorted by SNR.

    One line per decoder and per combination of the swept fields other than ``xkey`` (the link
    knob the SNR follows; fields with one value only do not name lines); ``model.ratio`` appears as
    the checkpoint's own ``ratio`` (also when ``model.checkpoint`` is what is swept). Entries
    without a measured SNR are left out.
    """
    groups = [k for k in _varying(table, sweep) if k != xkey and not (k == "model.ratio" and "ratio" in table[0])]
    ratios = {t.get("ratio") for t in table}
    out: dict[str, list[tuple[float, dict]]] = {}
    for t in table:
        parts = [f"{k}={t[k]}" for k in groups]
        parts += [f"ratio {t['ratio']}"] if len(ratios) > 1 else []
        parts += [t["decoder"]] if t.get("decoder") else []
        if t["snr_meas_db"] is not None:
            out.setdefault(", ".join(parts) or "all", []).append((t["snr_meas_db"], t))
    return {k: sorted(v, key=lambda e: e[0]) for k, v in out.items()}


def plot(out: str | Path, png: str | Path | None = None) -> tuple[list[dict], Path]:
    """Summary table (``summarize``) and a figure of a run; returns ``(table, png)`` (default ``out/plot.png``).

    Panels: measured post-equalisation SNR and the receiver's estimate vs the first numeric swept
    field (SNR, TX gain, frequency ...) and frame loss vs that field, one line per combination of
    the other swept fields (the link is shared by a point's decoders); for image payloads PSNR,
    classifier accuracy (labelled images) and classifier agreement vs measured SNR, one line per
    decoder and ratio (and other swept fields: ``quality_series``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarize(out)
    sweep = list(json.loads((Path(out) / "run.json").read_text())["campaign"]["sweep"])
    xkey = next((k for k in sweep if all(np.isfinite(_f(t[k])) for t in table)), None)
    groups = [k for k in _varying(table, sweep) if k != xkey]
    panels = [("snr", "SNR (dB)"), ("frame_loss", "frame loss")]
    quality = {"psnr_db": "PSNR (dB)", "accuracy": "classifier accuracy", "agreement": "classifier agreement"}
    panels += [(c, label) for c, label in quality.items() if any(t[c] is not None for t in table)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    link: dict[str, list[dict]] = {}  # one entry per point: its first decoder's (the link is the same)
    for t in table:
        ts = link.setdefault(", ".join(f"{k}={t[k]}" for k in groups) or "all", [])
        if not ts or ts[-1]["point"] != t["point"]:
            ts.append(t)
    lines = quality_series(table, sweep, xkey)
    for ax, (col, ylabel) in zip(axes[0], panels):
        if col in quality:  # quality vs what the decoder saw
            for label, pts in lines.items():
                pts = [(x, t[col]) for x, t in pts if t[col] is not None]
                ax.plot([a for a, _ in pts], [b for _, b in pts], "o-", label=label)
            ax.set_xlabel("measured post-equalisation SNR (dB)")
        else:
            for label, ts in link.items():
                xs = [_f(t[xkey]) if xkey else t["point"] for t in ts]
                curves = ((("snr_meas_db", "o-", "measured "), ("snr_est_db", "x--", "estimate ")) if col == "snr"
                          else ((col, "o-", ""),))
                for key, style, name in curves:
                    ax.plot(xs, [np.nan if t[key] is None else t[key] for t in ts], style, label=name + label)
            ax.set_xlabel(xkey or "point")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    png = Path(png) if png else Path(out) / "plot.png"
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return table, png
