"""Training / evaluation datasets from ``ssbwatch simulate`` output.

For every capture listed in ``DIR/manifest.json`` the receiver is run exactly
as ``ssbwatch replay`` runs it, each observed SSB is matched to the ground
truth annotation it belongs to (|sample - core:sample_start| <= one short CP at
the capture rate), and per SSB we keep

- ``x_uncal``: the feature vector without a site baseline (uncalibrated mode),
- ``x_cal``: the same SSB's features with the baseline learned from the
  capture's clean calibration companions (``capNNNNN-calK``, what an operator
  would record for ``ssbwatch calibrate``), ``has_cal`` False when there is
  none (then ``x_cal == x_uncal``),
- ``iq``: the raw SSB (``ssb_iq``, 1096 samples at the SSB rate) normalised to
  unit RMS, float32 (2, 1096) (the raw-IQ baseline's input),
- the truth: ``y`` (jammed), ``sjnr_db`` (NaN when clean), ``snr_db``,
  ``jnr_db``, ``jammer`` ("" when clean), and ``scs``, ``rate``, ``datatype``,
  ``capture``.

Truth SSBs that no observation matches are counted as missed (per capture,
with their label and SJNR, so evaluation can report them end to end).
The features come from :func:`detector.pipeline.observation_features_batch` (the
one feature function, a capture's SSBs in one batch) -- never a copy.

The result is cached in ``DIR/ssbwatch-dataset.npz`` with a manifest
``DIR/ssbwatch-dataset.json`` (simulation config and seed, sha256 of every
capture file, feature version); a cache whose files or feature version no
longer match is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from detector.baseline import ConfigBaseline
from detector.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES
from detector.pipeline import config_baseline, observation_features_batch
from detector.receiver import Receiver
from detector.threads import one_blas_thread_children
from signals import iq as iqio
from signals import nr

CACHE_NPZ = "ssbwatch-dataset.npz"
CACHE_JSON = "ssbwatch-dataset.json"
# 9: the half-PSS CFO fits out a co-timed PSS of another N_ID2 (dsp.pss_cfo_hz: the grids of
# SSBs beside such a neighbour change); 8: calibrated features against each SSB's index view of
# the baseline, which keeps a one-burst calibration's far-off indices (baseline._sparse_per_index);
# 7: the cell search detects a PSS with the other N_ID2s taken out (more cells found); 6:
# features v7
DATASET_VERSION = 9
IQ_LEN = 1096
MIN_CAL_SSBS = 2  # fewest clean SSBs in the companions to form a baseline
BLOCK = 1 << 20

ARRAY_KEYS = ("x_uncal", "x_cal", "has_cal", "iq", "y", "sjnr_db", "snr_db", "jnr_db", "jammer", "scs", "rate",
              "datatype", "capture", "capture_idx", "locked", "pci_ok")


class DatasetError(ValueError):
    """A data directory is missing, malformed or does not match the code."""


def feature_names_sha256() -> str:
    return hashlib.sha256("\n".join(FEATURE_NAMES).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _sigmf_files(data_dir: Path, meta_name: str) -> list[Path]:
    meta = data_dir / meta_name
    return [meta, meta.with_suffix(".sigmf-data")]


def _observe(path: Path):
    """Run the receiver over one recording: (meta, observations)."""
    with iqio.open_iq(str(path), allow_partial=True) as reader:
        m = reader.meta
        rx = Receiver(m.sample_rate_hz, m.center_freq_hz)
        obs = []
        pos = 0
        for block in reader.blocks(BLOCK):
            obs += rx.push(block, pos)
            pos += block.size
        obs += rx.flush()
    return m, [o for o in obs if o.valid]


def baseline_to_dict(cb: Optional[ConfigBaseline]) -> Optional[dict]:
    return None if cb is None else cb.to_dict()


def baseline_from_dict(d: Optional[dict]) -> Optional[ConfigBaseline]:
    return None if d is None else ConfigBaseline.from_dict(d)


def process_capture(args: tuple[str, dict]) -> dict:
    """Worker: one manifest entry -> per-SSB arrays + bookkeeping (picklable)."""
    data_dir, entry = Path(args[0]), args[1]
    t0 = time.perf_counter()
    hashes = {}
    for p in _sigmf_files(data_dir, entry["meta"]) + [f for c in entry.get("calibration", [])
                                                       for f in _sigmf_files(data_dir, c)]:
        hashes[p.name] = _sha256_file(p)
    # site baseline from the clean companions (what ssbwatch calibrate does)
    base = None
    cal_scs = None
    cal_obs = [o for c in entry.get("calibration", []) for o in _observe(data_dir / c)[1]]
    m, obs = _observe(data_dir / entry["meta"])
    rate = m.sample_rate_hz
    scs_truth = int(m.global_.get("ssbwatch:scs_khz", entry.get("scs_khz", 30)))
    if cal_obs:
        # the configuration the receiver sees in the capture itself (else the truth SCS);
        # its baseline is what ssbwatch calibrate learns (the companions share the
        # capture's datatype and rate)
        want = obs[0].scs_khz if obs else scs_truth
        cal_scs = want
        mine = [o for o in cal_obs if o.scs_khz == want]
        if len(mine) >= MIN_CAL_SSBS:
            base = config_baseline(mine, want, rate, m.datatype)
    tol = nr.Numerology.create(scs_truth, rate).cp_short
    truth = [a for a in m.annotations if a.get("core:label") == "SSB"]
    starts = np.array([a["core:sample_start"] for a in truth], dtype=np.int64)
    used = set()
    rows = []
    unmatched_obs = 0
    matched = []  # (observation, its truth annotation)
    for o in obs:
        if starts.size == 0:
            unmatched_obs += 1
            continue
        d = np.abs(starts - o.sample)
        j = int(np.argmin(d))
        if d[j] > tol or j in used:
            unmatched_obs += 1
            continue
        used.add(j)
        matched.append((o, truth[j]))
    # the features of all matched SSBs in one batch per mode (the same values one by one)
    fk = {"datatype": m.datatype, "sample_rate_hz": rate}
    mo = [o for o, _ in matched]
    x_u = observation_features_batch(mo, [None] * len(mo), **fk)
    cal_ok = [base is not None and o.scs_khz == base.scs_khz for o in mo]
    # each SSB against its index's view of the baseline, as the pipeline scores it (per-index
    # levels: a beam sweep's, or the far-off statistics of a one-burst calibration)
    x_c = observation_features_batch(mo, [base.for_index(o.ssb_index) if ok else None for o, ok in zip(mo, cal_ok)],
                                     **fk) if any(cal_ok) else x_u
    for (o, a), xu, xc, ok in zip(matched, x_u, x_c, cal_ok):
        if not ok:
            xc = xu
        z = np.asarray(o.ssb_iq, dtype=np.complex64)
        if z.size < IQ_LEN:
            z = np.pad(z, (0, IQ_LEN - z.size))
        z = z[:IQ_LEN]
        rms = float(np.sqrt(np.mean(np.abs(z.astype(np.complex128)) ** 2)))
        z = z / rms if rms > 0 else z
        rows.append({
            "x_uncal": xu, "x_cal": xc, "has_cal": ok,
            "iq": np.stack([z.real, z.imag]).astype(np.float32),
            "y": a["ssbwatch:jammer"] is not None,
            "sjnr_db": np.nan if a["ssbwatch:sjnr_db"] is None else float(a["ssbwatch:sjnr_db"]),
            "snr_db": float(a["ssbwatch:snr_db"]),
            "jnr_db": np.nan if a["ssbwatch:jnr_db"] is None else float(a["ssbwatch:jnr_db"]),
            "jammer": a["ssbwatch:jammer"] or "",
            "scs": int(o.scs_khz), "locked": bool(o.locked), "pci_ok": int(o.pci) == int(a["ssbwatch:pci"]),
        })
    missed = []
    for j, a in enumerate(truth):
        if j not in used:
            missed.append({"jammed": a["ssbwatch:jammer"] is not None, "sjnr_db": a["ssbwatch:sjnr_db"],
                           "snr_db": a["ssbwatch:snr_db"], "jammer": a["ssbwatch:jammer"]})
    return {
        "name": entry["name"], "rows": rows, "missed": missed, "unmatched_obs": unmatched_obs,
        "n_truth": len(truth), "rate": rate, "datatype": m.datatype, "scs_truth": scs_truth,
        "baseline": baseline_to_dict(base), "n_cal_ssbs": len(cal_obs), "cal_scs": cal_scs,
        "hashes": hashes, "seconds": time.perf_counter() - t0,
    }


@dataclass
class Dataset:
    """Per-SSB arrays (see module doc) plus the per-capture bookkeeping."""

    arrays: dict
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.arrays["y"].shape[0])

    def __getitem__(self, k):
        return self.arrays[k]

    def baselines(self) -> list[Optional[ConfigBaseline]]:
        """Per capture index (``capture_idx``) its site baseline or None."""
        return [baseline_from_dict(c["baseline"]) for c in self.info["captures"]]

    def subset(self, mask: np.ndarray) -> "Dataset":
        return Dataset({k: v[mask] for k, v in self.arrays.items()}, self.info)

    @property
    def sha256(self) -> str:
        return self.info["data_sha256"]


def _load_manifest(data_dir: Path) -> dict:
    mp_ = data_dir / "manifest.json"
    try:
        man = json.loads(mp_.read_text())
    except OSError as exc:
        raise DatasetError(f"{mp_}: cannot read the simulation manifest ({exc.strerror}); "
                           f"make the data with ssbwatch simulate") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{mp_}: not valid JSON: {exc}") from None
    if not isinstance(man, dict) or "captures" not in man:
        raise DatasetError(f"{mp_}: not an ssbwatch simulate manifest")
    return man


def _cache_ok(data_dir: Path, man: dict) -> Optional[dict]:
    j, z = data_dir / CACHE_JSON, data_dir / CACHE_NPZ
    if not (j.exists() and z.exists()):
        return None
    try:
        info = json.loads(j.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (info.get("dataset_version") != DATASET_VERSION or info.get("feature_version") != FEATURE_VERSION
            or info.get("feature_names_sha256") != feature_names_sha256()
            or info.get("manifest_sha256") != _sha256_file(data_dir / "manifest.json")):
        return None
    if info.get("npz_sha256") != _sha256_file(z):
        return None
    # every capture file as it was: size and mtime (cheap), else its hash (a copy
    # with new mtimes is still the same data)
    stats = info.get("file_stat")
    hashes = info.get("file_sha256")
    if not isinstance(stats, dict) or not isinstance(hashes, dict) or set(stats) != set(hashes):
        return None
    for name, (size, mtime_ns) in stats.items():
        f = data_dir / name
        try:
            st = f.stat()
        except OSError:
            return None
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) and _sha256_file(f) != hashes[name]:
            return None
    return info


def build_dataset(data_dir: str | Path, *, workers: int = 2, progress: bool = True, force: bool = False,
                  log=None) -> Dataset:
    """Dataset of one ``ssbwatch simulate`` directory (cached; see module doc)."""
    data_dir = Path(data_dir)
    log = log or (lambda s: print(s, file=sys.stderr))
    man = _load_manifest(data_dir)
    if not force:
        info = _cache_ok(data_dir, man)
        if info is not None:
            with np.load(data_dir / CACHE_NPZ, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ARRAY_KEYS}
            return Dataset(arrays, info)
    entries = man["captures"]
    jobs = [(str(data_dir), e) for e in entries]
    t0 = time.perf_counter()
    results: list[dict] = []
    bar = _bar(len(jobs), f"dataset {data_dir.name}", progress)
    if workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("spawn")  # torch may be loaded in this process: no fork
        with one_blas_thread_children(), ctx.Pool(workers) as pool:  # (the receiver: detector.threads)
            for r in pool.imap(process_capture, jobs, chunksize=4):
                results.append(r)
                bar.update(1)
    else:
        for j in jobs:
            results.append(process_capture(j))
            bar.update(1)
    bar.close()
    arrays = _stack(results)
    captures = []
    hashes = {}
    for r in results:
        hashes.update(r["hashes"])
        captures.append({k: r[k] for k in ("name", "n_truth", "unmatched_obs", "rate", "datatype", "scs_truth",
                                           "baseline", "n_cal_ssbs", "cal_scs", "missed")}
                        | {"n_matched": len(r["rows"])})
    n_truth = sum(r["n_truth"] for r in results)
    n_missed = sum(len(r["missed"]) for r in results)
    data_h = hashlib.sha256(json.dumps(sorted(hashes.items())).encode() + FEATURE_VERSION.encode()).hexdigest()
    np.savez(data_dir / CACHE_NPZ, **arrays)
    info = {
        "tool": "ssbwatch train (dataset)",
        "dataset_version": DATASET_VERSION,
        "feature_version": FEATURE_VERSION,
        "feature_names_sha256": feature_names_sha256(),
        "n_features": N_FEATURES,
        "data_dir": str(data_dir),
        "seed": man.get("seed"),
        "sim_config": man.get("config"),
        "manifest_sha256": _sha256_file(data_dir / "manifest.json"),
        "file_sha256": hashes,
        "file_stat": {n: [st.st_size, st.st_mtime_ns] for n in hashes for st in [(data_dir / n).stat()]},
        "data_sha256": data_h,
        "n_captures": len(results),
        "n_truth_ssbs": n_truth,
        "n_ssbs": int(arrays["y"].shape[0]),
        "n_missed": n_missed,
        "n_missed_jammed": sum(m["jammed"] for r in results for m in r["missed"]),
        "n_unmatched_obs": sum(r["unmatched_obs"] for r in results),
        "n_with_baseline": sum(r["baseline"] is not None for r in results),
        "build_seconds": round(time.perf_counter() - t0, 1),
        "captures": captures,
    }
    info["npz_sha256"] = _sha256_file(data_dir / CACHE_NPZ)
    tmp = data_dir / (CACHE_JSON + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(data_dir / CACHE_JSON)
    log(f"dataset {data_dir}: {info['n_captures']} captures, {info['n_ssbs']} SSBs matched of {n_truth} "
        f"({n_missed} missed by the receiver, {info['n_missed_jammed']} of them jammed; "
        f"{info['n_unmatched_obs']} observations without truth), {info['n_with_baseline']} captures calibrated, "
        f"{info['build_seconds']} s")
    return Dataset(arrays, info)


def _stack(results: list[dict]) -> dict:
    rows = [(i, r["name"], r["rate"], r["datatype"], row) for i, r in enumerate(results) for row in r["rows"]]
    n = len(rows)
    out = {
        "x_uncal": np.zeros((n, N_FEATURES), np.float32),
        "x_cal": np.zeros((n, N_FEATURES), np.float32),
        "has_cal": np.zeros(n, bool),
        "iq": np.zeros((n, 2, IQ_LEN), np.float32),
        "y": np.zeros(n, np.int8),
        "sjnr_db": np.zeros(n, np.float32),
        "snr_db": np.zeros(n, np.float32),
        "jnr_db": np.zeros(n, np.float32),
        "jammer": np.array([row["jammer"] for *_, row in rows], dtype="U24") if n else np.zeros(0, "U24"),
        "scs": np.zeros(n, np.int16),
        "rate": np.zeros(n, np.float64),
        "datatype": np.array([d for _, _, _, d, _ in rows], dtype="U8") if n else np.zeros(0, "U8"),
        "capture": np.array([c for _, c, _, _, _ in rows], dtype="U32") if n else np.zeros(0, "U32"),
        "capture_idx": np.array([i for i, *_ in rows], dtype=np.int32),
        "locked": np.zeros(n, bool),
        "pci_ok": np.zeros(n, bool),
    }
    for k, (i, name, rate, dt, row) in enumerate(rows):
        for key in ("x_uncal", "x_cal", "has_cal", "iq", "y", "sjnr_db", "snr_db", "jnr_db", "scs", "locked",
                    "pci_ok"):
            out[key][k] = row[key]
        out["rate"][k] = rate
    return out


def load_datasets(dirs, **kw) -> Dataset:
    """Several simulate directories as one dataset (capture indices renumbered)."""
    parts = [build_dataset(d, **kw) for d in dirs]
    if len(parts) == 1:
        return parts[0]
    arrays = {}
    off = 0
    caps = []
    for p in parts:
        a = dict(p.arrays)
        a["capture_idx"] = a["capture_idx"] + off
        a["capture"] = np.array([f"{Path(p.info['data_dir']).name}/{c}" for c in a["capture"]], dtype="U48")
        off += len(p.info["captures"])
        caps += p.info["captures"]
        for k, v in a.items():
            arrays.setdefault(k, []).append(v)
    arrays = {k: np.concatenate(v) for k, v in arrays.items()}
    info = dict(parts[0].info)
    info["captures"] = caps
    info["data_dir"] = [p.info["data_dir"] for p in parts]
    info["seed"] = [p.info["seed"] for p in parts]
    for k in ("n_captures", "n_truth_ssbs", "n_ssbs", "n_missed", "n_missed_jammed", "n_unmatched_obs",
              "n_with_baseline"):
        info[k] = sum(p.info[k] for p in parts)
    info["data_sha256"] = hashlib.sha256("".join(p.info["data_sha256"] for p in parts).encode()).hexdigest()
    info.pop("file_sha256", None)
    info.pop("file_stat", None)
    return Dataset(arrays, info)


class _bar:
    """tqdm when available (train extra), else the edge progress bar."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.t = None
        self.p = None
        if not enabled:
            return
        try:
            from tqdm import tqdm

            self.t = tqdm(total=total, desc=desc, unit="cap", leave=False)
        except ImportError:  # pragma: no cover
            from detector.progress import Progress

            self.p = Progress(total, desc, " captures")

    def update(self, n: int) -> None:
        if self.t is not None:
            self.t.update(n)
        elif self.p is not None:
            self.p.update(n)

    def close(self) -> None:
        if self.t is not None:
            self.t.close()
        elif self.p is not None:
            self.p.close()
