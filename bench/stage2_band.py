"""How well each stage of the cascade ranks the SSBs of its uncertain band.

DNN-2 only earns its place if, among the SSBs DNN-1 leaves between its two thresholds, it
separates jammed from clean better than DNN-1's own score does. This scores the cached datasets
of `ssbwatch simulate` outputs (the features `ssbwatch evaluate` reads; the dataset is built
first where it is missing) with a DT-DDNN model and prints, per mode, the size of the band and
the AUC of DNN-1's and DNN-2's probabilities inside it: over every SSB of the band, and over its
clean SSBs with its jammed ones at SJNR 15-30 dB (the paper's weak-jammer region).

    python bench/stage2_band.py data/eval1 data/eval0 [--model PATH]

Reports figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.model import DTDDNNDetector  # noqa: E402
from training.dataset import load_datasets  # noqa: E402
from training.evaluate import auc  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="ssbwatch simulate output directories")
    ap.add_argument("--model", default=None, help="model file or directory (default: the shipped one)")
    a = ap.parse_args(argv)
    det = DTDDNNDetector(a.model)
    ds = load_datasets(a.dirs, progress=False)
    for mode in ("calibrated", "uncalibrated"):
        cal = mode == "calibrated"
        m = ds["has_cal"] if cal else np.ones(len(ds), bool)
        x, y, sjnr = (ds["x_cal"] if cal else ds["x_uncal"])[m], ds["y"][m], ds["sjnr_db"][m]
        p = det.probs_stream(x, ds["capture_idx"][m])  # (with DNN-2's stream context, where the model reads one)
        p1, p2 = p[:, 0], p[:, 1]
        lo, hi, _ = det.thresholds(cal)
        band = (p1 > lo) & (p1 < hi)
        weak = band & ((y < 0.5) | ((sjnr >= 15) & (sjnr <= 30)))
        print(f"{mode}: {len(y)} SSBs, {band.sum()} in DNN-1's band ({int(y[band].sum())} jammed)")
        print(f"  AUC in the band:             DNN-1 {auc(p1[band], y[band]):.4f}  DNN-2 {auc(p2[band], y[band]):.4f}")
        print(f"  AUC, clean + SJNR 15-30 dB:  DNN-1 {auc(p1[weak], y[weak]):.4f}  DNN-2 {auc(p2[weak], y[weak]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
