"""``ssbwatch bench``'s daemon measurement: the harness itself (no speed is asserted)."""
import numpy as np
import pytest

from detector.bench import bench_daemon, format_report, make_signal
from signals import iq as iqio


def test_bench_daemon_reads_everything_without_drops(tmp_path):
    fs = 7.68e6
    period, fc = make_signal(fs, 20e-3, ssbs=4)
    period *= np.float32(0.1 / np.sqrt(np.mean(np.abs(period) ** 2)))
    path = tmp_path / "d.ci16_le"
    reps = 25  # 0.5 s
    path.write_bytes(iqio.from_complex64(period, "ci16_le").tobytes() * reps)
    r = bench_daemon(path, fs, fc, "ci16_le")
    n = reps * len(period)
    assert r["exit_status"] == 0
    assert r["samples_in"] == n and r["samples_dropped"] == 0  # the reader waits for room, never drops
    assert r["ssbs"] >= 4 * (reps - 2)
    assert r["rtf_after_lock"] > 0 and r["rtf_total"] > 0
    assert not list(tmp_path.glob("*.jsonl"))  # its JSONL is removed


def test_report_lists_the_daemon_figures():
    t = {"rtf": 2.0, "ssbs": 10, "total_rtf": 1.0, "latency_us_mean": 100.0, "latency_us_p99": 200.0,
         "peak_rss_mb": 100.0}
    d = {"rtf_after_lock": 1.5, "rtf_total": 1.2, "acquisitions": 3, "ssbs": 10, "samples_dropped": 0,
         "peak_rss_mb": 150.0}
    r = {"sample_rate_hz": 30.72e6, "seconds": 2.0, "ssbs_per_period": 8, "period_ms": 20.0, "acquisition_rtf": 0.1,
         "tracking_ci16_le": t, "tracking_cf32_le": t, "naive_fullrate_pss_rtf": 0.5, "tracking_vs_naive": 4.0,
         "daemon_seconds": 4.5, "daemon_ci16_le": d, "daemon_cf32_le": d}
    text = format_report(r)
    assert "daemon" in text and "1.50 x real time after lock" in text
    assert "1 SSB every" not in text
    r["tracking_ci16_le_1ssb"] = dict(t, rtf=12.5)
    assert "tracking ci16_le with 1 SSB every 20 ms:    12.50 x real time" in format_report(r)


def test_tracking_reports_the_best_of_its_runs_and_lists_them_all():
    from detector.bench import best_of

    rtfs = iter([3.0, 5.0, 4.0])
    best = best_of(lambda: {"rtf": next(rtfs), "ssbs": 10}, 3)
    assert best == {"rtf": 5.0, "ssbs": 10, "rtf_runs": [3.0, 5.0, 4.0]}
    assert best_of(lambda: {"rtf": 2.0}, 0)["rtf_runs"] == [2.0]  # at least one run
    t = dict(best, total_rtf=1.0, latency_us_mean=100.0, latency_us_p99=200.0, peak_rss_mb=100.0)
    r = {"sample_rate_hz": 30.72e6, "seconds": 2.0, "ssbs_per_period": 8, "period_ms": 20.0, "acquisition_rtf": 0.1,
         "tracking_ci16_le": t, "tracking_cf32_le": t, "naive_fullrate_pss_rtf": 0.5, "tracking_vs_naive": 4.0,
         "repeat": 3}
    text = format_report(r)
    assert "the best of 3 runs" in text and "tracking ci16_le:     5.00 x real time [3.00, 5.00, 4.00]" in text


def test_the_shipped_models_verdict_is_timed_and_reported():
    from detector.bench import bench_model

    us = bench_model(200)
    assert us is not None and us > 0
    t = {"rtf": 2.0, "ssbs": 10, "total_rtf": 1.0, "latency_us_mean": 100.0, "latency_us_p99": 200.0,
         "peak_rss_mb": 100.0}
    r = {"sample_rate_hz": 30.72e6, "seconds": 2.0, "ssbs_per_period": 8, "period_ms": 20.0, "acquisition_rtf": 0.1,
         "tracking_ci16_le": t, "tracking_cf32_le": t, "naive_fullrate_pss_rtf": 0.5, "tracking_vs_naive": 4.0,
         "dtddnn_us_per_ssb": 61.4}
    assert "DT-DDNN verdict" in format_report(r) and "61 us per SSB" in format_report(r)
    r["dtddnn_us_per_ssb"] = None
    assert "not measured" in format_report(r)


def test_the_neighbour_site_is_calibrated_with_its_neighbour_and_reported():
    """The neighbour-site tracking figure runs with a baseline that holds the
    co-channel cell (so every SSB's features cancel it), and is reported."""
    from detector.bench import bench_neighbour_site

    r = bench_neighbour_site(7.68e6, 0.4, 4)
    assert len(r["neighbours"]) == 1 and r["ssbs"] >= 4 * 15
    assert r["rtf"] > 0 and r["latency_us_mean"] > 0
    t = {"rtf": 2.0, "ssbs": 10, "total_rtf": 1.0, "latency_us_mean": 100.0, "latency_us_p99": 200.0,
         "peak_rss_mb": 100.0}
    rep = {"sample_rate_hz": 30.72e6, "seconds": 2.0, "ssbs_per_period": 8, "period_ms": 20.0,
           "acquisition_rtf": 0.1, "tracking_ci16_le": t, "tracking_cf32_le": t, "naive_fullrate_pss_rtf": 0.5,
           "tracking_vs_naive": 4.0, "tracking_neighbour": r}
    assert f"co-channel neighbour {r['neighbour_db']:g} dB down" in format_report(rep)


def test_eval_split_counts_the_cells_the_searches_reported():
    """bench/eval_split.py's count of the other cells the searches reported against the
    truth's neighbours (a PCI not on the air, off-timing or not; spoofer captures apart)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "eval_split.py"
    spec = importlib.util.spec_from_file_location("eval_split", path)
    es = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(es)
    g = {"ssbwatch:pci": 5, "ssbwatch:neighbour": {"pci": 7}, "ssbwatch:more_neighbours": [{"pci": 9}],
         "ssbwatch:jammer": {"type": "cw"}}
    c = es._cells_reported(g, {5: False, 7: True, 11: True})
    assert (c["cells_captures"], c["cells_with_neighbour"], c["cells_neighbour_reported"]) == (1, 1, 1)
    assert (c["cells_not_on_air"], c["cells_not_on_air_offtime"]) == (1, 1)
    c = es._cells_reported({"ssbwatch:pci": 5, "ssbwatch:neighbour": None, "ssbwatch:jammer": None}, {12: False})
    assert (c["cells_with_neighbour"], c["cells_neighbour_reported"], c["cells_not_on_air"]) == (0, 0, 1)
    assert c["cells_not_on_air_offtime"] == 0
    c = es._cells_reported({"ssbwatch:pci": 5, "ssbwatch:jammer": {"type": "spoofer"}}, {12: False})
    assert (c["cells_captures"], c["cells_spoofer_captures"], c["cells_spoofer_reported"]) == (0, 1, 1)


def test_eval_split_scores_a_capture_resampled_to_an_odd_rate(tmp_path):
    """bench/eval_split.py --resample: configs/demo.yaml's first capture (46.08 Msps, its SSB
    13.5 MHz off the centre, a reactive jammer) and its clean companion at 40 Msps (fs / SCS not
    a whole FFT size): every SSB observed at its scaled truth position, calibrated and not, and
    all jammed in calibrated mode; a capture recorded slower than the rate asked for is skipped."""
    import importlib.util
    from pathlib import Path

    from detector.cli import main
    from detector.pipeline import load_detector

    path = Path(__file__).resolve().parents[1] / "bench" / "eval_split.py"
    spec = importlib.util.spec_from_file_location("eval_split", path)
    es = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(es)
    cfg = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    assert main(["simulate", "--config", str(cfg), "--out", str(tmp_path / "d"), "--seed", "1"]) == 0
    det = load_detector("default")
    c = es.score_capture(str(tmp_path / "d" / "cap00000.sigmf-meta"), det, 40e6)
    assert c["cal_jam"] >= 60 and c["cal_jam_called"] == c["cal_jam"] and c["cal_missed"] == 0
    assert c["uncal_jam"] == c["cal_jam"] and c["uncal_missed"] == 0
    x, fs, _, dt = es._read(str(tmp_path / "d" / "cap00000.sigmf-meta"), 40e6)
    assert fs == 40e6 and dt == "cf32_le" and abs(x.size - 40e-3 * 40e6) <= 2
    # cap00001 is recorded at 7.68 Msps: not upsampled
    assert es.score_capture(str(tmp_path / "d" / "cap00001.sigmf-meta"), det, 40e6) == {"skipped_slower": 1}
    # --cut-ms 1: the capture cut to 1 ms from CUT_LEAD_S before its first SSB, the SSBs wholly inside it scored
    import json

    meta = str(tmp_path / "d" / "cap00000.sigmf-meta")
    with open(meta) as fh:
        doc = json.load(fh)
    ssbs = [a for a in doc["annotations"] if a.get("core:label") == "SSB"]
    fs0 = doc["global"]["core:sample_rate"]
    s0 = max(0, min(a["core:sample_start"] for a in ssbs) - int(round(es.CUT_LEAD_S * fs0)))
    inside = sum(s0 <= a["core:sample_start"] and a["core:sample_start"] + a["core:sample_count"] <= s0 + 1e-3 * fs0
                 for a in ssbs)
    assert 1 <= inside < len(ssbs)
    c = es.score_capture(meta, det, cut_ms=1.0)
    for mode in ("cal", "uncal"):
        assert c[f"{mode}_jam"] + c[f"{mode}_invalid"] + c[f"{mode}_missed"] == inside
    assert c["cal_jam"] == c["cal_jam_called"] >= 1


def test_stage_timers_account_for_tracking_and_change_no_record(tmp_path):
    """``--stages``: the stage timers charge each moment of tracking to one stage (their
    sum is the tracking CPU after lock), every stage is met, they are removed after the
    run, and a replay with them installed gives the records it gives without them."""
    from detector import receiver
    from detector.bench import OTHER_STAGE, SEARCH_STAGE, STAGES, StageTimer, bench_tracking
    from detector.pipeline import ScoringPipeline

    fs = 7.68e6
    x, fc = make_signal(fs, 0.3, ssbs=4)
    base = tmp_path / "s"
    iqio.write_sigmf(base, x, fs, datatype="ci16_le", center_freq_hz=fc)
    observe = receiver.Receiver.__dict__["_observe"]
    r = bench_tracking(base.with_suffix(".sigmf-meta"), fs, stages=True)
    assert receiver.Receiver.__dict__["_observe"] is observe  # the wrappers are gone
    cpu = r["stages_cpu_s"]
    assert set(cpu) <= {label for label, _, _ in STAGES} | {OTHER_STAGE}
    for label, _, _ in STAGES:
        if label != SEARCH_STAGE:
            assert cpu.get(label, 0.0) > 0.0, label  # each stage ran after the lock
    after_lock = r["stages_stream_s"] / r["rtf"]  # the tracking CPU the real-time factor is taken over
    assert sum(cpu.values()) == pytest.approx(after_lock, rel=1e-9, abs=1e-9)  # the same clock, one interval
    assert r["stages_ssbs"] > 0 and r["stages_ssbs"] <= r["ssbs"]

    def records(timed: bool):
        timer = StageTimer().install() if timed else None
        try:
            pipe = ScoringPipeline(fs, fc, "cf32_le")
            out = []
            for i in range(0, x.size, 1 << 16):
                out += pipe.push(x[i : i + (1 << 16)])
            return out + pipe.flush()
        finally:
            if timer is not None:
                timer.remove()

    plain = records(False)
    assert len(plain) >= 4 * 10 and records(True) == plain


def test_report_lists_the_stages_when_asked():
    t = {"rtf": 2.0, "ssbs": 10, "total_rtf": 1.0, "latency_us_mean": 100.0, "latency_us_p99": 200.0,
         "peak_rss_mb": 100.0}
    r = {"sample_rate_hz": 30.72e6, "seconds": 2.0, "ssbs_per_period": 8, "period_ms": 20.0, "acquisition_rtf": 0.1,
         "tracking_ci16_le": t, "tracking_cf32_le": t, "naive_fullrate_pss_rtf": 0.5, "tracking_vs_naive": 4.0}
    assert "where tracking" not in format_report(r)
    from detector.bench import SEARCH_STAGE

    r["tracking_stages"] = dict(t, stages_ssbs=100, stages_stream_s=1.0,
                                stages_cpu_s={"features (channel fits, residuals, DWT)": 0.03,
                                              "PSS search (batched per CFO epoch)": 0.01, SEARCH_STAGE: 0.5})
    text = format_report(r)
    assert "where tracking ci16_le's CPU goes" in text and "400 us per SSB" in text and "25.00 x real time" in text
    assert "features (channel fits, residuals, DWT)" in text and " 300.0 us per SSB   75.0 %" in text
    assert "cell searches 500.0 ms, left out" in text


def test_events_bench_times_the_alert_from_the_jammer_and_the_clear_from_its_end():
    """bench/events.py's alert timing, on records as the pipeline writes them: one SSB every
    20 ms at 1 Msps, jammed from the 11th to the 30th (the jammer on over [200 ms, 600 ms)),
    one false jammed SSB early on: edge.yaml's 3-of-5 rule alerts on the third jammed SSB
    (40 ms after the jammer came on, 3 SSBs), none before it, and clears on the tenth clean SSB
    after the jammer went off; a jammer the rule never sees is not detected."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "events.py"
    spec = importlib.util.spec_from_file_location("events_bench", path)
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    fs, period = 1e6, 20000

    def recs(jammed):
        return [{"t": k * period / fs, "sample": k * period, "pci": 7, "valid": True, "jammed": j,
                 "score": 0.9 if j else 0.1} for k, j in enumerate(jammed)]

    on, off = 10 * period, 30 * period
    row = ev.alert_timing(recs([k == 3 or 10 <= k < 30 for k in range(60)]), on, off, fs)
    assert row["false_before"] == 0 and row["detected"]
    assert row["detect_ms"] == 40.0 and row["detect_ssbs"] == 3
    assert row["clear_ms"] == 9 * period / fs * 1e3
    row = ev.alert_timing(recs([k in (3, 4, 5) for k in range(60)]), on, off, fs)
    assert row == {"false_before": 1, "detected": False}
    assert ev._poisson_upper_95(0, 2.0) == pytest.approx(1.5, abs=0.01)
    assert ev._poisson_upper_95(1, 1.0) == pytest.approx(4.74, abs=0.01)
