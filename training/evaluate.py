"""``ssbwatch evaluate``: DT-DDNN against its baselines on a held-out split.

Detectors, side by side on the same SSBs:

- **DT-DDNN**: the exported ONNX model through :class:`detector.model.DTDDNNDetector`
  (the edge code path), its cascade score and decision;
- **single-threshold DNN**: DNN-1 alone (p1) at ``single_threshold`` (0.5);
- **raw-IQ DNN**: the 1-D CNN on the unit-RMS SSB IQ (``rawiq.onnx``), at 0.5;
- **classical**: :class:`detector.classical.ClassicalDetector` -- in calibrated
  mode with the same per-capture site baseline the features use.

Each in calibrated mode (per-capture baseline from the clean companion
captures) and uncalibrated mode (no baseline). Reported: the operating point
(each detector's own decision: FAR, Pd, Pd at SJNR 15-30 dB), Pd at FAR 1 %
and 5 % (threshold swept on the clean SSBs' scores), Pd per SJNR band and per
jammer type at FAR 1 %, ROC, receiver misses, and the model's latency.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from detector import model as edge
from detector.classical import ClassicalDetector
from detector.model import DTDDNNDetector, ModelError

from .dataset import Dataset, load_datasets


BANDS = [(-5.0, 0.0), (0.0, 5.0), (5.0, 10.0), (10.0, 15.0), (15.0, 20.0), (20.0, 25.0), (25.0, 30.0)]
HARD = (15.0, 30.0)
# Pd at SJNR 15-30 dB is also given per band of the jammer's power over the noise (JNR, dB): at
# one SJNR the jammer may stand well over the receiver's noise or under it (a weak cell), and a
# calibrated site must not call its own floor moving by a few dB jamming (NOISE_FLOOR_DRIFT_DB)
JNR_EDGES_DB = (0.0, 3.0, 6.0, 10.0)
JNR_BANDS = list(zip((-np.inf,) + JNR_EDGES_DB, JNR_EDGES_DB + (np.inf,)))
DETECTORS = ("dtddnn", "single", "rawiq", "classical")
LABELS = {"dtddnn": "DT-DDNN", "single": "single-threshold DNN", "rawiq": "raw-IQ DNN", "classical": "classical (EPNRE)"}


def threshold_at_far(clean_scores: np.ndarray, far: float) -> float:
    """Lowest t with mean(clean > t) <= far."""
    s = np.sort(np.asarray(clean_scores, np.float64))
    if s.size == 0:
        return 0.5
    k = int(np.ceil((1.0 - far) * s.size)) - 1
    return float(s[min(max(k, 0), s.size - 1)])


def roc(scores: np.ndarray, y: np.ndarray, n: int = 400):
    y = y.astype(bool)
    ts = np.unique(np.concatenate([[-np.inf], np.quantile(scores, np.linspace(0, 1, n)), [np.inf]]))
    far = np.array([(scores[~y] > t).mean() for t in ts])
    pd = np.array([(scores[y] > t).mean() for t in ts])
    return far, pd


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    y = y.astype(bool)
    pos, neg = scores[y], scores[~y]
    if not pos.size or not neg.size:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their average rank
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def _rate(m: np.ndarray) -> Optional[float]:
    return float(m.mean()) if m.size else None


def score_all(model_dir: Path, ds: Dataset, log) -> dict:
    """Per mode: scores and decisions of every detector on every SSB."""
    det = DTDDNNDetector(model_dir)
    t_low, t_high, t2 = det.t_low, det.t_high, det.t2
    single_t = float(det.meta.get("single_threshold", 0.5))
    raw_path = edge.resolve_model_path(model_dir).with_name("rawiq.onnx")
    raw_sess = None
    if raw_path.exists():
        digest, meta = edge.parse_model_bytes(raw_path.read_bytes())
        if meta.get("weights_sha256") != digest:
            raise ModelError(f"{raw_path}: checksum mismatch")
        raw_sess = edge.make_session(raw_path.read_bytes(), raw_path)
    else:
        log(f"{raw_path} not found: the raw-IQ baseline is left out")
    classical = ClassicalDetector()
    bases = ds.baselines()
    n = len(ds)
    out = {"n": n, "thresholds": {"low": t_low, "high": t_high, "stage2": t2, "single": single_t,
                                  "uncalibrated": dict(zip(("low", "high", "stage2"), det.thresholds(False)))}}
    raw_p = None
    if raw_sess is not None:
        raw_p = np.zeros(n)
        iq = ds["iq"]
        buf = np.zeros((1,) + iq.shape[1:], np.float32)
        for i in range(n):
            buf[0] = iq[i]
            raw_p[i] = float(raw_sess.run(None, {"iq": buf})[0].reshape(-1)[0])
    for mode in ("calibrated", "uncalibrated"):
        if mode == "calibrated":
            m = ds["has_cal"].copy()
            x = ds["x_cal"]
        else:
            m = np.ones(n, bool)
            x = ds["x_uncal"]
        idx = np.where(m)[0]
        cl_s = np.zeros(idx.size)
        cl_j = np.zeros(idx.size, bool)
        # each capture's SSBs in order, with DNN-2's stream context of those before (a model that reads one)
        p = det.probs_stream(x[idx], ds["capture_idx"][idx])
        p1, p2 = p[:, 0], p[:, 1]
        for k, i in enumerate(idx):
            base = bases[int(ds["capture_idx"][i])] if mode == "calibrated" else None
            j, s, _ = classical.score(x[i], base)
            cl_s[k], cl_j[k] = s, j
        jam, sc, st = edge.cascade_arrays(p1, p2, *det.thresholds(mode == "calibrated"))
        d = {
            "idx": idx,
            "scores": {"dtddnn": sc, "single": p1, "classical": cl_s},
            "decisions": {"dtddnn": jam, "single": p1 >= single_t, "classical": cl_j},
            "stage": st,
        }
        if raw_p is not None:
            d["scores"]["rawiq"] = raw_p[idx]
            d["decisions"]["rawiq"] = raw_p[idx] >= 0.5
        out[mode] = d
    out["latency_us"] = det.timing_us(3000)
    out["model_info"] = det.info()
    return out


def jnr_band(jnr_db: float) -> str:
    """The label of the JNR band (JNR_EDGES_DB) that ``jnr_db`` falls in: "<0", "0-3", ..., ">=10"."""
    lo = None
    for hi in JNR_EDGES_DB:
        if jnr_db < hi:
            return f"<{hi:g}" if lo is None else f"{lo:g}-{hi:g}"
        lo = hi
    return f">={lo:g}"


def metrics_for(scores: np.ndarray, dec: np.ndarray, y: np.ndarray, sjnr: np.ndarray, jammer: np.ndarray,
                jnr: Optional[np.ndarray] = None) -> dict:
    y = y.astype(bool)
    hard = y & (sjnr >= HARD[0]) & (sjnr <= HARD[1])
    r = {
        "op": {"far": _rate(dec[~y]), "pd": _rate(dec[y]), "pd_15_30": _rate(dec[hard])},
        "auc": auc(scores, y),
    }
    for far in (0.01, 0.05):
        t = threshold_at_far(scores[~y], far)
        det = scores > t
        key = f"far{int(far * 100)}"
        r[key] = {"threshold": t, "far": _rate(det[~y]), "pd": _rate(det[y]), "pd_15_30": _rate(det[hard])}
        if far == 0.01:
            r["bands"] = {}
            r["bands_op"] = {}
            for lo, hi in BANDS:
                b = y & (sjnr >= lo) & (sjnr < hi if hi < 30 else sjnr <= hi)
                r["bands"][f"{lo:g}-{hi:g}"] = {"pd": _rate(det[b]), "n": int(b.sum())}
                r["bands_op"][f"{lo:g}-{hi:g}"] = {"pd": _rate(dec[b]), "n": int(b.sum())}
            if jnr is not None:  # SJNR 15-30 dB, per JNR band
                r["jnr_15_30"] = {}
                for lo, hi in JNR_BANDS:
                    b = hard & (jnr >= lo) & (jnr < hi)
                    r["jnr_15_30"][jnr_band(lo)] = {"pd": _rate(det[b]), "pd_op": _rate(dec[b]), "n": int(b.sum())}
            r["jammers"] = {}
            for jt in sorted(set(jammer[y].tolist())):
                b = y & (jammer == jt)
                r["jammers"][jt] = {"pd": _rate(det[b]), "pd_op": _rate(dec[b]), "n": int(b.sum())}
    return r


def evaluate(model_dir: str | Path, data_dirs: list[str], report_dir: str | Path, *, workers: int = 2,
             progress: bool = True, log=None, sidecar: bool = False) -> dict:
    log = log or (lambda s: print(s, file=sys.stderr))
    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)
    ds = load_datasets(data_dirs, workers=workers, progress=progress, log=log)
    sc = score_all(model_dir, ds, log)
    res = {"tool": "ssbwatch evaluate", "model": str(edge.resolve_model_path(model_dir)),
           "data": {k: ds.info.get(k) for k in ("data_dir", "seed", "data_sha256", "n_captures", "n_truth_ssbs",
                                                "n_ssbs", "n_missed", "n_missed_jammed", "n_unmatched_obs",
                                                "n_with_baseline")},
           "training_data_sha256": sc["model_info"].get("training_data_sha256"),
           "thresholds": sc["thresholds"], "latency_us_per_ssb": sc["latency_us"], "modes": {}}
    if res["training_data_sha256"] == ds.sha256:
        log("WARNING: evaluating on the model's own training data")
    for mode in ("calibrated", "uncalibrated"):
        d = sc[mode]
        idx = d["idx"]
        y, sj, jt = ds["y"][idx], ds["sjnr_db"][idx], ds["jammer"][idx]
        jnr = ds["jnr_db"][idx] if "jnr_db" in ds.arrays else None
        res["modes"][mode] = {"n_clean": int((y == 0).sum()), "n_jammed": int((y == 1).sum()),
                              "stage2_fraction": float((d["stage"] == 2).mean()) if idx.size else None,
                              "detectors": {k: metrics_for(d["scores"][k], d["decisions"][k], y, sj, jt, jnr)
                                            for k in DETECTORS if k in d["scores"]}}
    # receiver misses, end to end (a jammed SSB the receiver never reported is not detected)
    missed = [m for c in ds.info["captures"] for m in c["missed"]]
    mj = [m for m in missed if m["jammed"]]
    mode = res["modes"]["calibrated"]
    d = sc["calibrated"]
    y = ds["y"][d["idx"]].astype(bool)
    sj = ds["sjnr_db"][d["idx"]]
    hard = y & (sj >= HARD[0]) & (sj <= HARD[1])
    miss_hard = sum(1 for m in mj if m["sjnr_db"] is not None and HARD[0] <= m["sjnr_db"] <= HARD[1])
    dec = d["decisions"]["dtddnn"]
    res["receiver"] = {
        "truth_ssbs": ds.info["n_truth_ssbs"], "missed": len(missed), "missed_jammed": len(mj),
        "missed_jammed_15_30": miss_hard, "missed_clean": len(missed) - len(mj),
        "pd_end_to_end_calibrated": float(dec[y].sum() / max(y.sum() + len(mj), 1)),
        "pd_15_30_end_to_end_calibrated": float(dec[hard].sum() / max(hard.sum() + miss_hard, 1)),
        "missed_by_band": {f"{lo:g}-{hi:g}": sum(1 for m in mj if m["sjnr_db"] is not None and lo <= m["sjnr_db"] < hi)
                           for lo, hi in BANDS},
    }
    res["eval_seconds"] = round(time.perf_counter() - t0, 1)
    _plots(sc, ds, report, res)
    (report / "evaluation.json").write_text(json.dumps(_clean(res), indent=1))
    (report / "README.md").write_text(markdown(res, sc["model_info"]))
    if sidecar:
        sp = edge.resolve_model_path(model_dir).with_suffix(".json")
        side = json.loads(sp.read_text()) if sp.exists() else {}
        side["evaluation"] = headline(res)
        sp.write_text(json.dumps(side, indent=1))
        log(f"recorded the headline figures in {sp}")
    log(f"wrote {report / 'README.md'}, {report / 'evaluation.json'}, roc.png, pd_vs_sjnr.png")
    return res


def headline(res: dict) -> dict:
    h = {"data_seed": res["data"]["seed"], "data_sha256": res["data"]["data_sha256"],
         "latency_us_per_ssb": round(res["latency_us_per_ssb"], 1)}
    for mode, md in res["modes"].items():
        dd = md["detectors"]["dtddnn"]
        h[mode] = {"far": dd["op"]["far"], "pd": dd["op"]["pd"], "pd_15_30": dd["op"]["pd_15_30"],
                   "pd_at_far1": dd["far1"]["pd"], "pd_15_30_at_far1": dd["far1"]["pd_15_30"],
                   "pd_at_far5": dd["far5"]["pd"]}
    return _clean(h)


def _clean(x):
    if isinstance(x, (float, np.floating)):
        return round(float(x), 6) if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{100 * v:.1f}"


def markdown(res: dict, info: dict) -> str:
    r = res
    L = []
    L.append("# DT-DDNN evaluation\n")
    L.append(f"Model `{Path(r['model']).name}` (feature version `{info.get('feature_version')}`, thresholds "
             f"low {r['thresholds']['low']:.4f} / high {r['thresholds']['high']:.4f} / stage 2 "
             f"{r['thresholds']['stage2']:.4f} calibrated, {r['thresholds']['uncalibrated']['low']:.4f} / "
             f"{r['thresholds']['uncalibrated']['high']:.4f} / {r['thresholds']['uncalibrated']['stage2']:.4f} "
             f"uncalibrated; single-threshold DNN = DNN-1 at {r['thresholds']['single']:g}).")
    dd = r["data"]
    L.append(f"Evaluation data: `{dd['data_dir']}` (simulate seed {dd['seed']}), {dd['n_captures']} captures, "
             f"{dd['n_ssbs']} SSBs observed and matched of {dd['n_truth_ssbs']} in the truth "
             f"({dd['n_missed']} missed by the receiver, {dd['n_missed_jammed']} of them jammed). "
             f"Training data hash `{(r['training_data_sha256'] or '')[:12]}`, evaluation data hash "
             f"`{dd['data_sha256'][:12]}`.")
    L.append(f"ONNX inference (onnxruntime, 1 thread, batch 1): **{r['latency_us_per_ssb']:.1f} µs per SSB** "
             f"(model only; the receiver and features cost more).\n")
    L.append("Pd = jammed SSBs declared jammed / jammed SSBs; FAR = clean SSBs declared jammed / clean SSBs "
             "(DESIGN.md §3). *Operating point*: the detector's own decision rule. *@FAR x*: threshold on its "
             "score swept so that FAR ≤ x on these clean SSBs. Pd 15–30 is the paper's form (SJNR 15–30 dB).\n")
    for mode, md in r["modes"].items():
        L.append(f"## {mode.capitalize()} mode ({md['n_clean']} clean, {md['n_jammed']} jammed SSBs"
                 + (f"; DNN-2 decides {100 * md['stage2_fraction']:.1f} % of SSBs" if md.get("stage2_fraction") is not None else "")
                 + ")\n")
        L.append("| detector | FAR (op) | Pd (op) | Pd 15–30 (op) | Pd @FAR 1 % | Pd 15–30 @FAR 1 % | Pd @FAR 5 % | Pd 15–30 @FAR 5 % | AUC |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for k, m in md["detectors"].items():
            L.append(f"| {LABELS[k]} | {_pct(m['op']['far'])} | {_pct(m['op']['pd'])} | {_pct(m['op']['pd_15_30'])} | "
                     f"{_pct(m['far1']['pd'])} | {_pct(m['far1']['pd_15_30'])} | {_pct(m['far5']['pd'])} | "
                     f"{_pct(m['far5']['pd_15_30'])} | {m['auc']:.4f} |")
        L.append("")
        L.append("Pd (%) per SJNR band (dB) at FAR 1 %:\n")
        bands = list(next(iter(md["detectors"].values()))["bands"].keys())
        L.append("| detector | " + " | ".join(bands) + " |")
        L.append("|---|" + "---|" * len(bands))
        for k, m in md["detectors"].items():
            L.append(f"| {LABELS[k]} | " + " | ".join(_pct(m["bands"][b]["pd"]) for b in bands) + " |")
        first = next(iter(md["detectors"].values()))
        L.append("| *SSBs* | " + " | ".join(str(first["bands"][b]["n"]) for b in bands) + " |")
        L.append("")
        if "jnr_15_30" in first:
            L.append("Pd (%) at SJNR 15–30 dB per band of the jammer's power over the noise (JNR, dB) at FAR 1 % "
                     "(the operating point's in brackets):\n")
            jb = list(first["jnr_15_30"].keys())
            L.append("| detector | " + " | ".join(jb) + " |")
            L.append("|---|" + "---|" * len(jb))
            for k, m in md["detectors"].items():
                L.append(f"| {LABELS[k]} | " + " | ".join(f"{_pct(m['jnr_15_30'][b]['pd'])} ({_pct(m['jnr_15_30'][b]['pd_op'])})"
                                                         for b in jb) + " |")
            L.append("| *SSBs* | " + " | ".join(str(first["jnr_15_30"][b]["n"]) for b in jb) + " |")
            L.append("")
        L.append("Pd (%) per jammer type at FAR 1 %:\n")
        jts = list(first["jammers"].keys())
        L.append("| detector | " + " | ".join(jts) + " |")
        L.append("|---|" + "---|" * len(jts))
        for k, m in md["detectors"].items():
            L.append(f"| {LABELS[k]} | " + " | ".join(_pct(m["jammers"][j]["pd"]) for j in jts) + " |")
        L.append("| *SSBs* | " + " | ".join(str(first["jammers"][j]["n"]) for j in jts) + " |")
        L.append("")
    rc = r["receiver"]
    L.append("## Receiver\n")
    L.append(f"{rc['missed']} of {rc['truth_ssbs']} truth SSBs were not observed by the receiver "
             f"({rc['missed_jammed']} jammed, {rc['missed_jammed_15_30']} of them at SJNR 15–30 dB; "
             f"by band: {rc['missed_by_band']}). Counting those as missed detections, DT-DDNN's calibrated "
             f"end-to-end Pd is {_pct(rc['pd_end_to_end_calibrated'])} % (SJNR 15–30: "
             f"{_pct(rc['pd_15_30_end_to_end_calibrated'])} %).\n")
    L.append("![ROC](roc.png)\n\n![Pd vs SJNR](pd_vs_sjnr.png)\n")
    L.append(f"Generated by `ssbwatch evaluate` in {r['eval_seconds']} s.\n")
    return "\n".join(L)


def _plots(sc: dict, ds: Dataset, report: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"dtddnn": "C0", "single": "C1", "rawiq": "C2", "classical": "C3"}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80)
    for ax, mode in zip(axes, ("calibrated", "uncalibrated")):
        d = sc[mode]
        y = ds["y"][d["idx"]].astype(bool)
        for k in DETECTORS:
            if k not in d["scores"]:
                continue
            far, pd = roc(d["scores"][k], y)
            ax.plot(np.maximum(far, 1e-4), pd, color=colors[k], label=LABELS[k], lw=1.4)
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_ylim(0, 1.01)
        ax.axvline(0.01, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("FAR")
        ax.set_ylabel("Pd")
        ax.set_title(f"ROC, {mode}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(report / "roc.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
    centres = [0.5 * (lo + hi) for lo, hi in BANDS]
    for mode, ls in (("calibrated", "-"), ("uncalibrated", "--")):
        md = res["modes"][mode]["detectors"]
        for k in DETECTORS:
            if k not in md:
                continue
            v = [md[k]["bands"][f"{lo:g}-{hi:g}"]["pd"] for lo, hi in BANDS]
            ax.plot(centres, [np.nan if x is None else x for x in v], ls, marker="o", ms=3, color=colors[k],
                    label=f"{LABELS[k]} ({mode[:3]}.)")
    ax.set_xlabel("SJNR band centre (dB)")
    ax.set_ylabel("Pd at FAR 1 %")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(report / "pd_vs_sjnr.png")
    plt.close(fig)
