"""SigMF / raw IQ recordings: round trips, the package's validator, and clear errors on bad files."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from semcom.blocks.phy.frame import FrameSpec
from semcom.blocks.phy.sigmf_io import (RecordingError, open_recording, read_recording, sigmf_paths,
                                        write_recording)


@pytest.fixture
def iq():
    rng = np.random.default_rng(1)
    return (rng.standard_normal(3000) + 1j * rng.standard_normal(3000)).astype(np.complex64)


def _write(tmp_path, iq, **kw):
    spec = FrameSpec(fft_len=128, cp_len=32)
    ann = [(100, 500, {"header": {"stream_id": 3, "chunk_index": 0}, "core:label": "frame 0"}),
           (900, 400, {"header": {"stream_id": 3, "chunk_index": 1}, "papr_db": np.float32(9.5)})]
    return spec, write_recording(tmp_path / "rec", iq, 2e6, center_freq=2.45e9, annotations=ann,
                                 frame_spec=spec, extra_global={"payload_scale": 1.5}, **kw)


def test_round_trip_and_metadata(tmp_path, iq):
    spec, (meta_path, data_path) = _write(tmp_path, iq)
    assert meta_path.name == "rec.sigmf-meta" and data_path.name == "rec.sigmf-data"
    assert data_path.stat().st_size == iq.size * 8  # cf32_le
    for name in ("rec", "rec.sigmf-meta", "rec.sigmf-data"):
        x, meta, spec2 = read_recording(tmp_path / name)
        assert x.dtype == np.complex64 and np.array_equal(x, iq)
        assert spec2 == spec
    g = meta["global"]
    assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == 2e6
    assert "core:version" in g and "core:hw" in g and g["semcom:payload_scale"] == 1.5
    assert meta["captures"][0]["core:frequency"] == 2.45e9
    anns = meta["annotations"]
    assert [(a["core:sample_start"], a["core:sample_count"]) for a in anns] == [(100, 500), (900, 400)]
    assert anns[0]["semcom:header"]["stream_id"] == 3 and anns[0]["core:label"] == "frame 0"
    assert anns[1]["semcom:papr_db"] == pytest.approx(9.5)


def test_written_files_pass_the_sigmf_validator(tmp_path, iq):
    from sigmf import sigmffile

    _, (meta_path, _) = _write(tmp_path, iq)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # e.g. undeclared extension namespaces
        f = sigmffile.fromfile(str(meta_path))  # checks core:sha512 against the data
        f.validate()
    assert np.array_equal(f.read_samples(), iq)
    tool = Path(sys.executable).with_name("sigmf_validate")
    if tool.exists():
        r = subprocess.run([str(tool), str(meta_path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


def test_chunks_cover_the_recording(tmp_path, iq):
    _write(tmp_path, iq)
    rec = open_recording(tmp_path / "rec")
    assert rec.n_samples == iq.size and rec.sample_rate == 2e6
    assert np.array_equal(np.concatenate(list(rec.chunks(700))), iq)
    assert np.array_equal(rec.read(2990, 100), iq[2990:])


@pytest.mark.parametrize("ext", [".cf32", ".fc32", ".bin", ".raw"])
def test_raw_cf32(tmp_path, iq, ext):
    p = tmp_path / f"x{ext}"
    iq.tofile(p)
    x, meta, spec = read_recording(p, sample_rate=1e6)
    assert np.array_equal(x, iq) and spec is None
    assert meta["global"]["core:sample_rate"] == 1e6 and meta["global"]["core:datatype"] == "cf32_le"


def test_raw_ci16_scaled(tmp_path):
    ints = np.array([16384, -16384, 0, 32767], dtype="<i2")
    p = tmp_path / "x.ci16"
    ints.tofile(p)
    x, _, _ = read_recording(p, sample_rate=1e6)
    assert np.allclose(x, [0.5 - 0.5j, 0 + 32767 / 32768 * 1j])


def test_sigmf_ci16(tmp_path):
    ints = np.array([16384, 0, -8192, 8192], dtype="<i2")
    ints.tofile(tmp_path / "c.sigmf-data")
    meta = {"global": {"core:datatype": "ci16_le", "core:version": "1.2.0", "core:sample_rate": 5e5},
            "captures": [{"core:sample_start": 0}], "annotations": []}
    (tmp_path / "c.sigmf-meta").write_text(json.dumps(meta))
    x, _, _ = read_recording(tmp_path / "c.sigmf-meta")
    assert np.allclose(x, [0.5, -0.25 + 0.25j])


def test_missing_files(tmp_path, iq):
    with pytest.raises(RecordingError, match="nope"):
        read_recording(tmp_path / "nope.sigmf-meta")
    with pytest.raises(RecordingError, match="nope.cf32"):
        read_recording(tmp_path / "nope.cf32", sample_rate=1e6)
    _write(tmp_path, iq)
    (tmp_path / "rec.sigmf-data").unlink()
    with pytest.raises(RecordingError, match=r"rec\.sigmf-data.*not found"):
        read_recording(tmp_path / "rec.sigmf-meta")


def test_truncated_data(tmp_path, iq):
    _write(tmp_path, iq)
    data = tmp_path / "rec.sigmf-data"
    data.write_bytes(data.read_bytes()[:-3])
    with pytest.raises(RecordingError, match="truncated"):
        read_recording(tmp_path / "rec")
    raw = tmp_path / "t.cf32"
    raw.write_bytes(b"\0" * 13)
    with pytest.raises(RecordingError, match=r"t\.cf32: truncated"):
        read_recording(raw, sample_rate=1e6)


def test_wrong_datatype(tmp_path, iq):
    _, (meta_path, _) = _write(tmp_path, iq)
    meta = json.loads(meta_path.read_text())
    meta["global"]["core:datatype"] = "rf64_le"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RecordingError, match="unsupported core:datatype 'rf64_le'"):
        read_recording(meta_path)


@pytest.mark.parametrize("text", ["{not json", "[1, 2, 3]", '{"global": {"core:sample_rate": "fast"}}'])
def test_garbage_meta(tmp_path, text):
    (tmp_path / "g.sigmf-meta").write_text(text)
    (tmp_path / "g.sigmf-data").write_bytes(b"\0" * 16)
    with pytest.raises(RecordingError, match=r"g\.sigmf-meta"):
        read_recording(tmp_path / "g.sigmf-meta")


def test_unknown_extension(tmp_path, iq):
    p = tmp_path / "x.wav2"
    iq.tofile(p)
    with pytest.raises(RecordingError, match="unknown recording type"):
        read_recording(p)


def test_bad_writer_input(tmp_path, iq):
    with pytest.raises(RecordingError, match="sample_rate"):
        write_recording(tmp_path / "a", iq, 0)
    with pytest.raises(RecordingError, match="annotation"):
        write_recording(tmp_path / "a", iq, 1e6, annotations=[(2900, 500, {})])
    with pytest.raises(RecordingError, match="does not exist"):
        write_recording(tmp_path / "no_dir" / "a", iq, 1e6)


def test_sigmf_paths():
    assert sigmf_paths("d/x.sigmf-data") == (Path("d/x.sigmf-meta"), Path("d/x.sigmf-data"))
    assert sigmf_paths("d/x") == (Path("d/x.sigmf-meta"), Path("d/x.sigmf-data"))
