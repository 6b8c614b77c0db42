"""Checkpoints as safetensors with the model config as JSON in the metadata (never pickle).

Two kinds of file:

* a **model checkpoint** (:func:`save_model` / :func:`load_model`): the weights of one network
  plus metadata ``semcom.kind`` (``jscc``, ``unet``, ...), ``semcom.config`` (JSON of the
  model's config dataclass) and free-form ``semcom.info`` (JSON: step, metrics, ...);
* a **training state** (:func:`save_training_state` / :func:`load_training_state`): model, EMA
  and optimizer tensors under prefixes, the optimizer's scalar state and the step as JSON.

Every failure (missing file, not a safetensors file, wrong kind, config or tensor mismatch,
non-finite weights, content hash mismatch) raises :class:`CheckpointError` naming the file and
the problem. Model checkpoints carry ``semcom.sha256``, a hash of every tensor's name, dtype,
shape and bytes (:func:`tensors_sha256`), verified on load; files written before it existed
load without it. Diffusion checkpoints pair with one JSCC model: their ``info`` holds
``jscc_sha256`` and ``ratio`` (:func:`check_pairing`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .config import ConfigError, config_from_dict, config_to_dict

__all__ = ["CheckpointError", "register_model", "save_model", "load_model", "read_metadata", "read_raw_metadata",
           "save_training_state", "load_training_state", "tensors_sha256", "check_pairing", "export_ratio"]

FORMAT_VERSION = "1"

# kind -> (config class, model factory); filled by register_model at import of each model module.
_REGISTRY: dict[str, tuple[type, Callable[[Any], nn.Module]]] = {}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        super().__init__(f"checkpoint {self.path}: {problem}")


def register_model(kind: str, config_cls: type, factory: Callable[[Any], nn.Module]) -> None:
    _REGISTRY[kind] = (config_cls, factory)


def _ensure_registry() -> None:
    # Import the model modules lazily so that they can import this one.
    from . import registry  # noqa: F401


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint behind


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over the tensors sorted by name: name, dtype, shape and raw bytes of each."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        v = tensors[k].detach().contiguous().cpu()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()


def save_model(path: str | os.PathLike, kind: str, model: nn.Module, config: Any,
               info: dict[str, Any] | None = None) -> None:
    """Write ``model``'s weights with ``kind``/``config``/``info`` and their content hash in the metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"semcom.format": FORMAT_VERSION, "semcom.kind": kind,
            "semcom.config": json.dumps(config_to_dict(config)),
            "semcom.info": json.dumps(info or {}),
            "semcom.sha256": tensors_sha256(tensors)}
    _atomic_save(tensors, Path(path), meta)


def _check_tensors(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> None:
    """Content hash (when recorded) and finiteness of every floating-point tensor."""
    want = meta.get("semcom.sha256")
    if want is not None and tensors_sha256(tensors) != want:
        raise CheckpointError(path, "content hash mismatch: the tensors are not the ones that were saved "
                              "(corrupt or edited file)")
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise CheckpointError(path, f"tensor {k} holds {bad} non-finite value(s) (NaN/inf): unusable weights")


def _open(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for corrupt headers / data
        raise CheckpointError(path, f"not a readable safetensors file ({type(e).__name__}: {e})") from None
    if meta.get("semcom.format") != FORMAT_VERSION:
        raise CheckpointError(path, f"missing or unsupported semcom.format {meta.get('semcom.format')!r} "
                              f"(expected {FORMAT_VERSION!r})")
    return meta, tensors


def read_raw_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors metadata strings of ``path`` as stored (no tensor is checked)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(path, f"not a readable safetensors file ({type(e).__name__}: {e})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """``{"kind", "config" (dict), "info" (dict)}`` of a model checkpoint, without building the model."""
    path = Path(path)
    meta, _ = _open(path)
    try:
        return {"kind": meta["semcom.kind"], "config": json.loads(meta["semcom.config"]),
                "info": json.loads(meta.get("semcom.info", "{}"))}
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(path, f"bad semcom metadata ({e})") from None


def _load_into(path: Path, module: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(path, f"{what} tensors do not match the model: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(path, f"{what} tensor {k} has shape {tuple(tensors[k].shape)}, "
                                  f"model expects {tuple(v.shape)}")
    module.load_state_dict(tensors)


def load_model(path: str | os.PathLike, kind: str | None = None, expect_config: Any | None = None
               ) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Build the model described in ``path``'s metadata and load its weights.

    ``kind``: required kind (error if different). ``expect_config``: a config the checkpoint
    must equal (error naming the differing fields otherwise). Returns ``(model, config, info)``
    with the model in eval mode.
    """
    _ensure_registry()
    path = Path(path)
    meta = read_metadata(path)
    raw, tensors = _open(path)
    _check_tensors(path, raw, tensors)
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(path, f"holds a {meta['kind']!r} model, expected {kind!r}")
    if meta["kind"] not in _REGISTRY:
        raise CheckpointError(path, f"unknown model kind {meta['kind']!r} (known: {sorted(_REGISTRY)})")
    cfg_cls, factory = _REGISTRY[meta["kind"]]
    try:
        cfg = config_from_dict(cfg_cls, meta["config"], meta["kind"])
    except ConfigError as e:
        raise CheckpointError(path, f"invalid config in metadata: {e}") from None
    if expect_config is not None and cfg != expect_config:
        a, b = config_to_dict(cfg), config_to_dict(expect_config)
        diff = [k for k in a if a[k] != b.get(k)]
        raise CheckpointError(path, "config mismatch in " + ", ".join(
            f"{k} (file {a[k]!r}, expected {b.get(k)!r})" for k in diff))
    model = factory(cfg)
    _load_into(path, model, tensors, "model")
    model.eval()
    return model, cfg, meta["info"]


def check_pairing(diffusion_path: str | os.PathLike, diffusion_info: dict[str, Any],
                  jscc_path: str | os.PathLike, jscc_ratio: str) -> None:
    """A teacher/consistency checkpoint must pair with the JSCC model it was trained on.

    ``diffusion_info`` holds ``jscc_sha256`` and ``ratio`` (written at training); the JSCC
    checkpoint's content hash and ``jscc_ratio`` must match. Files that predate the record pass
    on the ratio alone when they name one. Raises :class:`CheckpointError` naming both files.
    """
    from fractions import Fraction

    want_ratio = diffusion_info.get("ratio")
    if want_ratio is not None and Fraction(str(want_ratio)) != Fraction(str(jscc_ratio)):
        raise CheckpointError(diffusion_path, f"was trained for ratio {want_ratio} but the JSCC model "
                              f"{jscc_path} runs at {jscc_ratio}: use the diffusion checkpoint of that ratio")
    want = diffusion_info.get("jscc_sha256")
    if want is not None:
        have = read_raw_metadata(jscc_path).get("semcom.sha256")
        if have is not None and have != want:
            raise CheckpointError(diffusion_path, f"pairs with another JSCC model (sha256 {want[:12]}...) than "
                                  f"{jscc_path} (sha256 {have[:12]}...): its conditioning would not match")


def export_ratio(src: str | os.PathLike, ratio: str, dst: str | os.PathLike) -> Path:
    """Write a rate-adaptive checkpoint ``src`` as the model of one ``ratio``; returns ``dst``.

    JSCC: the same weights with the config's ``ratio`` changed. Teacher/consistency trained on
    several ratios (``info["ratios"]``): the same weights with ``info["ratio"]`` set, so the
    pairing check accepts it with that ratio's JSCC model. Info records the source and its hash."""
    from fractions import Fraction

    kind = read_metadata(src)["kind"]
    if kind in ("teacher", "consistency"):
        model, cfg, info = load_model(src, kind=kind)
        ratios = [Fraction(str(r)) for r in info.get("ratios", [info.get("ratio")]) if r is not None]
        if Fraction(str(ratio)) not in ratios:
            raise CheckpointError(src, f"was trained for ratios {[str(r) for r in ratios]}, not {ratio}")
        save_model(dst, kind, model, cfg, {**info, "ratio": str(Fraction(str(ratio))), "exported_from": Path(src).name,
                                            "source_sha256": read_raw_metadata(src).get("semcom.sha256")})
        return Path(dst)
    model, cfg, info = load_model(src, kind="jscc")
    if not cfg.base_ratio:
        raise CheckpointError(src, f"is a fixed-ratio model ({cfg.ratio}), not rate-adaptive (no base_ratio)")
    try:
        new = cfg.with_ratio(ratio)
    except ConfigError as e:
        raise CheckpointError(src, str(e)) from None
    save_model(dst, "jscc", model, new, {**info, "exported_from": Path(src).name,
                                          "source_sha256": read_raw_metadata(src).get("semcom.sha256")})
    return Path(dst)


def save_training_state(path: str | os.PathLike, kind: str, config: Any, model: nn.Module, ema: nn.Module,
                        optimizer: torch.optim.Optimizer, step: int, extra: dict[str, Any] | None = None,
                        rng_state: torch.Tensor | None = None,
                        extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Everything needed to resume: model, EMA, optimizer (tensors + JSON scalars), step, RNG.

    ``extra_tensors`` (e.g. the data order) come back from :func:`load_training_state` as
    ``info["tensors"]``.
    """
    tensors: dict[str, torch.Tensor] = {f"extra/{k}": v for k, v in (extra_tensors or {}).items()}
    tensors.update({f"model/{k}": v for k, v in model.state_dict().items()})
    tensors.update({f"ema/{k}": v for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for idx, st in opt["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"opt/{idx}/{name}"] = val
            else:
                opt_scalars.setdefault(str(idx), {})[name] = val
    if rng_state is not None:
        tensors["rng/torch"] = rng_state
    meta = {"semcom.format": FORMAT_VERSION, "semcom.kind": f"train-state:{kind}",
            "semcom.config": json.dumps(config_to_dict(config)),
            "semcom.info": json.dumps({"step": int(step), **(extra or {})}),
            "semcom.opt_groups": json.dumps(opt["param_groups"]),
            "semcom.opt_scalars": json.dumps(opt_scalars)}
    _atomic_save(tensors, Path(path), meta)


def load_training_state(path: str | os.PathLike, kind: str, config: Any, model: nn.Module, ema: nn.Module,
                        optimizer: torch.optim.Optimizer) -> tuple[int, dict[str, Any], torch.Tensor | None]:
    """Restore what :func:`save_training_state` wrote; returns ``(step, info, rng_state)``.

    ``info["tensors"]`` holds the saved ``extra_tensors`` (empty dict when none).
    """
    path = Path(path)
    meta, tensors = _open(path)
    if meta.get("semcom.kind") != f"train-state:{kind}":
        raise CheckpointError(path, f"is {meta.get('semcom.kind')!r}, expected 'train-state:{kind}'")
    file_cfg = json.loads(meta["semcom.config"])
    if file_cfg != config_to_dict(config):
        diff = [k for k in file_cfg if file_cfg[k] != config_to_dict(config).get(k)]
        raise CheckpointError(path, f"model config differs from this run's in {diff}; "
                              "resume with the same --ratio/--preset")
    for prefix, mod in (("model/", model), ("ema/", ema)):
        _load_into(path, mod, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                   prefix[:-1])
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, sc in json.loads(meta["semcom.opt_scalars"]).items():
        state.setdefault(int(idx), {}).update(sc)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["semcom.opt_groups"])})
    except (ValueError, KeyError) as e:
        raise CheckpointError(path, f"optimizer state does not fit ({e})") from None
    info = json.loads(meta["semcom.info"])
    info["tensors"] = {k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")}
    return int(info["step"]), info, tensors.get("rng/torch")
