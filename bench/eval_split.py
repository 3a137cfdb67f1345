"""The evaluation split scored as `ssbwatch replay` scores it: the model with the rules beside it.

`ssbwatch evaluate` reports the models alone on the dataset's features; this replays every
capture of one or more `ssbwatch simulate` outputs through the ScoringPipeline (the shipped
model unless --model), calibrated on the capture's clean companions (`capNNNNN-cal*`, as
`ssbwatch calibrate` does) and uncalibrated, and matches the records to the truth
annotations (an SSB's record: the nearest within 20 samples of its start; invalid records
left out). Per mode: FAR, Pd, Pd at SJNR 15-30 dB (the paper's form), and how many jammed
verdicts each rule beside the model gave; and the other cells the cell searches reported
(the truth's neighbours, or a PCI not on the air).

    python bench/eval_split.py data/eval0 data/eval1 [--model default|classical|PATH] [--json OUT]
                               [--by-condition] [--workers N] [--resample HZ] [--cut-ms MS]

--by-condition also gives FAR and Pd per condition of the captures' truth (an unsynchronised
neighbour with or without traffic, odd k_SSB traffic, each impairment; a capture counts in each
of its conditions, "none" when it has none of them): where a mix such as
configs/sim-train-field.yaml meets conditions the model never saw.

--resample HZ scores the captures recorded at HZ or faster resampled to HZ (their clean
companions too, calibrated at that rate): a receiver at a sample rate the simulator never
drew, such as 19.5 Msps.

--cut-ms MS scores each capture cut to MS milliseconds from CUT_LEAD_S before its first SSB (the
SSBs wholly inside the cut are scored; the clean companions are calibrated on whole): recordings as
short as the real captures, 1 ms holding one SSB, where the cell search, the DC and IQ-image
estimates and the stream context have that alone.

Reports figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import sys
import tempfile
from collections import Counter
from fractions import Fraction
from typing import Optional

import numpy as np
from scipy.signal import resample_poly

from detector.pipeline import ScoringPipeline, load_detector
from detector.replay import calibrate
from signals import iq as iqio
from signals import nr
from training.evaluate import JNR_EDGES_DB, jnr_band  # Pd at SJNR 15-30 dB per JNR band, as the report

# the record keys of the rules beside the model that turn a verdict jammed (README, "Scoring recordings")
RULE_KEYS = ("band_excess_db", "pbch_symbol_excess_db", "null_rise_db", "interference_step_db", "unknown_cell",
             "pss_sss_jump", "pss_shape_jump", "nb_pss_jump_db")
MATCH_SAMPLES = 20
CUT_LEAD_S = 0.3e-3  # --cut-ms: the cut starts this long before the capture's first SSB


def _read(meta: str, rate_hz: Optional[float]) -> tuple[np.ndarray, float, Optional[float], str]:
    """A recording's samples (complex64), sample rate, centre frequency and datatype; with
    ``rate_hz``, resampled to it (polyphase, scipy's Kaiser window) and stored as cf32."""
    with iqio.open_iq(meta, allow_partial=True) as r:
        m = r.meta
        x = r.read(0, m.n_samples)
    if rate_hz is None:
        return x, m.sample_rate_hz, m.center_freq_hz, m.datatype
    fr = Fraction(rate_hz / m.sample_rate_hz).limit_denominator(100000)
    return (resample_poly(x, fr.numerator, fr.denominator).astype(np.complex64), rate_hz, m.center_freq_hz,
            "cf32_le")


def score_capture(meta: str, det, rate_hz: Optional[float] = None, cut_ms: Optional[float] = None) -> dict:
    """Counts of one capture in both modes (calibrated only when its companions give a baseline);
    with ``rate_hz``, the capture and its companions resampled to that rate first (a capture
    recorded slower is skipped: upsampled, its band would hold no noise beyond the old one);
    with ``cut_ms``, the capture alone cut to that long from CUT_LEAD_S before its first SSB
    (its SSBs wholly inside scored)."""
    out: Counter = Counter()
    with open(meta) as fh:
        doc = json.load(fh)
    fs0 = float(doc["global"]["core:sample_rate"])
    if rate_hz is not None and fs0 < rate_hz - 1.0:
        return Counter(skipped_slower=1)
    cals = sorted(glob.glob(meta.replace(".sigmf-meta", "-cal*.sigmf-meta")))
    base = None
    if cals:
        with contextlib.redirect_stderr(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
            if rate_hz is not None:  # the companions at the new rate, as a receiver at that rate records them
                paths = []
                for i, c in enumerate(cals):
                    y, fs, fc, _ = _read(c, rate_hz)
                    iqio.write_sigmf(f"{tmp}/cal{i}", y, fs, datatype="cf32_le", center_freq_hz=fc)
                    paths.append(f"{tmp}/cal{i}.sigmf-meta")
                cals = paths
            # with the model the site is scored with, as `ssbwatch calibrate` does: its scores of
            # the site's clean SSBs raise the site's thresholds, or hand the site to the classical
            # detector where they reach past the raise (pipeline.site_clean_scores)
            base = calibrate(cals, detector=det if hasattr(det, "weights_sha256") else None)
        if not base.configs:
            base = None
    scale = 1.0 if rate_hz is None else rate_hz / fs0
    truth = [dict(a, **{"core:sample_start": int(round(a["core:sample_start"] * scale))})
             for a in doc["annotations"] if a.get("core:label") == "SSB"]
    x, fs, fc, datatype = _read(meta, rate_hz)
    if cut_ms is not None and truth:
        s0 = max(0, min(a["core:sample_start"] for a in truth) - int(round(CUT_LEAD_S * fs)))
        n = int(round(cut_ms * 1e-3 * fs))
        x = x[s0 : s0 + n]
        truth = [dict(a, **{"core:sample_start": a["core:sample_start"] - s0}) for a in truth
                 if s0 <= a["core:sample_start"] and a["core:sample_start"] + a["core:sample_count"] * scale <= s0 + n]
    for mode, b in (("cal", base), ("uncal", None)):
        if mode == "cal" and b is None:
            continue
        pipe = ScoringPipeline(fs, fc, datatype, baseline=b, detector=det)
        recs = [r for r in pipe.push(x) + pipe.flush() if r.get("pci") is not None]
        if mode == "uncal":
            out.update(_cells_reported(doc["global"], pipe.receiver.cells_seen))
        starts = np.array([r["sample"] for r in recs], np.int64)
        for a in truth:
            if starts.size == 0:
                out[f"{mode}_missed"] += 1
                continue
            j = int(np.argmin(np.abs(starts - a["core:sample_start"])))
            r = recs[j]
            if abs(int(starts[j]) - a["core:sample_start"]) > MATCH_SAMPLES:
                out[f"{mode}_missed"] += 1
                continue
            if not r["valid"]:
                out[f"{mode}_invalid"] += 1
                continue
            jammed = a.get("ssbwatch:jammer") is not None and a.get("ssbwatch:jnr_db") is not None
            kind = "jam" if jammed else "clean"
            out[f"{mode}_{kind}"] += 1
            out[f"{mode}_{kind}_called"] += bool(r["jammed"])
            sjnr = a.get("ssbwatch:sjnr_db")
            if jammed and sjnr is not None and 15.0 <= sjnr < 30.0:
                out[f"{mode}_jam1530"] += 1
                out[f"{mode}_jam1530_called"] += bool(r["jammed"])
                # where the misses are: by the jammer's power over the noise, and by type
                band = jnr_band(float(a["ssbwatch:jnr_db"]))
                out[f"{mode}_jam1530_jnr{band}"] += 1
                out[f"{mode}_jam1530_jnr{band}_called"] += bool(r["jammed"])
                out[f"{mode}_jam1530_type_{a['ssbwatch:jammer']}"] += 1
                out[f"{mode}_jam1530_type_{a['ssbwatch:jammer']}_called"] += bool(r["jammed"])
            for k in RULE_KEYS:
                if r["jammed"] and k in r:
                    out[f"{mode}_{kind}_rule_{k}"] += 1
    return out


def _cells_reported(g: dict, seen: dict[int, bool]) -> Counter:
    """Captures counted by the other cells the searches reported (``Receiver.cells_seen``)
    against the truth's neighbours: one of them reported, a PCI not on the air reported
    (off the serving cell's timing or not). A spoofer's fake SSBs carry a PCI the truth does
    not name: such captures are counted apart."""
    on_air = {int(nb["pci"]) for nb in ([g["ssbwatch:neighbour"]] if g.get("ssbwatch:neighbour") else [])
              + list(g.get("ssbwatch:more_neighbours") or []) if nb.get("pci") is not None}
    out: Counter = Counter()
    others = {p: off for p, off in seen.items() if p != g.get("ssbwatch:pci")}
    if (g.get("ssbwatch:jammer") or {}).get("type") == "spoofer":
        out["cells_spoofer_captures"] += 1
        out["cells_spoofer_reported"] += bool(others)
        return out
    out["cells_captures"] += 1
    out["cells_with_neighbour"] += bool(on_air)
    out["cells_neighbour_reported"] += any(p in on_air for p in others)
    out["cells_not_on_air"] += any(p not in on_air for p in others)
    out["cells_not_on_air_offtime"] += any(p not in on_air and off for p, off in others.items())
    return out


def conditions(meta: str) -> list[str]:
    """The truth's conditions of a capture (see --by-condition)."""
    with open(meta) as fh:
        g = json.load(fh)["global"]
    out = set()
    cp = nr.Numerology.create(int(g["ssbwatch:scs_khz"]), float(g["core:sample_rate"])).cp_short
    for nb in ([g["ssbwatch:neighbour"]] if g.get("ssbwatch:neighbour") else []) + list(
            g.get("ssbwatch:more_neighbours") or []):
        # inside the CP (offset_cp |x| < 0.5 in the simulator) the neighbour's symbols line up with the cell's
        sync = abs(float(nb.get("offset_samples", 0.0))) <= 0.5 * cp
        out.add(("neighbour_sync" if sync else "neighbour_unsync") + ("_traffic" if nb.get("traffic") else ""))
    if (g.get("ssbwatch:traffic") or {}).get("k_ssb") is not None:
        out.add("kssb_odd")
    imp = g.get("ssbwatch:impairments") or {}
    out.update(k for k in ("tx_floor_db", "dc_offset_db", "analog_filter") if imp.get(k) is not None)
    return sorted(out) or ["none"]


def _score(job):
    meta, model, rate_hz, cut_ms = job
    return meta, score_capture(meta, _detector(model), rate_hz, cut_ms)


_DETS: dict = {}


def _detector(model: str):
    if model not in _DETS:
        _DETS[model] = load_detector(model)
    return _DETS[model]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="ssbwatch simulate output directories")
    ap.add_argument("--model", default="default", help="'default' (the shipped DT-DDNN), 'classical' or a model path")
    ap.add_argument("--json", help="also write the counts as JSON here")
    ap.add_argument("--by-condition", action="store_true", help="FAR and Pd per condition of the captures")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--resample", type=float, metavar="HZ",
                    help="score every capture (and its clean companions) resampled to this sample rate, as a "
                         "receiver at that rate would record them -- an odd one such as 19.5e6; captures recorded "
                         "slower are skipped")
    ap.add_argument("--cut-ms", type=float, metavar="MS",
                    help="score each capture cut to MS ms from 0.3 ms before its first SSB (its companions whole): "
                         "recordings as short as the real captures (1: one SSB)")
    a = ap.parse_args(argv)
    if a.cut_ms is not None and not a.cut_ms > 0:
        ap.error(f"--cut-ms must be positive, got {a.cut_ms}")
    det = _detector(a.model)
    tot: Counter = Counter()
    by_cond: dict[str, Counter] = {}
    metas = [p for d in a.dirs for p in sorted(glob.glob(f"{d}/cap?????.sigmf-meta"))]
    if not metas:
        print(f"no captures (capNNNNN.sigmf-meta) in {a.dirs}", file=sys.stderr)
        return 1
    jobs = [(m, a.model, a.resample, a.cut_ms) for m in metas]
    if a.workers > 1:
        import multiprocessing as mp

        from detector.threads import one_blas_thread_children

        with one_blas_thread_children():  # the receiver's workers: one BLAS thread each, as replay runs
            pool = mp.get_context("spawn").Pool(a.workers)
        results = pool.imap(_score, jobs, chunksize=2)
    else:
        pool, results = None, map(_score, jobs)
    for i, (meta, out) in enumerate(results):
        tot += out
        if a.by_condition:
            for c in conditions(meta):
                by_cond.setdefault(c, Counter()).update(out + Counter(captures=1))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(metas)} captures", file=sys.stderr, flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    rs = ""
    if a.resample:
        rs = (f", resampled to {a.resample / 1e6:g} Msps ({tot['skipped_slower']} recorded slower skipped)")
    if a.cut_ms is not None:
        rs += f", each cut to {a.cut_ms:g} ms from {CUT_LEAD_S * 1e3:g} ms before its first SSB"
    print(f"{len(metas)} captures of {', '.join(a.dirs)}{rs}, {det.name} with the pipeline's rules:")
    for mode, name in (("cal", "calibrated"), ("uncal", "uncalibrated")):
        c, j, j15 = tot[f"{mode}_clean"], tot[f"{mode}_jam"], tot[f"{mode}_jam1530"]
        fa, pd, pd15 = tot[f"{mode}_clean_called"], tot[f"{mode}_jam_called"], tot[f"{mode}_jam1530_called"]
        print(f"  {name}: FAR {fa}/{c} = {100 * fa / max(c, 1):.2f} %; Pd {pd}/{j} = {100 * pd / max(j, 1):.1f} %; "
              f"Pd at SJNR 15-30 dB {pd15}/{j15} = {100 * pd15 / max(j15, 1):.1f} % "
              f"({tot[f'{mode}_invalid']} invalid, {tot[f'{mode}_missed']} not observed)")
        bands = [jnr_band(v - 0.5) for v in JNR_EDGES_DB] + [jnr_band(JNR_EDGES_DB[-1])]
        print("    Pd at SJNR 15-30 dB by JNR: " + ", ".join(
            f"{b} dB {tot[f'{mode}_jam1530_jnr{b}_called']}/{tot[f'{mode}_jam1530_jnr{b}']}" for b in bands))
        types = sorted(k[len(f"{mode}_jam1530_type_"):] for k in tot
                       if k.startswith(f"{mode}_jam1530_type_") and not k.endswith("_called"))
        print("    Pd at SJNR 15-30 dB by jammer: " + ", ".join(
            f"{t} {tot[f'{mode}_jam1530_type_{t}_called']}/{tot[f'{mode}_jam1530_type_{t}']}" for t in types))
        rules = {k: (tot[f"{mode}_jam_rule_{k}"], tot[f"{mode}_clean_rule_{k}"]) for k in RULE_KEYS
                 if tot[f"{mode}_jam_rule_{k}"] or tot[f"{mode}_clean_rule_{k}"]}
        if rules:
            print("    jammed verdicts by rule (jammed SSBs, clean SSBs): "
                  + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in rules.items()))
    print(f"  other cells the searches reported (uncalibrated runs): of {tot['cells_captures']} captures without "
          f"a spoofer, {tot['cells_neighbour_reported']} of the {tot['cells_with_neighbour']} with a neighbour "
          f"reported one; {tot['cells_not_on_air']} reported a PCI not on the air "
          f"({tot['cells_not_on_air_offtime']} of them off the serving cell's timing); "
          f"{tot['cells_spoofer_reported']} of {tot['cells_spoofer_captures']} spoofer captures reported another cell")
    if a.by_condition:
        print("  by condition (a capture in each of its own; FAR and Pd calibrated / uncalibrated):")
        for c, t in sorted(by_cond.items()):
            print(f"    {c}: {t['captures']} captures; FAR {t['cal_clean_called']}/{t['cal_clean']} / "
                  f"{t['uncal_clean_called']}/{t['uncal_clean']}; Pd {t['cal_jam_called']}/{t['cal_jam']} / "
                  f"{t['uncal_jam_called']}/{t['uncal_jam']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(tot), fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
