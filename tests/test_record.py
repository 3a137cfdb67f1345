"""ssbwatch record: the live source written to SigMF as it arrives, for calibrate."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from detector.record import record
from detector.sources import open_source
from signals import iq as iqio

RATE = 1.0e6


def _ci16(n: int, seed: int) -> np.ndarray:
    """n native ci16 samples, (n, 2) int16."""
    return np.random.default_rng(seed).integers(-3000, 3000, size=(n, 2), dtype=np.int16)


def test_stdin_recording_keeps_the_samples_and_never_replaces_one(tmp_path):
    raw = _ci16(30000, 1)
    src = tmp_path / "in.bin"
    src.write_bytes(raw.tobytes())
    cmd = [sys.executable, "-m", "detector.cli", "record", "--source", "-", "--format", "ci16_le",
           "--sample-rate", str(RATE), "--center-freq", "3.5e9", "--seconds", "0.02", "-o", str(tmp_path / "clean")]
    with open(src, "rb") as f:
        r = subprocess.run(cmd, stdin=f, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "clean.sigmf-meta").read_text())
    assert meta["global"]["core:datatype"] == "ci16_le"  # integers stay integers
    assert meta["global"]["core:sample_rate"] == RATE
    assert meta["captures"][0]["core:frequency"] == 3.5e9
    assert meta["captures"][0]["core:datetime"].endswith("Z")
    got = np.fromfile(tmp_path / "clean.sigmf-data", np.int16).reshape(-1, 2)
    assert np.array_equal(got, raw[:20000])  # exactly the asked 0.02 s, bit for bit
    # a second recording of the same name is refused, the first untouched
    with open(src, "rb") as f:
        r = subprocess.run(cmd, stdin=f, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr
    assert np.array_equal(np.fromfile(tmp_path / "clean.sigmf-data", np.int16).reshape(-1, 2), raw[:20000])
    # a source that ends early: what arrived is kept, and the exit status says it was cut short
    cmd[cmd.index("0.02")] = "1.0"
    cmd[-1] = str(tmp_path / "short")
    with open(src, "rb") as f:
        r = subprocess.run(cmd, stdin=f, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "end of source" in r.stderr
    assert np.array_equal(np.fromfile(tmp_path / "short.sigmf-data", np.int16).reshape(-1, 2), raw)


def test_a_reconnection_mid_recording_starts_a_segment_that_replay_cuts_at(tmp_path):
    a, b = _ci16(4000, 2), _ci16(3000, 3)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(20)
    port = lsock.getsockname()[1]
    done = threading.Event()

    def serve():
        for part in (a, b):
            conn, _ = lsock.accept()
            with conn:
                conn.sendall(part.tobytes() + (b"\x01" if part is a else b""))  # + a partial sample
                if part is b:
                    done.wait(20)
        lsock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    src = open_source(f"tcp://127.0.0.1:{port}", datatype="ci16_le", sample_rate_hz=RATE,
                      center_freq_hz=1.8e9, backoff_initial_s=0.02, backoff_max_s=0.1)
    try:
        res = record(src, (len(a) + len(b)) / RATE, tmp_path / "rec", timeout_s=10.0)
    finally:
        done.set()
        src.close()
        t.join(20)
    assert res.ended == "complete" and res.n_samples == len(a) + len(b)
    assert res.discontinuities == 1
    meta = iqio.read_sigmf_meta(res.meta_path)
    assert [c["core:sample_start"] for c in meta.captures] == [0, len(a)]
    assert "reconnection" in meta.captures[1][iqio.DISCONTINUITY_KEY]
    # calibrate and replay search each side afresh
    assert iqio.capture_parts(meta) == [(0, len(a), 1.8e9), (len(a), len(a) + len(b), 1.8e9)]
    with iqio.open_iq(res.meta_path) as r:
        assert np.array_equal(r.read_native(0, len(a) + len(b)).reshape(-1, 2), np.concatenate([a, b]))


def test_a_silent_source_writes_nothing(tmp_path):
    src = open_source("tcp-listen://127.0.0.1:0", datatype="cf32_le", sample_rate_hz=RATE)
    try:
        res = record(src, 1.0, tmp_path / "none", timeout_s=0.3)
    finally:
        src.close()
    assert res.meta_path is None and res.ended == "timeout"
    assert list(tmp_path.iterdir()) == []  # no file, not even the temporary one


def test_float_sources_are_written_as_cf32(tmp_path):
    x = (np.random.default_rng(5).standard_normal((2, 5000)) * 0.1).astype(np.float32)
    iq = (x[0] + 1j * x[1]).astype(np.complex64)
    f = tmp_path / "in.cf32"
    f.write_bytes(iq.tobytes())
    src = open_source(str(f), datatype="cf32_le", sample_rate_hz=RATE)
    try:
        res = record(src, 0.004, tmp_path / "out")
    finally:
        src.close()
    with iqio.open_iq(res.meta_path) as r:
        assert r.meta.datatype == "cf32_le"
        assert np.array_equal(r.read_all(), iq[:4000])


def test_the_writer_refuses_to_replace_and_abort_leaves_nothing(tmp_path):
    iqio.write_sigmf(tmp_path / "x", np.zeros(10, np.complex64), RATE)
    with pytest.raises(iqio.IQFormatError, match="exists"):
        iqio.SigMFWriter(tmp_path / "x", RATE, "cf32_le")
    w = iqio.SigMFWriter(tmp_path / "y", RATE, "ci8")
    w.write(np.ones(5, np.complex64) * 0.5)
    w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.sigmf-data", "x.sigmf-meta"]


def test_a_recorded_clean_stream_calibrates_a_site(tmp_path):
    """The edge workflow: record the live stream while the cell is clean, calibrate on it."""
    import dataclasses

    from detector.replay import calibrate
    from signals.simulate import SimConfig, draw_params, simulate_capture

    cfg = SimConfig(duration_ms=45.0, sample_rates_hz=(7.68e6,), period_ms=(20.0,), snr_db=(25.0, 25.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    p = draw_params(cfg, np.random.default_rng(7), force_clean=True)
    cap = simulate_capture(p, np.random.default_rng(8))
    f = tmp_path / "stream.ci16"
    f.write_bytes(iqio.from_complex64(cap.iq * 0.5, "ci16_le").tobytes())
    src = open_source(str(f), datatype="ci16_le", sample_rate_hz=p.sample_rate_hz, center_freq_hz=p.center_freq_hz)
    try:
        res = record(src, 0.045, tmp_path / "clean")
    finally:
        src.close()
    base = calibrate([str(res.meta_path)])
    (cb,) = base.configs.values()
    assert cb.pcis == [p.pci] and cb.n_ssb >= 2
