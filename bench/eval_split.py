"""The evaluation split scored as `ssbwatch replay` scores it: the model with the rules beside it.

`ssbwatch evaluate` reports the models alone on the dataset's features; this replays every
capture of one or more `ssbwatch simulate` outputs through the ScoringPipeline (the shipped
model unless --model), calibrated on the capture's clean companions (`capNNNNN-cal*`, as
`ssbwatch calibrate` does) and uncalibrated, and matches the records to the truth
annotations (an SSB's record: the nearest within 20 samples of its start; invalid records
left out). Per mode: FAR, Pd, Pd at SJNR 15-30 dB (the paper's form), and how many jammed
verdicts each rule beside the model gave.

    python bench/eval_split.py data/eval0 data/eval1 [--model default|classical|PATH] [--json OUT]

Reports figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import sys
from collections import Counter

import numpy as np

from detector.pipeline import ScoringPipeline, load_detector
from detector.replay import calibrate
from signals import iq as iqio
from training.evaluate import JNR_EDGES_DB, jnr_band  # Pd at SJNR 15-30 dB per JNR band, as the report

# the record keys of the rules beside the model that turn a verdict jammed (README, "Scoring recordings")
RULE_KEYS = ("band_excess_db", "pbch_symbol_excess_db", "null_rise_db", "interference_step_db", "unknown_cell",
             "pss_sss_jump", "pss_shape_jump", "nb_pss_jump_db")
MATCH_SAMPLES = 20


def score_capture(meta: str, det) -> dict:
    """Counts of one capture in both modes (calibrated only when its companions give a baseline)."""
    out: Counter = Counter()
    cals = sorted(glob.glob(meta.replace(".sigmf-meta", "-cal*.sigmf-meta")))
    base = None
    if cals:
        with contextlib.redirect_stderr(io.StringIO()):
            base = calibrate(cals)
        if not base.configs:
            base = None
    with open(meta) as fh:
        truth = [a for a in json.load(fh)["annotations"] if a.get("core:label") == "SSB"]
    with iqio.open_iq(meta, allow_partial=True) as r:
        m = r.meta
        x = r.read(0, m.n_samples)
    for mode, b in (("cal", base), ("uncal", None)):
        if mode == "cal" and b is None:
            continue
        pipe = ScoringPipeline(m.sample_rate_hz, m.center_freq_hz, m.datatype, baseline=b, detector=det)
        recs = [r for r in pipe.push(x) + pipe.flush() if r.get("pci") is not None]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="ssbwatch simulate output directories")
    ap.add_argument("--model", default="default", help="'default' (the shipped DT-DDNN), 'classical' or a model path")
    ap.add_argument("--json", help="also write the counts as JSON here")
    a = ap.parse_args(argv)
    det = load_detector(a.model)
    tot: Counter = Counter()
    metas = [p for d in a.dirs for p in sorted(glob.glob(f"{d}/cap?????.sigmf-meta"))]
    if not metas:
        print(f"no captures (capNNNNN.sigmf-meta) in {a.dirs}", file=sys.stderr)
        return 1
    for i, meta in enumerate(metas):
        tot += score_capture(meta, det)
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(metas)} captures", file=sys.stderr, flush=True)
    print(f"{len(metas)} captures of {', '.join(a.dirs)}, {det.name} with the pipeline's rules:")
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
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(tot), fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
