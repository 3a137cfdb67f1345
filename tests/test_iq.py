"""Tests for signals.iq (SigMF / raw IQ file I/O)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from signals.iq import (
    SUPPORTED_DATATYPES,
    IQFormatError,
    IQMetadataError,
    IQMissingFileError,
    IQMissingParameterError,
    IQTruncatedError,
    IQUnsupportedDatatypeError,
    append_annotations,
    bytes_per_sample,
    component_dtype,
    from_complex64,
    lsb,
    normalize_datatype,
    open_iq,
    read_raw_samples,
    read_sigmf_meta,
    to_complex64,
    write_raw,
    write_sigmf,
)

FS_HZ = 30.72e6
NATIVE = {"cf32_le": np.float32, "ci16_le": np.int16, "ci8": np.int8, "cu8": np.uint8}
# One LSB in complex64 units.
LSB = {"ci16_le": 1 / 32768, "ci8": 1 / 128, "cu8": 1 / 127.5}


def _rand_iq(n: int, seed: int = 0, amp: float = 0.9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-amp, amp, n) + 1j * rng.uniform(-amp, amp, n)
    return z.astype(np.complex64)


def _rand_native(n: int, datatype: str, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = NATIVE[datatype]
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=(n, 2), endpoint=True).astype(dt)


def _write_meta(tmp_path, meta_obj, data_bytes: bytes | None = b"\0" * 80, name="rec"):
    base = tmp_path / name
    mp = tmp_path / f"{name}.sigmf-meta"
    if isinstance(meta_obj, str):
        mp.write_text(meta_obj)
    else:
        mp.write_text(json.dumps(meta_obj))
    if data_bytes is not None:
        (tmp_path / f"{name}.sigmf-data").write_bytes(data_bytes)
    return base, mp


GOOD_GLOBAL = {"core:datatype": "cf32_le", "core:sample_rate": FS_HZ, "core:version": "1.0.0"}


# --------------------------------------------------------------------- conversions


def test_bytes_per_sample():
    got = {d: bytes_per_sample(d) for d in SUPPORTED_DATATYPES}
    assert got == {"cf32_le": 8, "ci16_le": 4, "ci8": 2, "cu8": 2, "cf64_le": 16, "cf64_be": 16, "cf32_be": 8,
                   "ci32_le": 8, "ci32_be": 8, "ci16_be": 4, "cu32_le": 8, "cu32_be": 8, "cu16_le": 4,
                   "cu16_be": 4}


@pytest.mark.parametrize("datatype, comp, scale, offset", [
    ("ci16_be", ">i2", 32768.0, 0.0),
    ("ci32_le", "<i4", 2.0 ** 31, 0.0),
    ("ci32_be", ">i4", 2.0 ** 31, 0.0),
    ("cu16_le", "<u2", 32767.5, 32767.5),
    ("cu32_be", ">u4", (2.0 ** 32 - 1) / 2, (2.0 ** 32 - 1) / 2),
    ("cf64_be", ">f8", 1.0, 0.0),
    ("cf32_be", ">f4", 1.0, 0.0),
])
def test_other_sigmf_datatypes_read_from_bytes(tmp_path, datatype, comp, scale, offset):
    """A recording written by another tool in any complex SigMF datatype (bytes
    built here with numpy, not with our writer) reads as (x - offset) / scale."""
    rng = np.random.default_rng(3)
    info = np.iinfo(comp) if np.dtype(comp).kind in "iu" else None
    vals = (rng.integers(info.min, info.max, 64, endpoint=True) if info is not None
            else rng.standard_normal(64))
    raw = vals.astype(comp)
    base, _ = _write_meta(tmp_path, {"global": {**GOOD_GLOBAL, "core:datatype": datatype}}, raw.tobytes())
    with open_iq(base) as r:
        assert r.meta.datatype == datatype and r.meta.n_samples == 32
        got = r.read_all()
        native = r.read_native(0, 32)
        view = r.read_native(0, 32, copy=False)
    # copy=False: the memory map itself where the file has the machine's byte order
    # (read-only), a native-order copy otherwise; the same values either way
    assert view.dtype.isnative and not np.shares_memory(view, native)
    assert view.flags.writeable != np.dtype(comp).isnative
    np.testing.assert_array_equal(view, native)
    want = ((vals.astype(np.float64) - offset) / scale).astype(np.float32).view(np.complex64)
    np.testing.assert_allclose(got.view(np.float32), want.view(np.float32), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(to_complex64(native, datatype), got)
    assert lsb(datatype) == (0.0 if info is None else 1.0 / scale)


@pytest.mark.parametrize("name, canonical", [("cf32", "cf32_le"), ("CF32_LE", "cf32_le"), ("fc32", "cf32_le"),
                                             ("sc16", "ci16_le"), ("ci16", "ci16_le"), ("ci8_le", "ci8"),
                                             ("cu8_le", "cu8"), ("cf64", "cf64_le"), (" cu16 ", "cu16_le")])
def test_datatype_names_other_tools_write(tmp_path, name, canonical):
    assert normalize_datatype(name) == canonical
    base, _ = _write_meta(tmp_path, {"global": {**GOOD_GLOBAL, "core:datatype": name}},
                          np.zeros(8, component_dtype(canonical)).tobytes())
    with open_iq(base) as r:
        assert r.meta.datatype == canonical and r.meta.n_samples == 4


def test_real_valued_datatype_is_named_as_such(tmp_path):
    base, _ = _write_meta(tmp_path, {"global": {**GOOD_GLOBAL, "core:datatype": "ri16_le"}})
    with pytest.raises(IQUnsupportedDatatypeError, match="real-valued"):
        open_iq(base)


def test_to_complex64_scaling_conventions():
    i16 = np.array([-32768, 16384, 0, 32767], dtype="<i2")
    np.testing.assert_array_equal(
        to_complex64(i16, "ci16_le"), np.array([-1 + 0.5j, complex(0, 32767 / 32768)], np.complex64)
    )
    np.testing.assert_array_equal(
        to_complex64(np.array([-128, 64], np.int8), "ci8"), np.array([-1 + 0.5j], np.complex64)
    )
    u8 = to_complex64(np.array([0, 255], np.uint8), "cu8")
    assert u8.dtype == np.complex64
    np.testing.assert_array_equal(u8, np.array([-1 + 1j], np.complex64))


def test_from_complex64_rounds_and_clips():
    iq = np.array([2.0 - 2.0j, 1.0 + 0.0j, 0.5 / 32768 + 1.5j / 32768], np.complex64)
    out = from_complex64(iq, "ci16_le")
    assert out.dtype == np.dtype("<i2") and out.shape == (6,)
    # clip to range; +1.0 -> 32767; ties round to even (0.5 -> 0, 1.5 -> 2)
    np.testing.assert_array_equal(out, [32767, -32768, 32767, 0, 0, 2])
    np.testing.assert_array_equal(
        from_complex64(np.array([np.nan + 10j], np.complex64), "cu8"), [128, 255]
    )


@pytest.mark.parametrize("datatype", ["ci16_le", "ci8", "cu8"])
def test_complex_to_int_to_complex_within_half_lsb(datatype):
    iq = _rand_iq(4096, amp=0.99)
    back = to_complex64(from_complex64(iq, datatype), datatype)
    err = np.maximum(np.abs(back.real - iq.real), np.abs(back.imag - iq.imag))
    assert back.dtype == np.complex64
    assert err.max() <= LSB[datatype] / 2 * (1 + 1e-5)


# --------------------------------------------------------------------- round trips


def test_cf32_sigmf_round_trip_bit_exact(tmp_path):
    iq = _rand_iq(1000)
    iq[3] = np.float32(1e-42) + 1j * np.float32(-0.0)  # denormal and -0.0 survive
    meta_p, data_p = write_sigmf(tmp_path / "rec", iq, FS_HZ, "cf32_le", center_freq_hz=3.5e9)
    assert meta_p.name == "rec.sigmf-meta" and data_p.stat().st_size == 8000
    with open_iq(tmp_path / "rec") as r:
        got = r.read_all()
        assert r.meta.center_freq_hz == 3.5e9
        assert r.meta.sample_rate_hz == FS_HZ and r.meta.n_samples == 1000
    assert got.dtype == np.complex64
    assert got.tobytes() == iq.tobytes()


@pytest.mark.parametrize("datatype", ["ci16_le", "ci8", "cu8"])
def test_int_sigmf_round_trip_bit_exact_native(tmp_path, datatype):
    native = _rand_native(777, datatype)
    native[0] = np.iinfo(NATIVE[datatype]).min
    native[1] = np.iinfo(NATIVE[datatype]).max
    write_sigmf(tmp_path / "rec", native, FS_HZ, datatype)
    got = read_raw_samples(tmp_path / "rec.sigmf-data")
    assert got.dtype == NATIVE[datatype] and got.shape == (777, 2)
    np.testing.assert_array_equal(got, native)
    # complex path is also lossless for integer data: read complex, write, re-read ints
    with open_iq(tmp_path / "rec.sigmf-meta") as r:
        iq = r.read_all()
    write_sigmf(tmp_path / "again", iq, FS_HZ, datatype)
    np.testing.assert_array_equal(read_raw_samples(tmp_path / "again"), native)


@pytest.mark.parametrize("datatype", SUPPORTED_DATATYPES)
def test_raw_round_trip(tmp_path, datatype):
    iq = _rand_iq(513, seed=5)
    path = write_raw(tmp_path / f"cap.{datatype}", iq, datatype)
    assert path.stat().st_size == 513 * bytes_per_sample(datatype)
    with open_iq(path, datatype=datatype, sample_rate_hz=1e6, center_freq_hz=2e9) as r:
        assert r.meta.global_ == {} and r.meta.annotations == []
        assert r.meta.center_freq_hz == 2e9
        got = r.read_all()
    expected = to_complex64(from_complex64(iq, datatype), datatype)
    assert got.tobytes() == expected.tobytes()
    native = read_raw_samples(path, datatype, 1e6)
    np.testing.assert_array_equal(native.reshape(-1), from_complex64(iq, datatype))


# --------------------------------------------------------------------- chunked reading


@pytest.mark.parametrize("block_size", [1, 7, 333, 1000, 5000])
def test_blocks_concatenate_to_read_all(tmp_path, block_size):
    iq = _rand_iq(1000, seed=2)
    write_sigmf(tmp_path / "rec", iq, FS_HZ, "ci16_le")
    with open_iq(tmp_path / "rec") as r:
        blocks = list(r.blocks(block_size))
        full = r.read_all()
    assert all(b.dtype == np.complex64 for b in blocks)
    assert [len(b) for b in blocks[:-1]] == [block_size] * (len(blocks) - 1)
    assert 0 < len(blocks[-1]) <= block_size
    np.testing.assert_array_equal(np.concatenate(blocks), full)


def test_file_larger_than_block_read_in_blocks(tmp_path):
    n = 200_003
    iq = _rand_iq(n, seed=3)
    write_raw(tmp_path / "big.cf32", iq, "cf32_le")
    with open_iq(tmp_path / "big.cf32", "cf32_le", FS_HZ) as r:
        sizes, parts = [], []
        for b in r.blocks(65536, start=3):
            sizes.append(len(b))
            parts.append(b)
    assert sizes == [65536, 65536, 65536, n - 3 - 3 * 65536]
    assert np.concatenate(parts).tobytes() == iq[3:].tobytes()


def test_read_bounds_checked(tmp_path):
    write_raw(tmp_path / "x.raw", _rand_iq(10), "ci8")
    with open_iq(tmp_path / "x.raw", "ci8", 1e6) as r:
        assert r.read(8, 2).shape == (2,)
        with pytest.raises(IndexError, match="x.raw"):
            r.read(8, 3)
        with pytest.raises(IndexError):
            r.read(-1, 1)


# --------------------------------------------------------------------- annotations / global


def test_annotations_and_global_round_trip_sorted(tmp_path):
    anns = [
        {"core:sample_start": 900, "core:sample_count": 10, "core:label": "ssb", "ssbwatch:pci": 7},
        {"core:sample_start": 100, "core:sample_count": 20, "core:label": "jam",
         "ssbwatch:jammer": "barrage"},
        {"core:sample_start": np.int64(500), "core:label": "ssb", "ssbwatch:pci": 1},
    ]
    write_sigmf(
        tmp_path / "rec", _rand_iq(1000), FS_HZ, "cu8",
        global_extra={"ssbwatch:scs_khz": 30}, annotations=anns, description="unit test",
    )
    assert anns[0]["core:sample_start"] == 900  # caller's list untouched
    meta = read_sigmf_meta(tmp_path / "rec")
    assert [a["core:sample_start"] for a in meta.annotations] == [100, 500, 900]
    assert meta.annotations[0] == anns[1]
    assert meta.annotations[2] == anns[0]
    assert meta.global_["ssbwatch:scs_khz"] == 30
    assert meta.global_["core:description"] == "unit test"
    assert meta.global_["core:version"] == "1.0.0"
    assert meta.center_freq_hz is None
    assert meta.datatype == "cu8" and meta.n_samples == 1000


def test_append_annotations(tmp_path):
    write_sigmf(tmp_path / "rec", _rand_iq(100), FS_HZ,
                annotations=[{"core:sample_start": 50, "core:label": "a"}],
                global_extra={"ssbwatch:scs_khz": 15})
    append_annotations(tmp_path / "rec.sigmf-meta", [
        {"core:sample_start": 70, "core:label": "c", "ssbwatch:pci": 3},
        {"core:sample_start": 10, "core:label": "b"},
    ])
    meta = read_sigmf_meta(tmp_path / "rec")
    assert [a["core:label"] for a in meta.annotations] == ["b", "a", "c"]
    assert meta.annotations[2]["ssbwatch:pci"] == 3
    assert meta.global_["ssbwatch:scs_khz"] == 15
    assert not list(tmp_path.glob("*.tmp"))  # temp file was moved into place
    with pytest.raises(IQMetadataError, match="sample_start"):
        append_annotations(tmp_path / "rec", [{"core:label": "no start"}])
    assert len(read_sigmf_meta(tmp_path / "rec").annotations) == 3  # unchanged on error


# --------------------------------------------------------------------- bad inputs


def test_truncated_data_raises(tmp_path):
    base, _ = _write_meta(tmp_path, {"global": GOOD_GLOBAL}, data_bytes=b"\0" * 83)
    with pytest.raises(IQTruncatedError) as ei:
        open_iq(base)
    msg = str(ei.value)
    assert "rec.sigmf-data" in msg and "83" in msg and "8-byte" in msg
    assert isinstance(ei.value, IQFormatError)


def test_odd_length_allow_partial_counts_dropped_bytes(tmp_path):
    path = tmp_path / "odd.ci16"
    path.write_bytes(np.arange(10, dtype="<i2").tobytes() + b"\x01")
    with pytest.raises(IQTruncatedError, match="odd.ci16.*21 bytes"):
        open_iq(path, "ci16_le", 1e6)
    with open_iq(path, "ci16_le", 1e6, allow_partial=True) as r:
        assert r.meta.n_samples == 5 and r.n_dropped_bytes == 1
        np.testing.assert_array_equal(r.read_native(0, 5).reshape(-1), np.arange(10))


def test_unknown_datatype_raises(tmp_path):
    base, _ = _write_meta(tmp_path, {"global": {**GOOD_GLOBAL, "core:datatype": "ci12_le"}})
    with pytest.raises(IQUnsupportedDatatypeError) as ei:
        open_iq(base)
    msg = str(ei.value)
    assert "rec.sigmf-meta" in msg and "ci12_le" in msg
    assert all(d in msg for d in SUPPORTED_DATATYPES)


def test_bad_json_raises(tmp_path):
    base, _ = _write_meta(tmp_path, '{"global": {"core:datatype": "cf32_le",')
    with pytest.raises(IQMetadataError, match=r"rec\.sigmf-meta.*not valid JSON"):
        read_sigmf_meta(base)


def test_missing_global_raises(tmp_path):
    base, _ = _write_meta(tmp_path, {"captures": [], "annotations": []})
    with pytest.raises(IQMetadataError, match=r"rec\.sigmf-meta.*no 'global'"):
        open_iq(base)


def test_missing_datatype_raises(tmp_path):
    g = {k: v for k, v in GOOD_GLOBAL.items() if k != "core:datatype"}
    base, _ = _write_meta(tmp_path, {"global": g})
    with pytest.raises(IQMetadataError, match=r"rec\.sigmf-meta.*core:datatype"):
        open_iq(base)


@pytest.mark.parametrize("rate", [None, 0, -1.0, "30.72e6", True])
def test_bad_sample_rate_raises(tmp_path, rate):
    g = {k: v for k, v in GOOD_GLOBAL.items() if k != "core:sample_rate"}
    if rate is not None:
        g["core:sample_rate"] = rate
    base, _ = _write_meta(tmp_path, {"global": g})
    with pytest.raises(IQMetadataError, match=r"rec\.sigmf-meta.*core:sample_rate"):
        open_iq(base)


def test_annotations_not_list_raises(tmp_path):
    base, _ = _write_meta(tmp_path, {"global": GOOD_GLOBAL, "annotations": {"a": 1}})
    with pytest.raises(IQMetadataError, match=r"rec\.sigmf-meta.*'annotations' must be a list"):
        read_sigmf_meta(base)


def test_missing_data_file_raises(tmp_path):
    base, _ = _write_meta(tmp_path, {"global": GOOD_GLOBAL}, data_bytes=None)
    with pytest.raises(IQMissingFileError, match=r"rec\.sigmf-data.*does not exist"):
        open_iq(tmp_path / "rec.sigmf-meta")


def test_raw_without_format_raises(tmp_path):
    path = tmp_path / "capture.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(IQMissingParameterError) as ei:
        open_iq(path, sample_rate_hz=1e6)
    msg = str(ei.value)
    assert "capture.bin" in msg and "needs datatype" in msg and "sample_rate_hz" not in msg


def test_raw_without_rate_raises(tmp_path):
    path = tmp_path / "capture.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(IQMissingParameterError) as ei:
        open_iq(path, datatype="ci8")
    msg = str(ei.value)
    assert "capture.bin" in msg and "needs sample_rate_hz" in msg and "datatype" not in msg


def test_raw_unknown_datatype_raises(tmp_path):
    path = tmp_path / "capture.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(IQUnsupportedDatatypeError, match=r"capture\.bin.*'cf24'"):
        open_iq(path, datatype="cf24", sample_rate_hz=1e6)


def test_sigmf_conflicting_datatype_argument_raises(tmp_path):
    write_sigmf(tmp_path / "rec", _rand_iq(4), FS_HZ, "ci8")
    with pytest.raises(IQFormatError, match=r"rec\.sigmf-meta.*'ci16_le'.*'ci8'"):
        open_iq(tmp_path / "rec", datatype="ci16_le")


def test_multichannel_sigmf_with_header_and_trailing_bytes(tmp_path):
    """core:num_channels = 3: frames of one sample per channel, channel after
    channel (SigMF v1.0.0 Dataset Format); core:header_bytes of the first
    capture and core:trailing_bytes are skipped; each channel reads as itself."""
    chans = [_rand_iq(100, seed=10 + c) for c in range(3)]
    frames = np.stack([from_complex64(c, "ci16_le").reshape(-1, 2) for c in chans], axis=1)  # (100, 3, 2)
    data = b"HDR!" * 4 + frames.astype("<i2").tobytes() + b"tail"
    doc = {"global": {**GOOD_GLOBAL, "core:datatype": "ci16_le", "core:num_channels": 3, "core:trailing_bytes": 4},
           "captures": [{"core:sample_start": 0, "core:header_bytes": 16}]}
    base, _ = _write_meta(tmp_path, doc, data)
    for c in range(3):
        with open_iq(base, channel=c) as r:
            assert r.meta.n_samples == 100 and r.meta.num_channels == 3 and r.meta.channel == c
            np.testing.assert_array_equal(r.read_all(), to_complex64(from_complex64(chans[c], "ci16_le"), "ci16_le"))
            np.testing.assert_array_equal(r.read(37, 5), r.read_all()[37:42])
            np.testing.assert_array_equal(r.read_native(37, 5), frames[37:42, c])
            np.testing.assert_array_equal(r.read_native(37, 5, copy=False), frames[37:42, c])
    with pytest.raises(IQMetadataError, match="channel 3 asked for, the recording has 3"):
        open_iq(base, channel=3)


def _tar(archive, files: dict[str, bytes], mode: str = "w") -> None:
    import io
    import tarfile

    with tarfile.open(archive, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_sigmf_archive_reads_in_place_like_its_extracted_recording(tmp_path):
    """A SigMF archive (SigMF v1.0.0: an uncompressed tar holding X/X.sigmf-meta and
    X/X.sigmf-data) reads sample for sample as the recording it holds, header and
    trailing bytes honoured, without extracting it."""
    x = _rand_iq(1000, seed=3)
    native = from_complex64(x, "ci16_le").reshape(-1, 2)
    data = b"HDR!" * 2 + native.astype("<i2").tobytes() + b"tl"
    doc = {"global": {**GOOD_GLOBAL, "core:datatype": "ci16_le", "core:trailing_bytes": 2},
           "captures": [{"core:sample_start": 0, "core:header_bytes": 8, "core:frequency": 3.5e9}],
           "annotations": [{"core:sample_start": 5, "core:label": "x"}]}
    _tar(tmp_path / "rec.sigmf", {"rec/rec.sigmf-meta": json.dumps(doc).encode(), "rec/rec.sigmf-data": data})
    base, _ = _write_meta(tmp_path / "", doc, data, name="plain")
    with open_iq(tmp_path / "rec.sigmf") as a, open_iq(base) as b:
        assert a.meta.n_samples == b.meta.n_samples == 1000
        assert a.meta.center_freq_hz == 3.5e9 and a.meta.datatype == "ci16_le"
        assert a.meta.annotations == b.meta.annotations
        assert a.meta.meta_path.endswith("rec.sigmf/rec/rec.sigmf-meta")
        np.testing.assert_array_equal(a.read_all(), b.read_all())
        np.testing.assert_array_equal(a.read_native(123, 7, copy=False), native[123:130])


def test_sigmf_archive_problems_are_named(tmp_path):
    one = {"global": {**GOOD_GLOBAL, "core:datatype": "cf32_le"}, "captures": [], "annotations": []}
    meta = json.dumps(one).encode()
    _tar(tmp_path / "two.sigmf", {"a/a.sigmf-meta": meta, "a/a.sigmf-data": b"\0" * 8,
                                  "b/b.sigmf-meta": meta, "b/b.sigmf-data": b"\0" * 8})
    with pytest.raises(IQMetadataError, match=r"2 recordings \(a/a\.sigmf-meta, b/b\.sigmf-meta\)"):
        open_iq(tmp_path / "two.sigmf")
    _tar(tmp_path / "nodata.sigmf", {"a/a.sigmf-meta": meta})
    with pytest.raises(IQMissingFileError, match=r"a/a\.sigmf-meta but no a/a\.sigmf-data"):
        open_iq(tmp_path / "nodata.sigmf")
    _tar(tmp_path / "gz.sigmf", {"a/a.sigmf-meta": meta, "a/a.sigmf-data": b"\0" * 8}, mode="w:gz")
    with pytest.raises(IQMetadataError, match="compressed SigMF archive"):
        open_iq(tmp_path / "gz.sigmf")
    (tmp_path / "junk.sigmf").write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(IQMetadataError, match="not a readable SigMF archive"):
        open_iq(tmp_path / "junk.sigmf")
    _tar(tmp_path / "bad.sigmf", {"a/a.sigmf-meta": b"{", "a/a.sigmf-data": b"\0" * 8})
    with pytest.raises(IQMetadataError, match=r"bad\.sigmf/a/a\.sigmf-meta: SigMF metadata is not valid JSON"):
        open_iq(tmp_path / "bad.sigmf")
    _tar(tmp_path / "odd.sigmf", {"a/a.sigmf-meta": meta, "a/a.sigmf-data": b"\0" * 9})
    with pytest.raises(IQTruncatedError):
        open_iq(tmp_path / "odd.sigmf")
    with open_iq(tmp_path / "odd.sigmf", allow_partial=True) as r:
        assert r.meta.n_samples == 1 and r.n_dropped_bytes == 1
