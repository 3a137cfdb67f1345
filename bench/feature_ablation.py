"""Does a group of features help? The DT-DDNN recipe trained twice on the same
data, once with the group's columns held at zero (the model cannot use them),
both scored alone (no pipeline rules) on evaluation datasets.

    python bench/feature_ablation.py --train data/train0 --eval data/eval0 data/eval1 \
        --out /tmp/abl [--group band] [--set dnn1.epochs=20 ...]

The datasets are `ssbwatch train`'s (built and cached from `ssbwatch simulate`
directories); the raw-IQ baseline is not trained. Prints, per variant and mode,
FAR and Pd at the model's own thresholds and at FAR 1 %, Pd at SJNR 15-30 dB,
per jammer type and per JNR band; writes OUT/results.json and each model under
OUT/<variant>/.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from detector.features import BAND_FEATURES, FEATURE_NAMES
from training import dataset as D
from training import train as T
from training.evaluate import metrics_for, score_all

GROUPS = {"band": BAND_FEATURES}


def _masked(ds, cols: np.ndarray):
    for k in ("x_uncal", "x_cal"):
        x = np.array(ds[k])
        x[:, cols] = 0.0
        ds.arrays[k] = x
    return ds


def _config(path: str, overrides: list[str]):
    cfg = T.load_config(path)
    cfg = dataclasses.replace(cfg, rawiq=dataclasses.replace(cfg.rawiq, enabled=False))
    for kv in overrides:
        k, v = kv.split("=", 1)
        if "." in k:
            sub, key = k.split(".", 1)
            obj = getattr(cfg, sub)
            cfg = dataclasses.replace(cfg, **{sub: dataclasses.replace(obj, **{key: type(getattr(obj, key))(v)})})
        else:
            cfg = dataclasses.replace(cfg, **{k: type(getattr(cfg, k))(v)})
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", nargs="+", required=True, help="ssbwatch simulate directories to train on")
    ap.add_argument("--eval", nargs="+", required=True, help="... and to score on")
    ap.add_argument("--out", required=True)
    ap.add_argument("--group", choices=sorted(GROUPS), default="band")
    ap.add_argument("--config", default="configs/train.yaml")
    ap.add_argument("--set", nargs="*", default=[], help="training config overrides, e.g. dnn1.epochs=20")
    a = ap.parse_args()
    cols = np.array([FEATURE_NAMES.index(n) for n in GROUPS[a.group]])
    load = D.load_datasets
    res = {}
    for variant in (f"without_{a.group}", "all"):
        hide = variant != "all"
        T.load_datasets = (lambda dirs, **kw: _masked(load(dirs, **kw), cols)) if hide else load
        out = Path(a.out) / variant
        T.train(_config(a.config, a.set), a.train, out, progress=False,
                log=lambda s, v=variant: print(v, s, file=sys.stderr, flush=True))
        ev = load(a.eval, workers=2, progress=False, log=lambda s: None)
        if hide:
            ev = _masked(ev, cols)
        sc = score_all(out, ev, log=lambda s: None)
        res[variant] = {}
        for mode in ("calibrated", "uncalibrated"):
            d = sc[mode]
            idx = d["idx"]
            m = metrics_for(d["scores"]["dtddnn"], d["decisions"]["dtddnn"], ev["y"][idx].astype(bool),
                            ev["sjnr_db"][idx], ev["jammer"][idx], ev["jnr_db"][idx])
            res[variant][mode] = m
            print(f"{variant} {mode}: at its thresholds FAR {100 * m['op']['far']:.2f} % Pd {100 * m['op']['pd']:.1f} % "
                  f"(SJNR 15-30: {100 * m['op']['pd_15_30']:.1f} %); at FAR 1 %: Pd {100 * m['far1']['pd']:.1f} % "
                  f"(SJNR 15-30: {100 * m['far1']['pd_15_30']:.1f} %)")
            print("   per jammer at FAR 1 %:", {k: round(100 * v["pd"], 1) for k, v in m["jammers"].items()})
            print("   SJNR 15-30 per JNR band:", {k: (None if v["pd"] is None else round(100 * v["pd"], 1), v["n"])
                                                  for k, v in m["jnr_15_30"].items()})
    Path(a.out, "results.json").write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
