"""The edge daemon fed a jammed 30.72 Msps cf32 stream over loopback TCP at real-time pace (issue 5).

    python bench/daemon_tcp.py [--seconds 60] [--jam-at 30] [--jammer barrage] [--sjnr-db 0]
                               [--ssbs 8] [--snr-db 20] [--seed 1] [--json PATH|-] [--keep DIR]

One cell (30 kHz SCS, SSB period 20 ms, ``--ssbs`` SSBs per burst, SNR ``--snr-db``) is
simulated twice with the same parameters and seed, once clean and once with ``--jammer`` at
``--sjnr-db`` (``signals.simulate``), as loops of ``--loop-periods`` SSB periods; the stream is
the clean loop repeated until ``--jam-at`` (rounded up to a whole loop) and the jammed loop after
it, so the SSB timing (and the CFO phase: the CFO is rounded to a multiple of 1 / period) runs
on without a break.  A loopback TCP server sends it paced by the wall clock, sample-accurate, in
1 ms blocks (block k leaves when its last sample is due), for ``--seconds``; the daemon is started
as a subprocess with exactly

    ssbwatch run --source tcp://127.0.0.1:PORT --format cf32_le --sample-rate 30.72e6 \\
                 --center-freq F --jsonl OUT

When the stream has been sent the connection stays open, the script waits until the daemon's
socket receive queue is empty (plus 0.5 s for its block queue), reads the daemon's VmHWM and CPU
time, sends SIGTERM and times the exit.  Reported: the exit status and time, the per-SSB
records (count, fraction with the right PCI, at a true SSB position, flagged jammed before /
after the jammer), the first JAMMING_STARTED after the jammer switched on and its delay in SSB
periods, false events before it, the sample accounting (samples in = processed + dropped, from
the last stats line; drops over time from the periodic ones), the sender's lag behind real time
(TCP back-pressure from a reader that does not keep up), the daemon's peak RSS (VmHWM before the
SIGTERM, and the largest VmRSS polled every 0.1 s until it exited) and its CPU time: the
sustained real-time factor is stream seconds / daemon CPU seconds (all threads) between the
first sample and the end of the stream, also per 10 s window; the daemon's own figure (seconds
processed / seconds in the pipeline, its stats line) is shown beside it.  The 1-minute load
average is printed at the start and at the end: other jobs on the machine take CPU from the daemon.

Reports figures; asserts nothing (tests/ holds the assertions).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from signals.simulate import JammingConfig, SimConfig, draw_params, simulate_capture

FS = 30.72e6
PERIOD_S = 20e-3
BLOCK = 30720  # 1 ms at 30.72 Msps
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# the signal
# ---------------------------------------------------------------------------
def make_loops(seed: int, ssbs: int, snr_db: float, jammer: str, sjnr_db: float, loop_periods: int):
    """(clean, jammed, truth): two complex64 loops of ``loop_periods`` SSB periods."""
    cfg = SimConfig(sample_rates_hz=(FS,), scs_khz=(30,), l_max=(8,), period_ms=(PERIOD_S * 1e3,),
                    duration_ms=loop_periods * PERIOD_S * 1e3, all_ssbs_fraction=1.0, snr_db=(snr_db, snr_db),
                    datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0), jamming=JammingConfig(clean_fraction=1.0))
    p = draw_params(cfg, np.random.default_rng(seed), force_clean=True)
    # no neighbour (its SSBs would be another PCI's records), no multipath; the CFO a multiple
    # of 1 / period so that its phase is continuous where the loop repeats
    p = dataclasses.replace(p, start_sample=0, ssbs_sent=tuple(range(ssbs)), multipath=None, neighbour=None,
                            cfo_hz=round(p.cfo_hz * PERIOD_S) / PERIOD_S)
    clean = simulate_capture(p, np.random.default_rng([seed, 1]))
    pj = dataclasses.replace(p, jammer={"type": jammer, "sjnr_db": float(sjnr_db)})
    jammed = simulate_capture(pj, np.random.default_rng([seed, 1]))
    truth = {
        "pci": p.pci, "center_freq_hz": p.center_freq_hz, "ssb_freq_hz": p.ssb_freq_hz, "cfo_hz": p.cfo_hz,
        "snr_db": p.snr_db, "traffic": p.traffic, "jammer": jammer, "sjnr_db": sjnr_db,
        "ssb_offsets": sorted(s.sample_start for s in clean.ssbs),
        "jammed_ssbs_in_loop": sum(s.jammed for s in jammed.ssbs), "ssbs_in_loop": len(jammed.ssbs),
        "tol": p.numerology.cp_short,
    }
    return clean.iq.astype(np.complex64), jammed.iq.astype(np.complex64), truth


# ---------------------------------------------------------------------------
# the paced loopback server
# ---------------------------------------------------------------------------
class PacedServer:
    """Sends clean loops, then jammed loops from ``jam_from``, paced by the wall clock."""

    def __init__(self, clean: np.ndarray, jammed: np.ndarray, n_samples: int, jam_from: int):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.bufs = (memoryview(clean.tobytes()), memoryview(jammed.tobytes()))
        self.loop = len(clean)
        self.n = n_samples
        self.jam_from = jam_from
        self.connected = threading.Event()
        self.done = threading.Event()
        self.release = threading.Event()
        self.t0 = self.t_end = None
        self.peer_port = None
        self.sent = 0
        self.max_lag_s = 0.0
        self.cpu_s = 0.0
        self.error = None
        self.th = threading.Thread(target=self._run, name="paced-server", daemon=True)

    def start(self):
        self.th.start()
        return self

    def _run(self):
        try:
            self.srv.settimeout(120)
            conn, peer = self.srv.accept()
            self.peer_port = peer[1]
            self.t0 = time.monotonic()
            self.connected.set()
            c0 = time.thread_time()
            bps = 8
            with conn:
                for k in range(self.n // BLOCK):
                    due = self.t0 + (k + 1) * BLOCK / FS
                    now = time.monotonic()
                    if now < due:
                        time.sleep(due - now)
                    start = k * BLOCK
                    buf = self.bufs[start >= self.jam_from]
                    off = (start % self.loop) * bps
                    conn.sendall(buf[off : off + BLOCK * bps])
                    self.sent = start + BLOCK
                    lag = time.monotonic() - due
                    if lag > self.max_lag_s:
                        self.max_lag_s = lag
                self.t_end = time.monotonic()
                self.cpu_s = time.thread_time() - c0
                self.done.set()
                self.release.wait(300)  # the connection stays open until the daemon has exited
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.connected.set()
            self.done.set()
            self.srv.close()


# ---------------------------------------------------------------------------
# /proc readers
# ---------------------------------------------------------------------------
def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return out


def proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def tcp_rx_queue(local_port: int, remote_port: int) -> int | None:
    """Bytes waiting in the receive queue of the loopback socket local_port -> remote_port."""
    try:
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                f = line.split()
                lp = int(f[1].split(":")[1], 16)
                rp = int(f[2].split(":")[1], 16)
                if lp == local_port and rp == remote_port:
                    return int(f[4].split(":")[1], 16)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return None


class Monitor:
    """Polls the daemon's VmRSS / VmHWM and CPU time every ``interval_s`` until it exits."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float | None]] = []  # (monotonic, VmRSS MB, cpu s)
        self.max_rss = 0.0
        self.max_hwm = 0.0
        self._stop = threading.Event()
        self.th = threading.Thread(target=self._run, name="monitor", daemon=True)

    def start(self):
        self.th.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            st = proc_status(self.pid)
            if not st:
                break
            cpu = proc_cpu_s(self.pid)
            self.max_rss = max(self.max_rss, st.get("VmRSS", 0.0))
            self.max_hwm = max(self.max_hwm, st.get("VmHWM", 0.0))
            self.samples.append((time.monotonic(), st.get("VmRSS", 0.0), cpu))
            self._stop.wait(self.interval_s)

    def stop(self):
        self._stop.set()
        self.th.join(5)

    def cpu_at(self, t: float) -> float | None:
        """CPU time at the last sample taken at or before ``t``."""
        best = None
        for ts, _, cpu in self.samples:
            if ts <= t and cpu is not None:
                best = (ts, cpu)
        return None if best is None else best[1]


# ---------------------------------------------------------------------------
# analysis of the JSONL
# ---------------------------------------------------------------------------
def analyse(lines: list[dict], truth: dict, loop: int, jam_from: int, n_sent: int) -> dict:
    ssbs = [l for l in lines if l.get("type") == "ssb"]
    events = [l for l in lines if l.get("type") == "event"]
    stats = [l for l in lines if l.get("type") == "stats"]
    offs = np.array(truth["ssb_offsets"], dtype=np.int64)
    tol = truth["tol"]

    def at_truth(sample: int) -> bool:
        r = sample % loop
        d = np.abs(offs - r)
        return bool(np.min(np.minimum(d, loop - d)) <= tol)

    right = sum(r.get("pci") == truth["pci"] for r in ssbs)
    positioned = sum(at_truth(int(r["sample"])) for r in ssbs)
    margin = 2000
    before = [r for r in ssbs if r["sample"] + margin < jam_from]
    after = [r for r in ssbs if r["sample"] > jam_from]
    per_period = len(truth["ssb_offsets"]) * (PERIOD_S * FS) / loop
    first_t = ssbs[0]["t"] if ssbs else None
    expected = int(round((n_sent / FS - first_t) / PERIOD_S * per_period)) if ssbs else 0
    t_jam = jam_from / FS
    started = [e for e in events if e.get("kind") == "JAMMING_STARTED"]
    first_after = next((e for e in started if e["t_s"] >= t_jam - 1e-9), None)
    out = {
        "ssb_records": len(ssbs),
        "ssb_records_expected_after_first": expected,
        "first_record_t_s": first_t,
        "right_pci": right,
        "right_pci_fraction": right / len(ssbs) if ssbs else None,
        "at_true_ssb_position": positioned,
        "pcis_seen": sorted({r.get("pci") for r in ssbs}, key=lambda v: (v is None, v)),
        "records_before_jammer": len(before),
        "flagged_jammed_before_jammer": sum(r.get("jammed") is True for r in before),
        "records_after_jammer": len(after),
        "flagged_jammed_after_jammer": sum(r.get("jammed") is True for r in after),
        "unlocked_after_jammer": sum(r.get("locked") is False for r in after),
        "events": [{k: e.get(k) for k in ("kind", "pci", "t_s", "detection_delay_ssb", "detection_delay_s",
                                           "character", "sjnr_db_est")} for e in events],
        "jamming_started_before_jammer": sum(e["t_s"] < t_jam for e in started),
        "jam_on_t_s": t_jam,
    }
    if first_after is not None:
        out["first_jamming_started"] = {
            "t_s": first_after["t_s"], "pci": first_after.get("pci"),
            "delay_s": first_after["t_s"] - t_jam,
            "delay_ssb_periods": (first_after["t_s"] - t_jam) / PERIOD_S,
            "detection_delay_ssb": first_after.get("detection_delay_ssb"),
            "character": first_after.get("character"),
        }
    # where the drops happened: each record carries the total dropped so far
    by_s: dict[int, int] = {}
    prev = 0
    for r in ssbs:
        d = r.get("samples_dropped") or 0
        if d > prev:
            k = int(r["t"])
            by_s[k] = by_s.get(k, 0) + d - prev
            prev = d
    out["dropped_ms_by_stream_second"] = {k: round(v / FS * 1e3, 1) for k, v in sorted(by_s.items())}
    if stats:
        last = stats[-1]
        out["final_stats"] = {k: last.get(k) for k in (
            "samples_in", "samples_processed", "samples_dropped", "samples_unsearched", "queue_fill_samples",
            "queue_max_fill_samples",
            "source_reconnects", "dropped_bytes", "ssbs_scored", "ssbs_jammed", "processing_errors",
            "real_time_factor", "events")}
        out["drops_over_time"] = [(s.get("wall_time"), s.get("samples_in"), s.get("samples_dropped"))
                                  for s in stats]
    return out


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------
def daemon_command(port: int, fc: float, out: Path, extra: list[str] = ()) -> list[str]:
    exe = shutil.which("ssbwatch")
    head = [exe] if exe else [sys.executable, "-m", "detector.cli"]
    return head + ["run", "--source", f"tcp://127.0.0.1:{port}", "--format", "cf32_le", "--sample-rate", "30.72e6",
                   "--center-freq", f"{fc:.0f}", "--jsonl", str(out), *extra]


def run(a: argparse.Namespace) -> dict:
    load0 = os.getloadavg()
    t_sim = time.perf_counter()
    clean, jammed, truth = make_loops(a.seed, a.ssbs, a.snr_db, a.jammer, a.sjnr_db, a.loop_periods)
    t_sim = time.perf_counter() - t_sim
    loop = len(clean)
    n = int(math.ceil(a.seconds * FS / BLOCK)) * BLOCK
    jam_from = int(math.ceil(a.jam_at * FS / loop)) * loop
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="ssbwatch-daemon-tcp-"))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "out.jsonl"
    if out.exists():
        out.unlink()
    srv = PacedServer(clean, jammed, n, jam_from).start()
    del clean, jammed
    cmd = daemon_command(srv.port, truth["center_freq_hz"], out, a.daemon_arg or [])
    log = open(work / "daemon.log", "wb")
    t_launch = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    mon = Monitor(proc.pid).start()
    res: dict = {"command": " ".join(cmd), "work_dir": str(work), "simulation_s": t_sim, "load_avg_start": load0,
                 "stream_s": n / FS, "jam_from_s": jam_from / FS, "loop_s": loop / FS, "truth": truth,
                 "ssbs_per_period": a.ssbs,
                 "blas_threads_env": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                 "MKL_NUM_THREADS") if k in os.environ}}
    try:
        srv.connected.wait(120)
        if srv.error or srv.t0 is None:
            raise RuntimeError(f"the daemon did not connect: {srv.error}")
        res["startup_to_connect_s"] = srv.t0 - t_launch
        cpu_t0 = proc_cpu_s(proc.pid)
        res["daemon_cpu_at_connect_s"] = cpu_t0
        res["rss_at_connect_mb"] = proc_status(proc.pid).get("VmRSS")
        while not srv.done.wait(1.0):
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited early with {proc.returncode}")
        if srv.error:
            raise RuntimeError(f"server: {srv.error}")
        t_end = srv.t_end
        cpu_end_stream = proc_cpu_s(proc.pid)
        # let the daemon take what is still in its socket buffer and queue
        t_wait = time.monotonic()
        while time.monotonic() - t_wait < 10:
            q = tcp_rx_queue(srv.peer_port, srv.port)
            if q == 0 or q is None:
                break
            time.sleep(0.05)
        res["socket_backlog_at_end_bytes"] = tcp_rx_queue(srv.peer_port, srv.port)
        time.sleep(0.5)
        res["catch_up_wait_s"] = time.monotonic() - t_wait
        st = proc_status(proc.pid)
        cpu_term = proc_cpu_s(proc.pid)
        res["vmhwm_before_sigterm_mb"] = st.get("VmHWM")
        res["vmrss_before_sigterm_mb"] = st.get("VmRSS")
        ru_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(a.exit_guard)
        except subprocess.TimeoutExpired:
            rc = None
        res["exit_s"] = time.monotonic() - t_term
        res["exit_status"] = rc
        if rc is None:
            proc.kill()
            proc.wait(10)
        ru_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        mon.stop()
        res["vmrss_max_polled_mb"] = mon.max_rss
        res["vmhwm_max_polled_mb"] = mon.max_hwm
        res["daemon_cpu_total_s"] = (ru_after.ru_utime + ru_after.ru_stime) - (ru_before.ru_utime + ru_before.ru_stime)
        res["daemon_cpu_startup_s"] = cpu_t0
        stream_s = (srv.sent) / FS
        res["daemon_cpu_stream_s"] = (cpu_end_stream - cpu_t0) if None not in (cpu_end_stream, cpu_t0) else None
        res["daemon_cpu_shutdown_s"] = res["daemon_cpu_total_s"] - (cpu_term or 0.0)
        if res["daemon_cpu_stream_s"]:
            res["sustained_rtf"] = stream_s / res["daemon_cpu_stream_s"]
            res["cpu_cores_used"] = res["daemon_cpu_stream_s"] / (t_end - srv.t0)
        # per 10 s window of stream time
        wins = []
        w = 10.0
        k = 0
        while srv.t0 + (k + 1) * w <= t_end + 1e-6:
            c0, c1 = mon.cpu_at(srv.t0 + k * w), mon.cpu_at(srv.t0 + (k + 1) * w)
            if c0 is not None and c1 is not None and c1 > c0:
                wins.append(round(w / (c1 - c0), 3))
            k += 1
        res["rtf_per_10s_window"] = wins
        rss_series = [(round(ts - srv.t0, 1), round(r, 1)) for ts, r, _ in mon.samples[:: max(1, len(mon.samples) // 40)]]
        res["rss_series_mb"] = rss_series
        res["sender_wall_s"] = t_end - srv.t0
        res["sender_max_lag_s"] = srv.max_lag_s
        res["sender_cpu_s"] = srv.cpu_s
        res["samples_sent"] = srv.sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        mon.stop()
        srv.release.set()
        srv.th.join(10)
        log.close()
    res["load_avg_end"] = os.getloadavg()
    lines = []
    for line in out.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            res.setdefault("bad_jsonl_lines", 0)
            res["bad_jsonl_lines"] += 1
    res.update(analyse(lines, truth, loop, jam_from, srv.sent))
    res["daemon_log_tail"] = (work / "daemon.log").read_text(errors="replace").splitlines()[-8:]
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


def _f(v, fmt="{:.2f}"):
    return "n/a" if v is None else fmt.format(v)


def report(r: dict) -> str:
    t = r["truth"]
    fs = r.get("final_stats") or {}
    ev = r.get("first_jamming_started")
    la0, la1 = r["load_avg_start"], r["load_avg_end"]
    lines = [
        f"ssbwatch run over loopback TCP, 30.72 Msps cf32, real-time pace, {r['stream_s']:.1f} s "
        f"(clean, jammer '{t['jammer']}' at SJNR {t['sjnr_db']:g} dB from {r['jam_from_s']:.2f} s); "
        f"PCI {t['pci']}, SNR {t['snr_db']:.0f} dB, {r['ssbs_per_period']} SSBs / 20 ms",
        f"  command: {r['command']}",
        f"  load average (1/5/15 min): start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, "
        f"end {la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f} on {os.cpu_count()} CPUs; BLAS thread settings in the "
        f"daemon's environment: {r['blas_threads_env'] or 'none (library defaults)'}",
        f"  exit: status {r.get('exit_status')} {_f(r.get('exit_s'))} s after SIGTERM "
        f"(daemon CPU during shutdown {_f(r.get('daemon_cpu_shutdown_s'))} s)",
        f"  samples: sent {r.get('samples_sent')}, in {fs.get('samples_in')} = processed "
        f"{fs.get('samples_processed')} + dropped {fs.get('samples_dropped')} (of the processed, skipped while "
        f"searching for the cell: {fs.get('samples_unsearched')}); reconnects "
        f"{fs.get('source_reconnects')}; queue max fill {fs.get('queue_max_fill_samples')}; processing errors "
        f"{fs.get('processing_errors')}",
        f"  dropped ms of IQ per stream second (from the records' running total): "
        f"{r.get('dropped_ms_by_stream_second')}",
        f"  sender: {_f(r.get('sender_wall_s'))} s wall for {r['stream_s']:.2f} s of samples, "
        f"max lag behind real time {_f(r.get('sender_max_lag_s'), '{:.4f}')} s, sender CPU "
        f"{_f(r.get('sender_cpu_s'))} s; socket backlog at end {r.get('socket_backlog_at_end_bytes')} B",
        f"  records: {r['ssb_records']} (expected ~{r['ssb_records_expected_after_first']} from the first at "
        f"{_f(r['first_record_t_s'], '{:.3f}')} s), right PCI {r['right_pci']} = "
        f"{_f(100 * r['right_pci_fraction'] if r['right_pci_fraction'] is not None else None)} %, "
        f"at a true SSB position {r['at_true_ssb_position']}, PCIs seen {r['pcis_seen']}",
        f"  verdicts: jammed {r['flagged_jammed_before_jammer']}/{r['records_before_jammer']} before the jammer, "
        f"{r['flagged_jammed_after_jammer']}/{r['records_after_jammer']} after "
        f"(unlocked after: {r['unlocked_after_jammer']}); JAMMING_STARTED before the jammer: "
        f"{r['jamming_started_before_jammer']}",
    ]
    if ev:
        lines.append(f"  first JAMMING_STARTED after the jammer: t={ev['t_s']:.4f} s, pci {ev['pci']}, "
                     f"{ev['delay_s'] * 1e3:.1f} ms = {ev['delay_ssb_periods']:.2f} SSB periods after it switched on "
                     f"(detection_delay_ssb {ev['detection_delay_ssb']}), character {ev['character']}")
    else:
        lines.append("  no JAMMING_STARTED after the jammer switched on")
    lines += [
        f"  peak RSS: VmHWM {_f(r.get('vmhwm_before_sigterm_mb'), '{:.1f}')} MB before SIGTERM, max polled VmRSS "
        f"{_f(r.get('vmrss_max_polled_mb'), '{:.1f}')} MB (until exit), max VmHWM {_f(r.get('vmhwm_max_polled_mb'), '{:.1f}')} MB; "
        f"at connect {_f(r.get('rss_at_connect_mb'), '{:.1f}')} MB",
        f"  CPU: startup {_f(r.get('daemon_cpu_startup_s'))} s ({_f(r.get('startup_to_connect_s'))} s wall to connect), "
        f"during the stream {_f(r.get('daemon_cpu_stream_s'))} s = {_f(r.get('cpu_cores_used'))} cores, "
        f"total {_f(r.get('daemon_cpu_total_s'))} s",
        f"  sustained real-time factor (stream s / daemon CPU s, all threads): {_f(r.get('sustained_rtf'))} x; "
        f"per 10 s window {r.get('rtf_per_10s_window')}; the daemon's own (processed s / s in the pipeline): "
        f"{_f(fs.get('real_time_factor'))} x",
        f"  events: {[(e['kind'], round(e['t_s'], 3)) for e in r['events']]}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="stream length (default 60)")
    ap.add_argument("--jam-at", type=float, default=None, help="jammer on from (s; default half the stream)")
    ap.add_argument("--jammer", default="barrage", help="signals.simulate jammer type (default barrage)")
    ap.add_argument("--sjnr-db", type=float, default=0.0, help="SJNR of the jammer (default 0 dB)")
    ap.add_argument("--snr-db", type=float, default=20.0)
    ap.add_argument("--ssbs", type=int, default=8, help="SSBs per 20 ms burst (1-8, default 8)")
    ap.add_argument("--loop-periods", type=int, default=5, help="SSB periods in the simulated loop (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exit-guard", type=float, default=60.0, help="kill the daemon if it has not exited by then")
    ap.add_argument("--daemon-arg", action="append", metavar="ARG",
                    help="append ARG to the daemon's command line (diagnostics only, e.g. --daemon-arg=--config "
                         "--daemon-arg=edge.yaml; the acceptance figure is without)")
    ap.add_argument("--keep", help="keep the JSONL and the daemon's log in this directory")
    ap.add_argument("--json", help="also write the figures as JSON here ('-': stdout)")
    a = ap.parse_args(argv)
    if a.jam_at is None:
        a.jam_at = a.seconds / 2
    r = run(a)
    print(report(r))
    if a.json:
        s = json.dumps(r, indent=1, default=str)
        if a.json == "-":
            print(s)
        else:
            Path(a.json).write_text(s + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
