"""Edge daemon (`ssbwatch run`): config, CLI overrides, TCP/UDP streams, drops,
malformed input, signals, metrics, systemd notify.  Loopback only; waits are
hang guards (generous deadlines), never timing thresholds."""
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from detector.cli import build_parser, main
from detector.daemon import (
    Daemon, SdNotifier, config_from_args, edge_config_from_dict, load_edge_config, record_features,
)
from signals.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GUARD_S = 120.0  # hang guard only


def _wait(cond, what, guard=GUARD_S):
    end = time.monotonic() + guard
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# a short 30 kHz capture, jammed (strong noise) from half way
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jammed_capture():
    from signals.simulate import SimConfig, draw_params, simulate_capture

    cfg = SimConfig(duration_ms=160.0, scs_khz=(30,), sample_rates_hz=(7.68e6,), l_max=(4,), period_ms=(10.0,),
                    all_ssbs_fraction=1.0, snr_db=(20.0, 20.0), datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    rng = np.random.default_rng(3)
    p = draw_params(cfg, rng, force_clean=True)
    p.multipath = p.traffic = p.neighbour = None
    cap = simulate_capture(p, rng)
    x = cap.iq.astype(np.complex64).copy()
    half = len(x) // 2
    pw = float(np.mean(np.abs(x) ** 2))
    noise = np.sqrt(pw * 10 / 2) * (rng.standard_normal(len(x) - half) + 1j * rng.standard_normal(len(x) - half))
    x[half:] += noise.astype(np.complex64)
    return {"iq": x, "pci": p.pci, "fs": p.sample_rate_hz, "fc": p.center_freq_hz, "jam_from": half}


def _serve_once(payload: bytes, chunk: int = 1 << 16):
    """Loopback TCP server that sends ``payload`` to the first client (faster than
    real time), then closes.  Returns (port, thread)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def run():
        try:
            conn, _ = srv.accept()
            with conn:
                for i in range(0, len(payload), chunk):
                    conn.sendall(payload[i:i + chunk])
        finally:
            srv.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return port, th


def _cfg(uri, *, fs=7.68e6, fc=None, fmt="cf32_le", jsonl=None, **sections):
    d = {"source": {"uri": uri, "format": fmt, "sample_rate_hz": fs, "center_freq_hz": fc},
         "detector": {"model": "classical"},
         "outputs": {"jsonl": {"path": jsonl}, "stats_interval_s": 0}}
    for k, v in sections.items():
        d.setdefault(k, {}).update(v)
    return edge_config_from_dict(d)


class _Run:
    """A Daemon running in a thread (signal handlers stay the test's)."""

    def __init__(self, daemon):
        self.d = daemon
        self.rc = None
        self.th = threading.Thread(target=self._main, daemon=True)
        self.th.start()
        _wait(lambda: daemon.started.is_set(), "daemon start")

    def _main(self):
        self.rc = self.d.run()

    def stop(self):
        self.d.request_stop()
        self.th.join(GUARD_S)
        assert not self.th.is_alive()
        return self.rc


def _lines(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()]


# ---------------------------------------------------------------------------
# configuration and command line
# ---------------------------------------------------------------------------
def test_edge_yaml_is_valid_and_safe():
    cfg = load_edge_config(ROOT / "configs" / "edge.yaml")
    assert cfg.outputs.prometheus.host == "127.0.0.1"
    assert cfg.outputs.mqtt.qos == 1
    assert cfg.source.sample_rate_hz == 30.72e6
    assert cfg.alerts.k == 3 and cfg.alerts.n == 5


@pytest.mark.parametrize("yaml_text, key", [
    ("schema_version: 1\noutputs:\n  jsonl:\n    pathh: x\n", "outputs.jsonl.pathh"),
    ("schema_version: 1\nsource:\n  urii: tcp://127.0.0.1:1\n", "source.urii"),
    ("schema_version: 1\nalerts:\n  kk: 3\n", "kk"),
    ("schema_version: 1\nbogus: 1\n", "bogus"),
])
def test_unknown_keys_are_named(tmp_path, yaml_text, key):
    p = tmp_path / "e.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_edge_config(p)


def test_bad_values_are_named(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("schema_version: 1\nalerts:\n  k: 9\n  n: 5\n")
    with pytest.raises(ConfigError, match=r"alerts\.k"):
        load_edge_config(p)
    p.write_text("schema_version: 2\n")
    with pytest.raises(ConfigError, match="schema_version"):
        load_edge_config(p)
    p.write_text("schema_version: 1\nsource:\n  format: cf24\n")
    with pytest.raises(ConfigError, match="source.format"):
        load_edge_config(p)


def test_cli_overrides_config_file(tmp_path):
    args = build_parser().parse_args([
        "run", "--config", str(ROOT / "configs" / "edge.yaml"), "--source", "udp://127.0.0.1:9999",
        "--format", "cf32_le", "--sample-rate", "7.68e6", "--center-freq", "2.5e9", "--jsonl", "-",
        "--baseline", str(tmp_path / "b.json")])
    cfg = config_from_args(args)
    assert cfg.source.uri == "udp://127.0.0.1:9999"
    assert cfg.source.format == "cf32_le" and cfg.source.sample_rate_hz == 7.68e6
    assert cfg.source.center_freq_hz == 2.5e9
    assert cfg.outputs.jsonl.path == "-"
    assert cfg.detector.baseline == str(tmp_path / "b.json")
    # the rest still comes from the file
    assert cfg.outputs.jsonl.max_bytes == 104857600 and cfg.outputs.prometheus.enabled


def test_cli_without_config_and_without_source(tmp_path, capsys):
    args = build_parser().parse_args(["run", "--source", "tcp://127.0.0.1:1", "--format", "ci16_le",
                                      "--sample-rate", "30.72e6", "--center-freq", "3.5e9"])
    cfg = config_from_args(args)
    assert cfg.source.uri == "tcp://127.0.0.1:1" and cfg.outputs.jsonl.path == "-"
    assert cfg.outputs.prometheus.enabled is False and cfg.outputs.mqtt.enabled is False
    assert main(["run", "--format", "cf32_le"]) == 2
    assert "source.uri" in capsys.readouterr().err


def test_record_features_mapping():
    assert record_features({"profile_peak_db": 12.0, "sym_spread_db": 1.0}) == {"narrowband_ratio": 1.0, "pulsed": False}
    assert record_features({"profile_peak_db": 3.0, "sym_spread_db": 9.0}) == {"narrowband_ratio": 0.0, "pulsed": True}
    assert record_features({"profile_peak_db": None}) == {}


# ---------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------
def test_tcp_stream_gives_records_and_jamming_started(tmp_path, jammed_capture):
    c = jammed_capture
    x = c["iq"]
    port, sender = _serve_once(x.tobytes())
    out = tmp_path / "out.jsonl"
    cfg = _cfg(f"tcp://127.0.0.1:{port}", fs=c["fs"], fc=c["fc"], jsonl=str(out),
               queue={"max_samples": 2 * len(x)})  # the test checks detection, not drops
    d = Daemon(cfg)
    run = _Run(d)
    _wait(lambda: d.snapshot()["samples_processed"] == len(x), "all samples processed")
    assert run.stop() == 0
    lines = _lines(out)
    ssbs = [l for l in lines if l["type"] == "ssb"]
    events = [l for l in lines if l["type"] == "event"]
    stats = [l for l in lines if l["type"] == "stats"][-1]
    assert len(ssbs) >= 40
    assert all(r["pci"] == c["pci"] for r in ssbs)
    fs = c["fs"]
    clean = [r for r in ssbs if r["sample"] + 2000 < c["jam_from"]]
    jammed = [r for r in ssbs if r["sample"] > c["jam_from"]]
    assert clean and not any(r["jammed"] for r in clean)
    assert jammed and all(r["jammed"] for r in jammed)
    started = [e for e in events if e["kind"] == "JAMMING_STARTED"]
    assert len(started) == 1 and started[0]["pci"] == c["pci"]
    assert started[0]["t_s"] * fs > c["jam_from"]  # not before the jammer
    assert started[0]["detection_delay_ssb"] <= 4  # k=3 of n=5: the 3rd jammed SSB
    assert started[0]["character"]["band"] == "wideband"
    assert stats["samples_in"] == len(x) == stats["samples_processed"] + stats["samples_dropped"]
    assert stats["samples_dropped"] == 0 and stats["events"]["JAMMING_STARTED"] == 1
    # the event line is on disk before the stats of the shutdown
    assert lines.index(started[0]) < lines.index(stats)


class _SlowPipeline:
    """Stands in for ScoringPipeline: records what it was given, slowly."""

    def __init__(self, delay_s):
        self.delay_s = delay_s
        self.calls = []

    def push(self, block, start):
        self.calls.append((int(start), len(block)))
        time.sleep(self.delay_s)
        return []

    def flush(self):
        return []


def test_drops_are_counted_exactly_with_a_slow_consumer(tmp_path):
    n = 400_000
    x = (np.arange(2 * n, dtype=np.float32) % 7).view(np.complex64)
    port, sender = _serve_once(x.tobytes(), chunk=4096 * 8)
    slow = _SlowPipeline(0.02)
    cfg = _cfg(f"tcp://127.0.0.1:{port}", jsonl=str(tmp_path / "o.jsonl"),
               source={"block_samples": 4096}, queue={"max_samples": 16384})
    d = Daemon(cfg, pipeline_factory=lambda *a: slow)
    run = _Run(d)
    _wait(lambda: d.snapshot()["samples_in"] == n, "all samples received")
    assert run.stop() == 0
    t = d.totals
    processed = sum(k for _, k in slow.calls)
    assert t.samples_in == n
    assert t.samples_processed == processed
    assert t.samples_dropped > 0  # the consumer was too slow
    assert t.samples_in == t.samples_processed + t.samples_dropped
    # the receiver sees every drop as a gap in the absolute sample index
    gaps, end = 0, 0
    for start, k in slow.calls:
        assert start >= end
        gaps += start - end
        end = start + k
    assert gaps + (n - end) == t.samples_dropped
    stats = [l for l in _lines(tmp_path / "o.jsonl") if l["type"] == "stats"][-1]
    assert stats["samples_dropped"] == t.samples_dropped and stats["samples_in"] == n


def test_malformed_udp_and_nan_are_counted_and_the_daemon_keeps_running(tmp_path):
    cfg = _cfg("udp://127.0.0.1:0", jsonl=str(tmp_path / "o.jsonl"), fc=2.5e9)
    d = Daemon(cfg)
    run = _Run(d)
    addr = d.stream.source.address
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = np.random.default_rng(1)
    good = (rng.standard_normal(2000) * 0.1).astype(np.float32).tobytes()  # 1000 cf32 samples
    sent = 0
    for _ in range(3):
        tx.sendto(good + b"\x01\x02\x03", addr)  # odd length: 3 trailing bytes
        sent += 1000
    nan = np.full(2000, np.nan, np.float32)
    tx.sendto(nan.tobytes(), addr)
    sent += 1000
    _wait(lambda: d.snapshot()["samples_in"] == sent, "datagrams received")
    snap = d.snapshot()
    assert snap["malformed_messages"] == 3 and snap["dropped_bytes"] == 9
    _wait(lambda: d.snapshot()["samples_processed"] == sent, "datagrams processed")
    assert d.snapshot()["samples_nonfinite"] == 1000
    assert run.th.is_alive()
    for _ in range(5):  # still reading after the bad input
        tx.sendto(good, addr)
        sent += 1000
    _wait(lambda: d.snapshot()["samples_processed"] == sent, "good datagrams after the bad ones")
    tx.close()
    assert run.stop() == 0
    stats = [l for l in _lines(tmp_path / "o.jsonl") if l["type"] == "stats"][-1]
    assert stats["malformed_messages"] == 3 and stats["samples_nonfinite"] == 1000
    assert stats["samples_in"] == sent == stats["samples_processed"] + stats["samples_dropped"]
    assert stats["processing_errors"] == 0


def test_metrics_endpoint_on_loopback(tmp_path):
    pytest.importorskip("prometheus_client")
    cfg = _cfg("udp://127.0.0.1:0", jsonl=None, fc=2.5e9, outputs={"prometheus": {"enabled": True, "port": 0}})
    d = Daemon(cfg)
    run = _Run(d)
    try:
        host, port = d.metrics._httpd.server_address[:2]
        assert host == "127.0.0.1"
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(np.zeros(2 * 1234, np.float32).tobytes(), d.stream.source.address)
        tx.close()
        _wait(lambda: d.snapshot()["samples_processed"] == 1234, "samples processed")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        assert run.stop() == 0
    metrics = {l.split(" ")[0]: float(l.split(" ")[1]) for l in body.splitlines() if l and not l.startswith("#")}
    assert metrics["samples_in_total"] == 1234
    assert metrics["samples_dropped_total"] == 0
    assert metrics["ssbs_scored_total"] == 0 and metrics["ssbs_jammed_total"] == 0
    assert metrics['events_total{kind="JAMMING_STARTED"}'] == 0
    for name in ("source_reconnects_total", "samples_unsearched_total", "timing_jumps_total", "lock_state",
                 "real_time_factor", "queue_fill_samples", "dc_offset_power_ratio"):
        assert name in metrics


def test_reload_applies_good_config_and_keeps_old_on_bad(tmp_path):
    cfg_path = tmp_path / "edge.yaml"
    base = ("schema_version: 1\nsource:\n  uri: udp://127.0.0.1:0\n  format: cf32_le\n  sample_rate_hz: 7.68e6\n"
            "detector:\n  model: classical\noutputs:\n  stats_interval_s: 0\n  jsonl:\n    path: {out}\n"
            "alerts:\n  k: {k}\n  n: 5\n")
    cfg_path.write_text(base.format(out=tmp_path / "a.jsonl", k=3))
    d = Daemon(load_edge_config(cfg_path), config_loader=lambda: load_edge_config(cfg_path))
    run = _Run(d)
    d.alerts.update(pci=7, t_s=0.0, sample=0, jammed=True, score=0.9)  # state that must survive
    cfg_path.write_text(base.format(out=tmp_path / "a.jsonl", k=3) + "typo_key: 1\n")
    d.request_reload()
    _wait(lambda: d.totals.reload_failures == 1, "failed reload")
    assert d.cfg.alerts.k == 3 and d.totals.reloads == 0
    cfg_path.write_text(base.format(out=tmp_path / "b.jsonl", k=2))
    d.request_reload()
    _wait(lambda: d.totals.reloads == 1, "reload")
    assert d.cfg.alerts.k == 2 and d.alerts.config.k == 2
    assert d.alerts.tracked_pcis() == [7]
    ev = d.alerts.update(pci=7, t_s=0.01, sample=1, jammed=True, score=0.9)  # 2nd jammed of k=2
    assert [e.kind for e in ev] == ["JAMMING_STARTED"]
    assert run.stop() == 0
    assert any(l["type"] == "stats" for l in _lines(tmp_path / "b.jsonl"))


def test_sd_notify_watchdog_only_while_samples_arrive(tmp_path):
    path = str(tmp_path / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(5)
    n = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    assert n.enabled and n.watchdog_s == 1.0
    assert n.notify("READY=1")
    assert srv.recv(100) == b"READY=1"
    assert not n.tick(0, now=100.0)  # nothing arrived yet
    assert n.tick(500, now=101.0)
    assert srv.recv(100) == b"WATCHDOG=1"
    assert not n.tick(500, now=105.0)  # stalled input: no ping, systemd will restart us
    assert n.tick(900, now=105.1)  # samples again
    assert srv.recv(100) == b"WATCHDOG=1"
    assert not n.tick(1300, now=105.3)  # within half the interval of the last ping
    assert n.tick(1300, now=105.7)
    assert srv.recv(100) == b"WATCHDOG=1"
    n.close()
    srv.close()
    assert not SdNotifier({}).enabled


def test_sigterm_on_subprocess_exits_0_and_accounts_for_every_sample(tmp_path):
    notify = str(tmp_path / "notify")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(notify)
    nsock.settimeout(GUARD_S)
    # an endless stream of noise from a loopback TCP server
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    stop = threading.Event()
    sent = [0]

    def serve():
        conn, _ = srv.accept()
        chunk = (np.random.default_rng(0).standard_normal(2 * 8192) * 0.1).astype(np.float32).tobytes()
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(chunk)
                except OSError:
                    break
                sent[0] += 8192
                time.sleep(0.002)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    out = tmp_path / "o.jsonl"
    env = dict(os.environ, NOTIFY_SOCKET=notify, WATCHDOG_USEC="400000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "detector.cli", "run", "--source", f"tcp://127.0.0.1:{port}", "--format", "cf32_le",
         "--sample-rate", "7.68e6", "--center-freq", "2.5e9", "--model", "classical", "--jsonl", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        msgs = []
        while not any(m.startswith(b"WATCHDOG=1") for m in msgs):  # READY, then pings once samples flow
            msgs.append(nsock.recv(4096))
        assert msgs[0].startswith(b"READY=1")
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(GUARD_S)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        srv.close()
        nsock.close()
    err = proc.stderr.read().decode()
    assert rc == 0, err
    print(f"SIGTERM -> exit in {elapsed:.2f} s")
    stats = [l for l in _lines(out) if l["type"] == "stats"][-1]
    assert stats["samples_in"] > 0
    assert stats["samples_in"] == stats["samples_processed"] + stats["samples_dropped"]
    assert stats["queue_fill_samples"] == 0


@pytest.mark.parametrize("path", sorted((ROOT / "deploy").glob("*.yaml")), ids=lambda p: p.name)
def test_deploy_example_configs_are_valid(path):
    cfg = load_edge_config(path)
    assert cfg.source.uri and cfg.outputs.prometheus.host == "127.0.0.1"


def test_systemd_unit_has_the_hardening():
    unit = (ROOT / "deploy" / "ssbwatch.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ProtectHome=yes", "RestrictAddressFamilies=", "StateDirectory=", "LogsDirectory=",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit, line


def test_reload_with_a_source_change_reopens_and_keeps_the_counts(tmp_path):
    cfg_path = tmp_path / "edge.yaml"
    base = ("schema_version: 1\nsource:\n  uri: {uri}\n  format: cf32_le\n  sample_rate_hz: 7.68e6\n"
            "  block_samples: {bs}\ndetector:\n  model: classical\noutputs:\n  stats_interval_s: 0\n"
            "  jsonl:\n    path: {out}\n")
    out = tmp_path / "o.jsonl"
    cfg_path.write_text(base.format(uri="udp://127.0.0.1:0", bs=4096, out=out))
    d = Daemon(load_edge_config(cfg_path), config_loader=lambda: load_edge_config(cfg_path))
    run = _Run(d)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.sendto(np.zeros(2000, np.float32).tobytes(), d.stream.source.address)
    _wait(lambda: d.snapshot()["samples_processed"] == 1000, "first source")
    cfg_path.write_text(base.format(uri="nosuchscheme://x:1", bs=4096, out=out))  # cannot be opened
    d.request_reload()
    _wait(lambda: d.totals.reload_failures == 1, "failed reload")
    assert d.cfg.source.uri == "udp://127.0.0.1:0" and d.stream is not None
    cfg_path.write_text(base.format(uri="udp://127.0.0.1:0", bs=8192, out=out))
    d.request_reload()
    _wait(lambda: d.totals.reloads == 1, "reload")
    assert d.cfg.source.block_samples == 8192
    tx.sendto(np.zeros(2000, np.float32).tobytes(), d.stream.source.address)
    _wait(lambda: d.snapshot()["samples_processed"] == 2000, "second source")
    tx.close()
    assert run.stop() == 0
    stats = [l for l in _lines(out) if l["type"] == "stats"][-1]
    assert stats["samples_in"] == 2000 == stats["samples_processed"] + stats["samples_dropped"]


def test_jsonl_rotation_by_size(tmp_path):
    from detector.daemon import JsonlWriter

    p = tmp_path / "r.jsonl"
    w = JsonlWriter(str(p), max_bytes=200, backups=2)
    for i in range(30):
        assert w.write({"type": "ssb", "i": i, "pad": "x" * 20}, durable=(i % 5 == 0))
    w.close()
    files = sorted(tmp_path.glob("r.jsonl*"))
    assert [f.name for f in files] == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]  # the oldest were removed
    assert all(f.stat().st_size <= 200 for f in files)
    kept = [json.loads(l)["i"] for f in (files[2], files[1], files[0]) for l in f.read_text().splitlines()]
    assert kept == list(range(30 - len(kept), 30))  # newest lines, in order, none torn


def test_live_receiver_settings_from_the_config(tmp_path):
    from detector.daemon import make_pipeline

    cfg = _cfg("udp://127.0.0.1:0", fc=2.5e9)
    pipe = make_pipeline(cfg, None, None, "cf32_le")
    assert pipe.receiver.cfg.search_duty == cfg.receiver.search_duty > 0  # sliced searches
    assert pipe.receiver.copy_input is False  # queue blocks are kept by reference
    cfg = _cfg("udp://127.0.0.1:0", fc=2.5e9, receiver={"search_duty": 0})
    assert make_pipeline(cfg, None, None, "cf32_le").receiver.cfg.search_duty == 0
    p = tmp_path / "e.yaml"
    p.write_text("schema_version: 1\nreceiver:\n  search_duty: 1.5\n")
    with pytest.raises(ConfigError, match=r"receiver\.search_duty"):
        load_edge_config(p)
    d = Daemon(cfg)
    d._open_stream()
    try:
        rx = d.stream.pipeline.receiver
        assert rx.search_slack is not None and rx.search_slack()  # an empty queue has room
        assert d.snapshot()["samples_unsearched"] == 0
    finally:
        d._retire_stream(drain=False)


def test_run_limits_blas_threads(monkeypatch):
    from detector import cli, threads

    for var in threads.BLAS_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # an explicit setting wins
    threads.limit_blas_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"
    assert set(cli._ONE_BLAS_THREAD) >= {"run", "replay", "bench"}


def _ci16_stream_daemon(tmp_path, c, x):
    """A daemon (classical detector, not started) reading ``x`` -- scaled to a quarter of
    full scale, as ci16 -- from a loopback TCP server, with a queue that holds it all;
    and the path of its JSONL output."""
    from signals import iq as iqio

    x = x * np.float32(0.25 / np.abs(x).max())
    port, _ = _serve_once(iqio.from_complex64(x, "ci16_le").tobytes())
    out = tmp_path / "out.jsonl"
    cfg = _cfg(f"tcp://127.0.0.1:{port}", fs=c["fs"], fc=c["fc"], fmt="ci16_le", jsonl=str(out),
               queue={"max_samples": 2 * len(x)}, detector={"model": "classical"})
    return Daemon(cfg), out


def test_integer_stream_is_queued_native_and_converted_by_the_receiver(tmp_path, jammed_capture):
    c = jammed_capture
    x = c["iq"][: len(c["iq"]) // 2]  # the clean half
    d, out = _ci16_stream_daemon(tmp_path, c, x)
    run = _Run(d)
    assert d.stream.source.native and d.stream.pipeline.receiver.converter is not None
    _wait(lambda: d.snapshot()["samples_processed"] == len(x), "all samples processed")
    assert run.stop() == 0
    ssbs = [l for l in _lines(out) if l["type"] == "ssb"]
    assert len(ssbs) >= 20 and all(r["pci"] == c["pci"] for r in ssbs)
    assert not any(r["jammed"] for r in ssbs)


def test_backlog_is_pushed_as_one_block_up_to_a_gap_or_resync():
    """Daemon._coalesce takes the queued blocks that continue the taken one (a
    backlog) up to the stream's coalesce_max samples, and stops at a dropped block (a jump in
    the index) and before a source resync point."""
    import types

    from detector import daemon as dm
    from detector.sources import BlockQueue

    cap = 20_000
    q = BlockQueue(2 * cap)  # (room for the cap's test below)
    blocks = [np.full(1000, i, np.complex64) for i in range(6)]
    for b in blocks[:3]:
        q.put(b)
    q.skip(500)  # samples lost upstream: a jump in the index
    for b in blocks[3:]:
        q.put(b)

    class Wrapped:
        resync = [5500]  # the start of blocks[5]

        def resync_in(self, a, b):
            return any(a <= r < b for r in self.resync)

    st = types.SimpleNamespace(queue=q, wrapped=Wrapped(), coalesce_max=cap)
    pushed = []
    me = types.SimpleNamespace(_process=lambda b, i: pushed.append((b, i)))
    block, index = dm.Daemon._coalesce(me, st, *q.get(0))
    assert index == 0 and np.array_equal(np.concatenate(block), np.concatenate(blocks[:3]))  # up to the gap
    block, index = dm.Daemon._coalesce(me, st, *q.get(0))
    # blocks[3] and [4] were pushed together, blocks[5] (after the resync point) comes on its own
    assert len(pushed) == 1 and pushed[0][1] == 3500
    assert np.array_equal(np.concatenate(pushed[0][0]), np.concatenate(blocks[3:5]))
    assert index == 5500 and np.array_equal(block, blocks[5])
    assert q.get(0) is None
    # the cap: only whole blocks, up to coalesce_max in all
    big = np.zeros(cap - 1000, np.complex64)
    q.put(big)
    q.put(blocks[0])
    q.put(blocks[1])
    block, index = dm.Daemon._coalesce(me, st, *q.get(0))
    assert sum(map(len, block)) == cap and q.get(0)[1] == index + cap


def test_a_stream_with_i_and_q_swapped_is_found_conjugated(tmp_path, jammed_capture, caplog):
    # ci16 with Q first (the spectrum inverted), queued native: a failed cell search (a live
    # stream's second) is tried on the conjugate, the cell is there, and the stream is conjugated
    # from then on -- the right PCI, none of the clean SSBs jammed, a warning in the log, the gauge set
    c = jammed_capture
    x = np.conj(c["iq"][: len(c["iq"]) // 2])  # the clean half, I and Q swapped
    d, out = _ci16_stream_daemon(tmp_path, c, x)
    with caplog.at_level("WARNING", logger="ssbwatch"):
        run = _Run(d)
        _wait(lambda: d.snapshot()["samples_processed"] == len(x), "all samples processed")
        snap = d.snapshot()
        assert run.stop() == 0
    assert snap["iq_swapped"] == 1 and snap["samples_dropped"] == 0
    ssbs = [l for l in _lines(out) if l["type"] == "ssb"]
    assert len(ssbs) >= 10 and all(r["pci"] == c["pci"] for r in ssbs)
    assert not any(r["jammed"] for r in ssbs)
    assert any("look swapped" in r.getMessage() for r in caplog.records)


def test_adc_clipping_is_warned_once_and_counted(tmp_path, caplog):
    """The first SSB with samples at the ADC's rails is named in the log (once); records made
    invalid by the clipping rule (pipeline.CLIP_DOMINANT_RATIO) are counted apart."""
    d = Daemon(_cfg(str(tmp_path / "none.cf32"), jsonl=str(tmp_path / "out.jsonl")))
    clipped = {"pci": 1, "jammed": None, "valid": False, "clipped": 0.05, "clip_overload_db": 2.0}
    with caplog.at_level("WARNING", logger="ssbwatch"):
        d._emit_records([{"pci": 1, "jammed": False, "valid": True}, clipped, dict(clipped)])
    said = [r.getMessage() for r in caplog.records if "ADC clipping" in r.getMessage()]
    assert len(said) == 1
    snap = d.snapshot()
    assert (snap["ssbs_clipped"], snap["ssbs_clip_overload"], snap["ssbs_invalid"]) == (2, 2, 2)


# ---------------------------------------------------------------------------
# the baseline learned over a declared quiet period (detector/learn.py)
# ---------------------------------------------------------------------------
def _learning_daemon(tmp_path, c, x, learn_s, name="run", baseline=None):
    """A daemon (classical detector) reading ``x`` from a raw cf32 file that learns
    its baseline into ``baseline`` (default tmp_path/baseline.json) over the first
    ``learn_s`` seconds (built between two pushes, so that the SSBs after the period
    are scored with it)."""
    raw = tmp_path / f"{name}.cf32"
    x.astype(np.complex64).tofile(raw)
    out = tmp_path / f"{name}.jsonl"
    cfg = _cfg(str(raw), fs=c["fs"], fc=c["fc"], jsonl=str(out),
               detector={"model": "classical", "baseline": str(baseline or tmp_path / "baseline.json"),
                         "learn_baseline_s": learn_s},
               receiver={"search_duty": 0.0})  # (the cell search on every sample, however busy the CPU)
    return Daemon(cfg, learn_in_background=False), out


def test_the_daemon_learns_its_baseline_over_a_quiet_period_and_keeps_it(tmp_path, jammed_capture):
    """With detector.learn_baseline_s and no file at detector.baseline, the first
    seconds of stream make the baseline (as `calibrate` makes it from a recording of
    them), written there and used from then on; a restart loads it, never relearns."""
    from detector.baseline import SiteBaseline
    from detector.replay import calibrate
    from signals import iq as iqio

    c = jammed_capture
    clean = c["iq"][: c["jam_from"]]  # the clean half: 80 ms, 8 SSB periods
    x = np.tile(clean, 4)  # (more than one push of the daemon)
    d, out = _learning_daemon(tmp_path, c, x, 0.03)
    assert d.baseline is None
    _Run(d)
    _wait(lambda: d.exit_reason, "end of input")
    lines = _lines(out)
    learned = [l for l in lines if l["type"] == "baseline"]
    assert len(learned) == 1 and learned[0]["ok"] and learned[0]["learned_s"] >= 0.03
    cfgs = learned[0]["configs"]
    assert len(cfgs) == 1 and cfgs[0]["pcis"] == [c["pci"]] and cfgs[0]["ssbs"] >= 10
    assert cfgs[0]["detector"] == "classical" == d.detector.name  # (what scores the site)
    path = tmp_path / "baseline.json"
    base = SiteBaseline.load(path)
    (cb,) = base.configs.values()
    assert cb.pcis == [c["pci"]] and cb.sample_rate_hz == c["fs"] and cb.datatype == "cf32_le"
    assert cb.clean_scores == {}  # (the classical detector: no model scores kept)
    # the same as `ssbwatch calibrate` makes of a recording of the quiet period
    n = int(round(learned[0]["learned_s"] * c["fs"]))
    iqio.write_sigmf(tmp_path / "quiet", x[:n], c["fs"], datatype="cf32_le", center_freq_hz=c["fc"])
    ref = calibrate([str(tmp_path / "quiet.sigmf-meta")])
    (rb,) = ref.configs.values()
    assert rb.key == cb.key and abs(rb.noise_floor_db - cb.noise_floor_db) < 0.5
    assert abs(rb.stats["snr_est_db"].median - cb.stats["snr_est_db"].median) < 0.5
    ssbs = [l for l in lines if l["type"] == "ssb"]
    assert not any(r["jammed"] for r in ssbs)
    at = learned[0]["sample"]
    assert all(r["mode"] == "uncalibrated" for r in ssbs if r["sample"] < n)
    after = [r for r in ssbs if r["sample"] >= at]
    assert after and all(r["mode"] == "calibrated" for r in after)
    assert d.snapshot()["calibrated"] == 1 and d.snapshot()["baseline_learning"] == 0
    # a second start finds the file: calibrated from the first SSB, the file untouched
    before = path.read_bytes()
    d2, out2 = _learning_daemon(tmp_path, c, x, 0.03, name="again")
    assert d2.baseline is not None
    _Run(d2)
    _wait(lambda: d2.exit_reason, "end of input")
    lines2 = _lines(out2)
    assert not [l for l in lines2 if l["type"] == "baseline"] and path.read_bytes() == before
    ssbs2 = [l for l in lines2 if l["type"] == "ssb"]
    assert ssbs2 and all(r["mode"] == "calibrated" and not r["jammed"] for r in ssbs2)


def test_a_jamming_alert_restarts_the_quiet_period(tmp_path, jammed_capture):
    """A quiet period is not learned while a jamming alert is active: a stream
    jammed after 80 ms, with a period of 100 ms, writes no baseline (what was kept
    before the alert is dropped, and the alert lasts to the end)."""
    c = jammed_capture
    jam = c["iq"][c["jam_from"]:]
    x = np.concatenate([c["iq"], jam])  # 80 ms clean, then 160 ms jammed
    d, out = _learning_daemon(tmp_path, c, x, 0.1)
    _Run(d)
    _wait(lambda: d.exit_reason, "end of input")
    lines = _lines(out)
    assert any(l["type"] == "event" and l["kind"] == "JAMMING_STARTED" for l in lines)
    assert not [l for l in lines if l["type"] == "baseline"]
    assert not (tmp_path / "baseline.json").exists()
    assert all(r["mode"] == "uncalibrated" for r in lines if r["type"] == "ssb")


def test_a_learnt_baseline_scores_only_the_ssbs_after_its_quiet_period(jammed_capture):
    """The SSBs of the quiet period that the receiver hands over a push after the
    baseline is set (their windows look ahead of the push that ended the period)
    are scored uncalibrated, those after it calibrated: the same records however
    the stream was cut into pushes."""
    from detector.pipeline import ScoringPipeline, calibration_observations, config_baseline
    from detector.baseline import SiteBaseline
    from detector.receiver import Receiver

    c = jammed_capture
    x = c["iq"][: c["jam_from"]]
    rx = Receiver(c["fs"], c["fc"])
    obs = calibration_observations(rx.push(x) + rx.flush())
    cb = config_baseline(obs, obs[0].scs_khz, c["fs"], "cf32_le")
    end = int(0.04 * c["fs"])
    sample_of = {}
    for cut in (end - 500, end, end + 3000):  # pushes ending just before, at and after the period's end
        pipe = ScoringPipeline(c["fs"], c["fc"], "cf32_le")
        recs = pipe.push(x[:cut])
        pipe.baseline, pipe.baseline_from_sample = SiteBaseline({cb.key: cb}), end
        recs += pipe.push(x[cut:]) + pipe.flush()
        modes = {r["sample"]: r["mode"] for r in recs}
        assert any(s < end for s in modes) and any(s >= end for s in modes)
        assert all((m == "calibrated") == (s >= end) for s, m in modes.items()), cut
        sample_of[cut] = modes
    assert sample_of[end - 500] == sample_of[end] == sample_of[end + 3000]


def test_learning_a_baseline_needs_a_file_to_write_it_to():
    with pytest.raises(ConfigError, match="learn_baseline_s needs detector.baseline"):
        _cfg("x.cf32", detector={"learn_baseline_s": 5.0}).check_runnable()
    with pytest.raises(ConfigError, match="learn_baseline_s"):
        _cfg("x.cf32", detector={"learn_baseline_s": -1.0})


def test_the_learner_builds_in_a_thread_from_a_uniform_sample_of_the_period(tmp_path, jammed_capture):
    """BaselineLearner alone: fed a clean stream in chunks, it keeps at most max_ssbs
    of the period's valid SSBs (a uniform sample), builds in a thread and
    writes the file; nothing is kept before the period is over."""
    from detector.baseline import SiteBaseline
    from detector.learn import BaselineLearner
    from detector.model import DTDDNNDetector
    from detector.receiver import Receiver

    c = jammed_capture
    x = c["iq"][: c["jam_from"]]
    rx = Receiver(c["fs"], c["fc"])
    det = DTDDNNDetector()
    lr = BaselineLearner(0.07, tmp_path / "sub" / "b.json", c["fs"], c["fc"], "cf32_le", label="test",
                         max_ssbs=12, min_ssbs=10, detector=det)
    step = 40_000
    for a in range(0, len(x), step):
        b = min(a + step, len(x))
        lr.take(rx.push(x[a:b]), rx.offset_hz)
        if lr.advance(a, b):
            break
    assert lr.state in ("building", "done") and lr.elapsed_s >= 0.07
    base = lr.result(wait_s=120.0)
    assert lr.state == "done" and base is not None and lr.error == ""
    (cb,) = SiteBaseline.load(tmp_path / "sub" / "b.json").configs.values()
    assert cb.n_ssb == 12 and cb.pcis == [c["pci"]]
    assert base.sources and "learned" in base.sources[0]
    # the daemon's model's scores of the 12 clean SSBs, as calibrate keeps them
    assert list(cb.clean_scores) == [det.weights_sha256] and cb.clean_scores[det.weights_sha256][2] == 12


def test_run_learn_baseline_option(tmp_path):
    args = build_parser().parse_args(["run", "--source", "x.cf32", "--format", "cf32_le", "--rate", "7.68e6",
                                      "--baseline", str(tmp_path / "b.json"), "--learn-baseline", "5"])
    cfg = config_from_args(args)
    assert cfg.detector.learn_baseline_s == 5.0 and cfg.detector.learns()
    (tmp_path / "b.json").write_text("{}")
    assert not cfg.detector.learns()  # a file there: loaded, not learned again


def test_a_baseline_without_the_streams_configuration_is_named_in_the_log(tmp_path, jammed_capture, caplog):
    """The daemon given a baseline with no configuration for the locked cell's SCS and
    sample rate scores uncalibrated and logs what the baseline holds, once."""
    import logging

    from scipy.signal import resample_poly

    from detector.replay import calibrate
    from signals import iq as iqio

    c = jammed_capture
    clean = c["iq"][: c["jam_from"]]
    iqio.write_sigmf(tmp_path / "fast", resample_poly(clean, 2, 1).astype(np.complex64), 2 * c["fs"],
                     datatype="cf32_le", center_freq_hz=c["fc"])
    calibrate([str(tmp_path / "fast.sigmf-meta")]).save(tmp_path / "b.json")
    raw = tmp_path / "x.cf32"
    clean.tofile(raw)
    out = tmp_path / "out.jsonl"
    cfg = _cfg(str(raw), fs=c["fs"], fc=c["fc"], jsonl=str(out),
               detector={"model": "classical", "baseline": str(tmp_path / "b.json")}, receiver={"search_duty": 0.0})
    d = Daemon(cfg)
    with caplog.at_level(logging.WARNING, logger="ssbwatch"):
        _Run(d)
        _wait(lambda: d.exit_reason, "end of input")
    said = [r.getMessage() for r in caplog.records if "holds no configuration" in r.getMessage()]
    assert len(said) == 1 and "at 7.68 Msps" in said[0] and "15.36Msps" in said[0]
    ssbs = [l for l in _lines(out) if l["type"] == "ssb"]
    assert ssbs and all(r["mode"] == "uncalibrated" for r in ssbs)


def test_a_baseline_that_cannot_be_written_leaves_the_daemon_uncalibrated_and_says_so(tmp_path, jammed_capture):
    """The learned baseline's file cannot be written (its folder is a file): the
    daemon reports it (a JSONL baseline line with ok false and the error), keeps
    scoring uncalibrated, and every sample is still processed."""
    c = jammed_capture
    x = c["iq"][: c["jam_from"]]
    (tmp_path / "blocker").write_text("not a folder")
    d, out = _learning_daemon(tmp_path, c, x, 0.02, baseline=tmp_path / "blocker" / "b.json")
    _Run(d)
    _wait(lambda: d.exit_reason, "end of input")
    lines = _lines(out)
    (rep,) = [l for l in lines if l["type"] == "baseline"]
    assert rep["ok"] is False and rep["error"] and "configs" not in rep
    ssbs = [l for l in lines if l["type"] == "ssb"]
    assert ssbs and all(r["mode"] == "uncalibrated" for r in ssbs)
    assert d.snapshot()["samples_processed"] == len(x) and d.baseline is None


def test_the_daemon_reports_the_other_cells_on_the_channel(tmp_path, caplog):
    """A clean cell (7.68 Msps, 30 kHz, 8 SSBs per 20 ms) beside an unsynchronised
    neighbour 6 dB down, 30 CPs late: the daemon logs that cell once and names it in its
    stats lines (other_cells, offtime_cells, other_cells_seen: receiver.cells_seen kept
    across receiver resets), and scores only the serving cell."""
    import dataclasses
    import logging

    from signals.simulate import JammingConfig, NeighbourConfig, SimConfig, draw_params, simulate_capture

    cfg = SimConfig(sample_rates_hz=(7.68e6,), scs_khz=(30,), l_max=(8,), period_ms=(20.0,), duration_ms=60.0,
                    all_ssbs_fraction=1.0, snr_db=(25.0, 25.0), jamming=JammingConfig(clean_fraction=1.0),
                    neighbour=NeighbourConfig(probability=1.0, power_db=(-6.0, -6.0), offset_cp=(30.0, 30.0)))
    rng = np.random.default_rng(2)
    p = draw_params(cfg, rng, force_clean=True)
    cap = simulate_capture(dataclasses.replace(p, datatype="cf32_le"), rng)
    raw = tmp_path / "x.cf32"
    cap.iq.astype(np.complex64).tofile(raw)
    out = tmp_path / "out.jsonl"
    d = Daemon(_cfg(str(raw), fs=p.sample_rate_hz, fc=p.center_freq_hz, jsonl=str(out),
                    receiver={"search_duty": 0.0}))
    with caplog.at_level(logging.INFO, logger="ssbwatch"):
        _Run(d)
        _wait(lambda: d.exit_reason, "end of input")
    nb = p.neighbour["pci"]
    said = [r.getMessage() for r in caplog.records if "another cell on the channel" in r.getMessage()]
    assert said == [f"another cell on the channel: PCI {nb} (off the serving cell's timing) (serving PCI {p.pci})"]
    stats = [l for l in _lines(out) if l["type"] == "stats"]
    assert stats and stats[-1]["other_cells"] == [nb] and stats[-1]["offtime_cells"] == [nb]
    assert stats[-1]["other_cells_seen"] == 1
    ssbs = [l for l in _lines(out) if l["type"] == "ssb"]
    assert len(ssbs) >= 16 and all(r["pci"] == p.pci for r in ssbs)


def test_a_recordings_retuned_capture_segment_resets_the_receiver_at_its_frequency(tmp_path, caplog):
    """A SigMF recording in two capture segments, the second retuned 1.44 MHz up (its
    samples the same cell, so 1.44 MHz lower in baseband): `ssbwatch run` resets the
    receiver where the second segment starts and searches at its frequency -- every
    record names the cell's own SSB frequency and PCI, none jammed (before: the tracker
    went on at the first segment's offset, scoring where the SSB no longer was)."""
    import logging

    from signals import iq as iqio
    from signals.simulate import JammingConfig, SimConfig, draw_params, simulate_capture

    cfg = SimConfig(sample_rates_hz=(15.36e6,), scs_khz=(30,), l_max=(4,), period_ms=(10.0,), duration_ms=80.0,
                    all_ssbs_fraction=1.0, snr_db=(25.0, 25.0), centre_ssb_fraction=1.0,
                    jamming=JammingConfig(clean_fraction=1.0))
    rng = np.random.default_rng(5)
    p = draw_params(cfg, rng, force_clean=True)
    p = dataclasses.replace(p, datatype="cf32_le", multipath=None, traffic=None, neighbour=None)
    x = simulate_capture(p, rng).iq.astype(np.complex64)
    fs, fc, step = p.sample_rate_hz, p.center_freq_hz, 1.44e6
    half = len(x) // 2
    n = np.arange(len(x) - half)
    x[half:] *= np.exp(-2j * np.pi * step * n / fs).astype(np.complex64)  # the LO 1.44 MHz up
    base = tmp_path / "retuned"
    iqio.write_sigmf(base, x, fs, datatype="cf32_le", center_freq_hz=fc)
    meta = json.loads(Path(f"{base}.sigmf-meta").read_text())
    meta["captures"] = [{"core:sample_start": 0, "core:frequency": fc},
                        {"core:sample_start": half, "core:frequency": fc + step}]
    Path(f"{base}.sigmf-meta").write_text(json.dumps(meta))
    out = tmp_path / "out.jsonl"
    d = Daemon(_cfg(f"{base}.sigmf-meta", fs=fs, jsonl=str(out), fmt=None, receiver={"search_duty": 0.0}))
    with caplog.at_level(logging.WARNING, logger="ssbwatch"):
        _Run(d)
        _wait(lambda: d.exit_reason, "end of input")
    assert any("next capture segment" in r.getMessage() for r in caplog.records)
    ssbs = [l for l in _lines(out) if l["type"] == "ssb" and l["valid"]]
    late = [r for r in ssbs if r["sample"] >= half]
    assert len(ssbs) - len(late) >= 6 and len(late) >= 6
    assert all(r["pci"] == p.pci and not r["jammed"] for r in ssbs)
    assert all(abs(r["ssb_freq_hz"] - p.ssb_freq_hz) < 1e3 for r in ssbs)
    assert {round(r["ssb_offset_hz"]) for r in late} == {round(p.ssb_freq_hz - fc - step)}
