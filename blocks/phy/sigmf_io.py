"""IQ recordings in and out: SigMF (``sigmf`` package) and raw interleaved files. Pure numpy.

Written recordings are a ``<base>.sigmf-data`` file of ``cf32_le`` samples (complex64, little
endian) and a ``<base>.sigmf-meta`` JSON file holding

* ``global``: ``core:datatype``, ``core:sample_rate``, ``core:version``, ``core:hw`` (free
  text), ``core:description``, ``core:extensions`` (declares the ``semcom`` namespace),
  ``core:sha512``, ``semcom:sample_count`` (samples in the data file) and ``semcom:frame_spec``
  (``FrameSpec.to_dict()``) so a receiver can use the exact frame description of the transmitter;
* ``captures``: one capture at sample 0 (with ``core:frequency`` when a centre frequency is given);
* ``annotations``: one per frame, ``core:sample_start`` / ``core:sample_count`` of the burst plus
  ``core:label`` and ``semcom:header`` (the header fields), ``semcom:papr_db`` ...

Readable inputs (``open_recording`` / ``read_recording``): a SigMF pair given by its
``.sigmf-meta``, its ``.sigmf-data`` or its base name, with ``cf32_le``, ``ci16_le`` (scaled by
1/32768, like the ``sigmf`` package's autoscale) or ``ci8`` (1/128) samples, and raw files
``.cf32``/``.fc32``/``.bin``/``.raw`` (complex64 little endian) or ``.ci16``/``.sc16``
(interleaved int16), whose sample rate must be passed in. Problems (missing file, unknown
datatype, a data file cut inside a sample, metadata that is not SigMF) raise ``RecordingError``,
a ``ValueError`` whose message names the file. A SigMF data file whose length differs from its
metadata (``semcom:sample_count``, or annotations reaching past its end) or whose ``core:sha512``
does not match gives a ``RecordingWarning`` naming the file and the expected and actual lengths;
the samples that are there are still read.

Long recordings are read lazily (``numpy.memmap``): ``Recording.chunks(n)`` yields complex64
blocks so a receiver can run in bounded memory.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .frame import FrameSpec, FrameSpecError

__all__ = ["Recording", "RecordingError", "RecordingWarning", "write_recording", "read_recording", "open_recording",
           "sigmf_paths", "jsonable", "RAW_EXTENSIONS", "FRAME_SPEC_KEY", "SIGMF_VERSION"]

SIGMF_VERSION = "1.2.0"  # SigMF specification version written to core:version
FRAME_SPEC_KEY = "semcom:frame_spec"
# datatype -> (numpy dtype of one real component, scale to float)
_DATATYPES = {"cf32_le": ("<f4", 1.0), "ci16_le": ("<i2", 1.0 / 32768.0), "ci8": ("i1", 1.0 / 128.0)}
# raw file extensions -> datatype
RAW_EXTENSIONS = {".cf32": "cf32_le", ".fc32": "cf32_le", ".bin": "cf32_le", ".raw": "cf32_le",
                  ".ci16": "ci16_le", ".sc16": "ci16_le"}


class RecordingError(ValueError):
    """A recording that cannot be read or written; the message names the file."""


class RecordingWarning(UserWarning):
    """A recording that opens but does not match its metadata (truncated, changed); names the file."""


def sigmf_paths(path: str | Path) -> tuple[Path, Path]:
    """``(meta, data)`` paths of a SigMF pair from the base name or either file name."""
    p = Path(path)
    name = p.name
    for ext in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if name.endswith(ext):
            name = name[:-len(ext)]
            break
    return p.with_name(name + ".sigmf-meta"), p.with_name(name + ".sigmf-data")


# ---------------------------------------------------------------------- writing
def jsonable(v: Any) -> Any:
    """numpy scalars / arrays, tuples, complex -> plain JSON types; non-finite floats -> None."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, complex):
        return [jsonable(v.real), jsonable(v.imag)]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_recording(path_base: str | Path, iq: np.ndarray | Iterable[np.ndarray], sample_rate: float, *,
                    center_freq: float | None = None, annotations: Sequence[tuple[int, int, dict]] = (),
                    frame_spec: FrameSpec | None = None, extra_global: dict | None = None,
                    description: str = "semcom OFDM frames", hw: str = "semcom software transmitter (no hardware)",
                    overwrite: bool = True) -> tuple[Path, Path]:
    """Write ``iq`` as a SigMF ``cf32_le`` recording; returns ``(meta_path, data_path)``.

    Parameters
    ----------
    path_base : base name (``x`` or ``x.sigmf-meta``/``x.sigmf-data``) of the pair to write.
    iq : complex [n] samples (stored as complex64), or an iterable of complex 1-D blocks written
        as they come (bounded memory for long recordings).
    sample_rate : samples/s (> 0).
    center_freq : Hz, stored as ``core:frequency`` of the capture (optional).
    annotations : ``(sample_start, sample_count, metadata)`` per frame; metadata keys without a
        namespace get ``semcom:`` prepended (``core:label`` etc. are kept as they are).
    frame_spec : stored as ``semcom:frame_spec`` in the global object.
    extra_global : more global fields (keys without namespace get ``semcom:``).
    """
    from sigmf import SigMFFile  # the package's writer (computes core:sha512, validates)

    meta_path, data_path = sigmf_paths(path_base)
    blocks: Iterable[np.ndarray] = [iq] if isinstance(iq, np.ndarray) else iq
    if isinstance(iq, np.ndarray) and iq.ndim != 1:
        raise RecordingError(f"{data_path}: iq must be one-dimensional, got shape {iq.shape}")
    try:
        sample_rate = float(sample_rate)
    except (TypeError, ValueError):
        raise RecordingError(f"{meta_path}: sample_rate must be a number, got {sample_rate!r}") from None
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise RecordingError(f"{meta_path}: sample_rate must be > 0, got {sample_rate}")
    if not overwrite and (meta_path.exists() or data_path.exists()):
        raise RecordingError(f"{meta_path}: exists (overwrite=False)")
    if not meta_path.parent.is_dir():
        raise RecordingError(f"{meta_path}: directory {meta_path.parent} does not exist")

    n = 0
    try:
        with open(data_path, "wb") as fh:
            for block in blocks:
                b = np.asarray(block)
                if b.ndim != 1:
                    raise RecordingError(f"{data_path}: iq blocks must be one-dimensional, got shape {b.shape}")
                b.astype("<c8", copy=False).tofile(fh)
                n += b.size
        _write_meta(meta_path, data_path, n, sample_rate, center_freq, annotations, frame_spec, extra_global,
                    description, hw, SigMFFile)
    except BaseException:
        data_path.unlink(missing_ok=True)  # no half-written recording left behind
        raise
    return meta_path, data_path


def _write_meta(meta_path: Path, data_path: Path, n: int, sample_rate: float, center_freq: float | None,
                annotations: Sequence[tuple[int, int, dict]], frame_spec: FrameSpec | None,
                extra_global: dict | None, description: str, hw: str, sigmf_file_cls) -> None:
    glob: dict[str, Any] = {
        "core:datatype": "cf32_le",
        "core:sample_rate": sample_rate,
        "core:version": SIGMF_VERSION,
        "core:hw": hw,
        "core:description": description,
        "core:recorder": "semcom",
        "core:extensions": [{"name": "semcom", "version": "1.0.0", "optional": True}],
    }
    if frame_spec is not None:
        glob[FRAME_SPEC_KEY] = frame_spec.to_dict()
    for k, v in (extra_global or {}).items():
        glob[k if ":" in k else f"semcom:{k}"] = jsonable(v)
    glob["semcom:sample_count"] = int(n)  # this file's own length (a copied global must not carry another's)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sf = sigmf_file_cls(data_file=str(data_path), global_info=glob)
        capture: dict[str, Any] = {}
        if center_freq is not None:
            capture["core:frequency"] = float(center_freq)
        sf.add_capture(0, metadata=capture)
        for start, length, md in sorted(annotations, key=lambda a: int(a[0])):
            if not (0 <= int(start) and int(length) >= 0 and int(start) + int(length) <= n):
                raise RecordingError(f"{meta_path}: annotation [{start}, {start}+{length}) outside the {n} samples")
            md = {(k if ":" in k else f"semcom:{k}"): jsonable(v) for k, v in (md or {}).items()}
            sf.add_annotation(int(start), int(length), metadata=md)
        sf.tofile(str(meta_path), overwrite=True)


# ---------------------------------------------------------------------- reading
@dataclass
class Recording:
    """An opened recording (samples not yet read).

    ``n_samples`` complex samples of ``datatype`` in ``data_path`` from byte ``offset``;
    ``sample_rate`` in samples/s (None if unknown); ``meta`` the SigMF metadata (a minimal
    SigMF-shaped dict for raw files); ``frame_spec`` from ``semcom:frame_spec`` if present.
    """

    data_path: Path
    datatype: str
    n_samples: int
    sample_rate: float | None
    meta: dict
    frame_spec: FrameSpec | None = None
    meta_path: Path | None = None
    offset: int = 0
    _mm: np.ndarray | None = field(default=None, repr=False)

    @property
    def annotations(self) -> list[dict]:
        return list(self.meta.get("annotations", []))

    def _memmap(self) -> np.ndarray:
        if self._mm is None:
            comp, _ = _DATATYPES[self.datatype]
            if self.n_samples == 0:
                self._mm = np.zeros(0, dtype=comp)
            else:
                self._mm = np.memmap(self.data_path, dtype=comp, mode="r", offset=self.offset,
                                     shape=(2 * self.n_samples,))
        return self._mm

    def read(self, start: int = 0, count: int = -1) -> np.ndarray:
        """Samples ``start .. start+count`` (all to the end with -1); complex64 [count]."""
        if start < 0 or start > self.n_samples:
            raise RecordingError(f"{self.data_path}: start {start} outside 0..{self.n_samples}")
        stop = self.n_samples if count < 0 else min(self.n_samples, start + count)
        raw = np.asarray(self._memmap()[2 * start:2 * stop])
        _, scale = _DATATYPES[self.datatype]
        if self.datatype == "cf32_le":
            return raw.astype(np.float32, copy=False).view(np.complex64).copy()
        x = raw.astype(np.float32).reshape(-1, 2)
        return ((x[:, 0] + 1j * x[:, 1]) * scale).astype(np.complex64)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive complex64 blocks of at most ``size`` samples (bounded memory)."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        for a in range(0, self.n_samples, size):
            yield self.read(a, size)


def _raw_meta(datatype: str, sample_rate: float | None) -> dict:
    g: dict[str, Any] = {"core:datatype": datatype, "core:version": SIGMF_VERSION}
    if sample_rate is not None:
        g["core:sample_rate"] = float(sample_rate)
    return {"global": g, "captures": [{"core:sample_start": 0}], "annotations": []}


def _data_size(path: Path, datatype: str, offset: int = 0) -> int:
    comp, _ = _DATATYPES[datatype]
    item = 2 * np.dtype(comp).itemsize
    nbytes = path.stat().st_size - offset
    if nbytes < 0:
        raise RecordingError(f"{path}: shorter than its {offset}-byte header")
    if nbytes % item:
        raise RecordingError(f"{path}: truncated: {nbytes} bytes is not a whole number of {item}-byte "
                             f"{datatype} samples")
    return nbytes // item


def _check_rate(path: Path, sample_rate: Any) -> float | None:
    if sample_rate is None:
        return None
    try:
        sr = float(sample_rate)
    except (TypeError, ValueError):
        raise RecordingError(f"{path}: sample rate must be a number, got {sample_rate!r}") from None
    if not np.isfinite(sr) or sr <= 0:
        raise RecordingError(f"{path}: sample rate must be > 0, got {sample_rate!r}")
    return sr


def open_recording(path: str | Path, sample_rate: float | None = None, datatype: str | None = None) -> Recording:
    """Open a SigMF recording or a raw IQ file without reading its samples.

    ``path``: ``x.sigmf-meta``, ``x.sigmf-data``, the base ``x`` of a SigMF pair, or a raw file
    (``.cf32``, ``.fc32``, ``.bin``, ``.raw``: complex64; ``.ci16``/``.sc16``: int16 pairs).
    ``sample_rate``: required for raw files (None allowed: then unknown); for SigMF it
    overrides ``core:sample_rate`` only when the metadata lacks it.
    ``datatype``: forces the datatype of a raw file (``cf32_le``, ``ci16_le``, ``ci8``).
    """
    p = Path(path)
    meta_path, data_path = sigmf_paths(p)
    is_sigmf = p.name.endswith((".sigmf-meta", ".sigmf-data")) or (not p.exists() and meta_path.exists())
    if not is_sigmf:
        if not p.exists():
            raise RecordingError(f"{p}: no such file (nor {meta_path.name})")
        if not p.is_file():
            raise RecordingError(f"{p}: not a regular file")
        dt = datatype or RAW_EXTENSIONS.get(p.suffix.lower())
        if dt is None:
            raise RecordingError(f"{p}: unknown recording type; expected .sigmf-meta/.sigmf-data or a raw file "
                                 f"({', '.join(sorted(RAW_EXTENSIONS))})")
        if dt not in _DATATYPES:
            raise RecordingError(f"{p}: unsupported datatype {dt!r}; supported: {', '.join(_DATATYPES)}")
        sr = _check_rate(p, sample_rate)
        return Recording(p, dt, _data_size(p, dt), sr, _raw_meta(dt, sr))

    if not meta_path.is_file():
        raise RecordingError(f"{meta_path}: SigMF metadata file not found")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordingError(f"{meta_path}: not valid SigMF metadata JSON: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise RecordingError(f"{meta_path}: not SigMF metadata (no 'global' object)")
    _validate_meta(meta_path, meta)
    g = meta["global"]
    dt = g.get("core:datatype")
    if dt not in _DATATYPES:
        raise RecordingError(f"{meta_path}: unsupported core:datatype {dt!r}; supported: {', '.join(_DATATYPES)}")
    if int(g.get("core:num_channels", 1)) != 1:
        raise RecordingError(f"{meta_path}: only single-channel recordings are supported "
                             f"(core:num_channels = {g.get('core:num_channels')})")
    dataset = g.get("core:dataset")
    if dataset:
        data_path = meta_path.with_name(Path(dataset).name)
    if not data_path.is_file():
        raise RecordingError(f"{data_path}: SigMF data file not found (metadata {meta_path.name})")
    offset = 0  # bytes before the first sample (core:header_bytes of the first capture)
    caps = meta.get("captures") or []
    if caps and isinstance(caps[0], dict):
        offset = int(caps[0].get("core:header_bytes", 0) or 0)
    sr = _check_rate(meta_path, g.get("core:sample_rate", sample_rate))
    spec = None
    if FRAME_SPEC_KEY in g:
        try:
            spec = FrameSpec.from_dict(g[FRAME_SPEC_KEY])
        except (FrameSpecError, TypeError, ValueError) as e:
            raise RecordingError(f"{meta_path}: invalid {FRAME_SPEC_KEY}: {e}") from None
    n = _data_size(data_path, dt, offset)
    _check_against_meta(meta_path, data_path, meta, n)
    return Recording(data_path, dt, n, sr, meta, spec, meta_path, offset)


def _check_against_meta(meta_path: Path, data_path: Path, meta: dict, n: int) -> None:
    """Warn (``RecordingWarning``) when the data file's ``n`` samples or its SHA-512 disagree with the metadata."""
    import hashlib

    g = meta["global"]
    expected = g.get("semcom:sample_count")
    ends = [int(a.get("core:sample_start", 0)) + int(a.get("core:sample_count", 0) or 0)
            for a in meta.get("annotations") or [] if isinstance(a, dict)]
    if isinstance(expected, int) and not isinstance(expected, bool) and expected != n:
        warnings.warn(f"{data_path}: holds {n} samples, its metadata {meta_path.name} says {expected} "
                      f"(semcom:sample_count): the data file is {'truncated' if n < expected else 'longer'}; "
                      f"only the {n} samples there are read", RecordingWarning, stacklevel=3)
        return
    if ends and max(ends) > n:
        warnings.warn(f"{data_path}: holds {n} samples, but the annotations of {meta_path.name} reach sample "
                      f"{max(ends)}: the data file is truncated; only the {n} samples there are read",
                      RecordingWarning, stacklevel=3)
        return
    want = g.get("core:sha512")
    if isinstance(want, str) and want:
        h = hashlib.sha512()
        with open(data_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        if h.hexdigest() != want.lower():
            warnings.warn(f"{data_path}: SHA-512 does not match core:sha512 of {meta_path.name} ({n} samples): "
                          f"the data file was changed or replaced after it was recorded", RecordingWarning,
                          stacklevel=3)


def _validate_meta(meta_path: Path, meta: dict) -> None:
    """Schema check with the ``sigmf`` package's validator; errors name the file."""
    import jsonschema
    from sigmf import validate as sigmf_validate
    from sigmf.schema import get_schema

    meta.setdefault("captures", [])
    meta.setdefault("annotations", [])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sigmf_validate.validate(meta, get_schema())
    except jsonschema.exceptions.ValidationError as e:
        where = "/".join(str(x) for x in e.absolute_path)
        raise RecordingError(f"{meta_path}: invalid SigMF metadata at {where or 'top level'}: {e.message}") from None


def read_recording(path: str | Path, sample_rate: float | None = None,
                   datatype: str | None = None) -> tuple[np.ndarray, dict, FrameSpec | None]:
    """Read a whole recording: ``(iq complex64 [n], meta dict, FrameSpec or None)``.

    See ``open_recording`` for the accepted inputs; for long files prefer
    ``open_recording(path).chunks(n)``.
    """
    rec = open_recording(path, sample_rate, datatype)
    return rec.read(), rec.meta, rec.frame_spec
