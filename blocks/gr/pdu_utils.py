"""PDU <-> numpy helpers: one place that knows how semcom packs metadata and vectors into PMTs.

A semcom PDU is ``pmt.cons(meta, vector)``:

* ``meta``: a PMT dict whose keys are symbols; values are ints, floats, bools, strings, lists,
  nested dicts or 1-D numpy arrays (complex64 -> c32vector, float32 -> f32vector, uint8 -> u8vector,
  other numeric arrays -> f64/s64 vectors).
* ``vector``: c32vector (complex symbols) or u8vector (bits / bytes) or f32vector.

``make_pdu`` / ``parse_pdu`` are exact inverses for these types.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pmt

__all__ = ["to_pmt", "from_pmt", "meta_to_pmt", "meta_from_pmt", "vector_to_pmt", "vector_from_pmt",
           "make_pdu", "parse_pdu", "PduError"]


class PduError(ValueError):
    """A message that is not a semcom PDU (names what is wrong)."""


# PMT wire format of a uniform vector (pmt/serial_tags.h, used by gr-zeromq across versions):
# 0x0a, type code, uint32 big-endian length, npad=1, one pad byte, then big-endian elements.
_UVEC_CODES = {np.dtype(np.uint8): (0x00, ">u1"), np.dtype(np.int64): (0x07, ">i8"),
               np.dtype(np.float32): (0x08, ">f4"), np.dtype(np.float64): (0x09, ">f8"),
               np.dtype(np.complex64): (0x0A, ">c8")}


def _uvector(x: np.ndarray) -> "pmt.pmt_t":
    """Uniform PMT vector through ``pmt.deserialize_str``.

    ``pmt.init_c32vector(n, ndarray)`` converts element by element in the bindings (about 0.3 us
    per element, ~1 ms per 3000-symbol frame); building the serialized bytes with numpy and
    deserializing in C++ is about 25x faster. ``tests/test_gr_phy.py`` checks the round trip.
    """
    code, be = _UVEC_CODES[x.dtype]
    return pmt.deserialize_str(bytes((0x0A, code)) + x.size.to_bytes(4, "big") + b"\x01\x00" + x.astype(be).tobytes())


def vector_to_pmt(x: np.ndarray) -> "pmt.pmt_t":
    """1-D numpy array -> uniform PMT vector; complex -> c32vector, uint8/bool -> u8vector,
    float32 -> f32vector, other floats -> f64vector, other integers -> s64vector."""
    x = np.asarray(x).ravel()
    if np.iscomplexobj(x):
        return _uvector(x.astype(np.complex64, copy=False))
    if x.dtype == np.uint8 or x.dtype == np.bool_:
        return _uvector(x.astype(np.uint8, copy=False))
    if x.dtype == np.float32:
        return _uvector(x)
    if np.issubdtype(x.dtype, np.integer):
        return _uvector(x.astype(np.int64))
    if np.issubdtype(x.dtype, np.floating):
        return _uvector(x.astype(np.float64))
    raise PduError(f"cannot put a numpy array of dtype {x.dtype} into a PDU")


_VECTOR_READERS = (
    (pmt.is_c32vector, pmt.c32vector_elements, np.complex64),
    (pmt.is_f32vector, pmt.f32vector_elements, np.float32),
    (pmt.is_u8vector, pmt.u8vector_elements, np.uint8),
    (pmt.is_f64vector, pmt.f64vector_elements, np.float64),
    (pmt.is_s64vector, pmt.s64vector_elements, np.int64),
    (pmt.is_s32vector, pmt.s32vector_elements, np.int32),
    (pmt.is_c64vector, pmt.c64vector_elements, np.complex128),
)


def vector_from_pmt(v: "pmt.pmt_t") -> np.ndarray:
    """Uniform PMT vector -> numpy array of the matching dtype (a copy)."""
    for test, read, dtype in _VECTOR_READERS:
        if test(v):
            return np.asarray(read(v), dtype=dtype)
    raise PduError(f"PDU data must be a uniform vector (c32/f32/u8...), got {pmt.write_string(v)[:60]!r}")


def to_pmt(value: Any) -> "pmt.pmt_t":
    """Python / numpy value -> PMT (numpy arrays become uniform vectors, numpy scalars plain numbers)."""
    if isinstance(value, np.ndarray):
        return vector_to_pmt(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        return meta_to_pmt(value)
    if isinstance(value, (list, tuple)):
        return pmt.to_pmt([v.item() if isinstance(v, np.generic) else v for v in value])
    return pmt.to_pmt(value)


def from_pmt(v: "pmt.pmt_t") -> Any:
    """PMT -> Python value; uniform vectors become numpy arrays, dicts become dicts."""
    if pmt.is_uniform_vector(v):
        return vector_from_pmt(v)
    if pmt.is_dict(v):
        return meta_from_pmt(v)
    return pmt.to_python(v)


def meta_to_pmt(meta: Mapping[str, Any] | None) -> "pmt.pmt_t":
    """Mapping with string keys -> PMT dict (see module docstring for value types)."""
    d = pmt.make_dict()
    for k, v in (meta or {}).items():
        d = pmt.dict_add(d, pmt.intern(str(k)), to_pmt(v))
    return d


def meta_from_pmt(d: "pmt.pmt_t") -> dict[str, Any]:
    """PMT dict (or PMT nil) -> dict with string keys."""
    if pmt.is_null(d):
        return {}
    if not pmt.is_dict(d):
        raise PduError(f"PDU metadata must be a dict, got {pmt.write_string(d)[:60]!r}")
    items = pmt.dict_items(d)
    out = {}
    for i in range(pmt.length(items)):
        kv = pmt.nth(i, items)
        out[pmt.symbol_to_string(pmt.car(kv))] = from_pmt(pmt.cdr(kv))
    return out


def make_pdu(meta: Mapping[str, Any] | None, data: np.ndarray) -> "pmt.pmt_t":
    """``(meta dict, 1-D array)`` -> ``pmt.cons(PMT dict, uniform vector)``."""
    return pmt.cons(meta_to_pmt(meta), vector_to_pmt(np.asarray(data)))


def parse_pdu(msg: "pmt.pmt_t") -> tuple[dict[str, Any], np.ndarray]:
    """``pmt.cons(meta, vector)`` -> ``(meta dict, numpy array)``; raises ``PduError`` otherwise."""
    if not pmt.is_pair(msg):
        raise PduError(f"expected a PDU (pmt.cons(meta, vector)), got {pmt.write_string(msg)[:60]!r}")
    return meta_from_pmt(pmt.car(msg)), vector_from_pmt(pmt.cdr(msg))
