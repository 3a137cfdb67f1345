"""Event-level figures (DESIGN.md §3): time to detect, time to clear, false alerts per hour.

    python bench/events.py [--sites 16] [--seed 1] [--sjnr 5,15,25] [--clean-s 2] [--workers 2]
                           [--mix configs/sim-train-field.yaml] [--model default|classical|PATH] [--json OUT]

What an operator of `ssbwatch run` sees: the per-SSB records of the pipeline fed to the alert
state machine with the rules of configs/edge.yaml's ``alerts`` (as shipped: JAMMING_STARTED when
3 of the last 5 valid SSBs of a PCI are jammed, JAMMING_CLEARED after 10 valid SSBs with none),
exactly as the daemon feeds it (detector.daemon.alert_update).

Sites of a simulation mix (``--mix``; by default the field mix, configs/sim-train-field.yaml: one
or two unsynchronised neighbours on 60 % of the sites, odd-k_SSB traffic, the gNB's and the
receiver's impairments, every datatype and sample rate 7.68-46.08 Msps; configs/sim-train-mobile.yaml
for a moving receiver: TDL fading with up to 600 Hz of Doppler, beam sweeps), the SSB period set
to 20 ms (the common default; the mixes' own 5-10 ms gives 2-4x the SSBs per hour). Each site is
calibrated as an operator would calibrate it: EVENTS_CAL_MS of clean recording at another receiver
gain, its noise floor moved by the mix's ``calibration_snr_drift_db`` (as bench/receiver_eval.py
field does); with ``--cal-parts K``, those EVENTS_CAL_MS as K recordings of the site, each its own
simulation (its own channel realisation and neighbours' traffic: recordings made apart), one
baseline learnt from them all as `ssbwatch calibrate REC1 ... RECK` learns it. Then, scored
calibrated and uncalibrated:

- a clean stream of ``--clean-s`` seconds (one simulation: one channel, the cell's timing running
  on): its JAMMING_STARTED events are false alerts; false alerts per hour of clean stream, with the
  Poisson 95 % upper bound where there are none, and the clean SSBs jammed (per-SSB FAR);
- per SJNR of ``--sjnr``, one stream of EVENTS_LEAD_MS clean, EVENTS_JAM_MS jammed (the library's
  nine jammer types in turn over the sites and SJNRs) and EVENTS_TAIL_MS clean (three simulations
  of the site, each a whole number of SSB periods long, as bench/receiver_eval.py onset joins
  them): the time to detect, from the jammer's first sample to the first JAMMING_STARTED at or
  after it (ms, and the SSBs of that PCI since the jammer came on, the alerting one included);
  alerts before the jammer (false); the time to clear, from the jammer's last sample to the
  JAMMING_CLEARED after it, or "not cleared" by the stream's end.

Reports figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver_eval import _observations, run_capture, site_baseline  # noqa: E402

from detector.alerts import JAMMING_CLEARED, JAMMING_STARTED, AlertConfig, AlertStateMachine  # noqa: E402
from detector.daemon import alert_update, load_edge_config  # noqa: E402
from detector.pipeline import load_detector  # noqa: E402
from signals.config import load_yaml  # noqa: E402
from signals.simulate import JAMMER_TYPES, SimConfig, draw_params, simulate_capture  # noqa: E402

FIELD_MIX = Path(__file__).resolve().parents[1] / "configs" / "sim-train-field.yaml"
EDGE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "edge.yaml"
EVENTS_PERIOD_MS = 20.0
EVENTS_CAL_MS = 400.0
EVENTS_LEAD_MS = 200.0  # clean, before the jammer
EVENTS_JAM_MS = 400.0
EVENTS_TAIL_MS = 400.0  # clean, after it: room for the clear (10 valid SSBs: 200 ms with one SSB per period)

@functools.lru_cache(maxsize=4)
def _detector(model: str):
    """The detector ``model`` names, loaded once per process."""
    return load_detector(model)


@functools.lru_cache(maxsize=1)
def _alert_config() -> AlertConfig:
    return load_edge_config(EDGE_CONFIG).alerts


def _alerts(recs: list[dict]) -> list:
    """The alert events of a stream's records, in order (a fresh state machine, edge.yaml's rules)."""
    sm = AlertStateMachine(_alert_config())
    return [ev for r in recs for ev in alert_update(sm, r)]


def _ms(samples: float, fs: float) -> float:
    return 1e3 * samples / fs


def run_site(args: tuple) -> dict:
    """One site's streams, both modes: a dict of counts and delay lists (picklable)."""
    s, seed, sjnrs_db, clean_s, model, mix, cal_parts = args
    det = _detector(model)
    cfg = load_yaml(mix, SimConfig)
    cfg = dataclasses.replace(cfg, period_ms=(EVENTS_PERIOD_MS,))
    rng = np.random.default_rng([seed, s])
    site = draw_params(cfg, rng, force_clean=True)
    fs = site.sample_rate_hz
    gain = cfg.int_backoff_db if site.datatype != "cf32_le" else cfg.cf32_gain_db
    cal = dataclasses.replace(site, level_db=float(rng.uniform(*gain)),
                              snr_db=site.snr_db + float(rng.uniform(*cfg.calibration_snr_drift_db)),
                              n_samples=int(round(EVENTS_CAL_MS / cal_parts * 1e-3 * fs)))
    # (one part: the seeds of the figures before --cal-parts)
    obs = [o for k in range(cal_parts)
           for o in _observations(simulate_capture(cal, np.random.default_rng([seed, s, 100 + k])))]
    out = {"site": s, "fs": fs, "pci": site.pci, "calibrated": len(obs) >= 5,
           "unsync": bool(site.neighbour and abs(site.neighbour["offset_samples"]) > site.numerology.cp_short)}
    if not out["calibrated"]:
        return out
    base = site_baseline(obs, site.scs_khz, fs, site.datatype, site.ssb_freq_hz, site.center_freq_hz, detector=det)
    modes = (("calibrated", base), ("uncalibrated", None))

    clean = simulate_capture(dataclasses.replace(site, n_samples=int(round(clean_s * fs))),
                             np.random.default_rng([seed, s, 200]))
    for mode, b in modes:
        recs, _ = run_capture(clean, baseline=b, detector=det)
        valid = [r for r in recs if r["valid"]]
        evs = _alerts(recs)
        out[f"{mode}/clean_s"] = clean.iq.size / fs
        out[f"{mode}/clean_ssbs"] = len(valid)
        out[f"{mode}/clean_jammed"] = sum(bool(r["jammed"]) for r in valid)
        out[f"{mode}/false_alerts"] = sum(ev.kind == JAMMING_STARTED for ev in evs)

    n0 = int(round(EVENTS_LEAD_MS * 1e-3 * fs))
    n1 = int(round(EVENTS_JAM_MS * 1e-3 * fs))
    n2 = int(round(EVENTS_TAIL_MS * 1e-3 * fs))
    for k, sj in enumerate(sjnrs_db):
        jt = JAMMER_TYPES[(s + k) % len(JAMMER_TYPES)]  # (each SJNR sees every type over nine sites)
        parts = [simulate_capture(dataclasses.replace(site, n_samples=n, jammer=j), np.random.default_rng([seed, s, 300, k, i]))
                 for i, (n, j) in enumerate(((n0, None), (n1, {"type": jt, "sjnr_db": float(sj)}), (n2, None)))]
        cap = dataclasses.replace(parts[0], iq=np.concatenate([p.iq for p in parts]))
        for mode, b in modes:
            recs, _ = run_capture(cap, baseline=b, detector=det)
            row = alert_timing(recs, n0, n0 + n1, fs)
            out[f"{mode}/{sj:g}/false_before"] = row.pop("false_before")
            out[f"{mode}/{sj:g}"] = {"type": jt, **row}
    return out


def alert_timing(recs: list[dict], on: int, off: int, fs: float) -> dict:
    """A jammer on over samples [on, off) of a stream whose records are ``recs``:
    alerts before it (false_before); whether a JAMMING_STARTED came while it was
    on (detected), how long after its start (detect_ms) and after how many valid
    SSBs of the alerting PCI from its start on, the alerting one included
    (detect_ssbs); how long after its end that PCI's JAMMING_CLEARED came
    (clear_ms; None: not by the stream's end)."""
    evs = _alerts(recs)
    started = [ev for ev in evs if ev.kind == JAMMING_STARTED]
    hit = next((ev for ev in started if ev.sample >= on), None)
    row = {"false_before": sum(ev.sample < on for ev in started), "detected": hit is not None and hit.sample < off}
    if row["detected"]:
        row["detect_ms"] = _ms(hit.sample - on, fs)
        row["detect_ssbs"] = sum(1 for r in recs if r["valid"] and r["pci"] == hit.pci and on <= r["sample"] <= hit.sample)
        clear = next((ev for ev in evs if ev.kind == JAMMING_CLEARED and ev.pci == hit.pci and ev.sample >= off), None)
        row["clear_ms"] = None if clear is None else _ms(clear.sample - off, fs)
    return row


def _poisson_upper_95(k: int, hours: float) -> float:
    """The one-sided 95 % upper bound of a Poisson rate from k events in ``hours``
    (k = 0: 3.0 / hours)."""
    from scipy.stats import chi2

    return float(chi2.ppf(0.95, 2 * (k + 1)) / 2 / hours)


def summarise(results: list[dict], sjnrs_db, clean_s: float, model: str, mix: str = str(FIELD_MIX),
              cal_parts: int = 1) -> dict:
    done = [r for r in results if r["calibrated"]]
    summary = {"sites": len(done), "sites_unsync": sum(r["unsync"] for r in done), "clean_s_per_site": clean_s,
               "sjnr_db": list(sjnrs_db), "model": model, "mix": Path(mix).name, "cal_parts": cal_parts, "modes": {}}
    for mode in ("calibrated", "uncalibrated"):
        hours = sum(r[f"{mode}/clean_s"] for r in done) / 3600.0
        fa = sum(r[f"{mode}/false_alerts"] for r in done)
        m = {
            "clean_hours": hours,
            "false_alerts": fa,
            "false_alerts_per_hour": fa / hours if hours else None,
            "false_alerts_per_hour_upper95": _poisson_upper_95(fa, hours) if hours else None,
            "clean_ssbs": sum(r[f"{mode}/clean_ssbs"] for r in done),
            "clean_ssbs_jammed": sum(r[f"{mode}/clean_jammed"] for r in done),
            "false_alerts_sites": [r["site"] for r in done if r[f"{mode}/false_alerts"]],
            "sjnr": {},
        }
        for sj in sjnrs_db:
            rows = [r[f"{mode}/{sj:g}"] for r in done]
            det = [x for x in rows if x["detected"]]
            d_ms = np.array([x["detect_ms"] for x in det]) if det else np.zeros(0)
            d_ssb = np.array([x["detect_ssbs"] for x in det]) if det else np.zeros(0)
            c_ms = [x["clear_ms"] for x in det if x["clear_ms"] is not None]
            q = lambda v, p: float(np.quantile(v, p)) if len(v) else None  # noqa: E731
            m["sjnr"][f"{sj:g}"] = {
                "streams": len(rows), "detected": len(det),
                "missed_types": sorted(x["type"] for x in rows if not x["detected"]),
                "false_before": sum(r[f"{mode}/{sj:g}/false_before"] for r in done),
                "detect_ms_median": q(d_ms, 0.5), "detect_ms_p90": q(d_ms, 0.9),
                "detect_ms_max": float(d_ms.max()) if d_ms.size else None,
                "detect_ssbs_median": q(d_ssb, 0.5), "detect_ssbs_p90": q(d_ssb, 0.9),
                "cleared": len(c_ms), "clear_ms_median": q(c_ms, 0.5), "clear_ms_max": max(c_ms) if c_ms else None,
            }
        summary["modes"][mode] = m
    return summary


def format_summary(sm: dict) -> str:
    ac = _alert_config()
    f = lambda v, fmt="{:.0f}": "-" if v is None else fmt.format(v)  # noqa: E731
    lines = [f"{sm['sites']} sites of {sm['mix']} ({sm['sites_unsync']} with an unsynchronised neighbour), SSB "
             f"period {EVENTS_PERIOD_MS:g} ms, calibrated on {EVENTS_CAL_MS:g} ms"
             f"{'' if sm.get('cal_parts', 1) == 1 else ' in %d recordings' % sm['cal_parts']}; alerts by configs/edge.yaml's "
             f"rules ({ac.method}: {ac.k} of {ac.n} jammed to start, at most {ac.clear_k} of {ac.clear_n} to clear); "
             f"model: {sm['model']}"]
    for mode, m in sm["modes"].items():
        lines.append(f"  {mode}: {m['false_alerts']} false alerts in {60 * m['clean_hours']:.1f} min of clean "
                     f"streams ({sm['clean_s_per_site']:g} s per site) = {m['false_alerts_per_hour']:.1f} per hour "
                     f"(95 % upper bound {m['false_alerts_per_hour_upper95']:.1f}), sites {m['false_alerts_sites']}; "
                     f"clean SSBs jammed {m['clean_ssbs_jammed']}/{m['clean_ssbs']}")
        for sj, t in m["sjnr"].items():
            lines.append(f"    SJNR {sj:>3s} dB: detected {t['detected']}/{t['streams']} (missed: "
                         f"{', '.join(t['missed_types']) or 'none'}); time to detect median {f(t['detect_ms_median'])} ms "
                         f"({f(t['detect_ssbs_median'])} SSBs), 90th percentile {f(t['detect_ms_p90'])} ms "
                         f"({f(t['detect_ssbs_p90'])} SSBs), max {f(t['detect_ms_max'])} ms; cleared "
                         f"{t['cleared']}/{t['detected']} after median {f(t['clear_ms_median'])} ms (max "
                         f"{f(t['clear_ms_max'])}); alerts before the jammer {t['false_before']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sjnr", default="5,15,25", help="SJNRs of the jammed streams (dB)")
    ap.add_argument("--clean-s", type=float, default=2.0, help="the clean stream per site (s)")
    ap.add_argument("--workers", type=int, default=1, help="processes (sites in parallel)")
    ap.add_argument("--model", default="default", help="'default' (the shipped DT-DDNN), 'classical' or a path")
    ap.add_argument("--mix", default=str(FIELD_MIX), help="the sites' simulation YAML (default: the field mix)")
    ap.add_argument("--cal-parts", type=int, default=1,
                    help="calibrate each site on this many recordings (each its own channel) over the same total time")
    ap.add_argument("--json", help="also write the summary and the per-site results here")
    a = ap.parse_args(argv)
    sjnrs = [float(v) for v in a.sjnr.split(",")]
    if a.cal_parts < 1:
        ap.error("--cal-parts must be 1 or more")
    jobs = [(s, a.seed, sjnrs, a.clean_s, a.model, a.mix, a.cal_parts) for s in range(a.sites)]
    if a.workers > 1:
        with ProcessPoolExecutor(a.workers) as ex:
            results = list(ex.map(run_site, jobs))
    else:
        results = [run_site(j) for j in jobs]
    sm = summarise(results, sjnrs, a.clean_s, a.model, a.mix, a.cal_parts)
    print(format_summary(sm))
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": sm, "sites": results}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
