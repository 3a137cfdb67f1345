"""The one feature function shared by training and inference (versioned).

``ssb_features(grid, pci, ibar, pss_trace, ...)`` turns one received SSB (its
4 x 240 RE grid after CFO correction, and the PSS correlation trace around the
detected peak) into a fixed-length float32 vector. The model's ONNX metadata
stores :data:`FEATURE_VERSION`; a change of meaning or order bumps it.

What the SSB offers as evidence of jamming (PAPER.md, DESIGN.md §4):

- **EPNRE**: energy per null RE (TS 38.211 Table 7.4.3.1-1: 130 REs that carry
  nothing on a clean channel), per region and in total;
- **residual energy** after removing the known PSS, SSS and PBCH-DMRS with a
  per-symbol channel estimate, and the decision-directed PBCH residual: these are
  jamming + noise too, and quadruple the REs the energy test can use;
- **interference profile** across the 240 subcarriers and across the 4 symbols
  (narrowband vs wideband, pulsed vs continuous), and its DWT (db4);
- **PSS correlation**: the normalised trace around the peak and its DWT, the
  peak-to-sidelobe ratio and the margin to the other N_ID2; SSS and DMRS match
  quality.

All energies are in dB. "rel" features are relative to the SSB's own RE power
(gain-invariant: a receiver with another gain gives the same value); "site"
features are relative to a calibrated site baseline and are zero (with
``calibrated = 0``) when there is none.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pywt

from signals import nr

from . import dsp

FEATURE_VERSION = "ssbwatch-features-3"
PSS_TRACE_HALF = 32  # lags each side of the PSS peak in the trace (SSB-rate samples)
PSS_TRACE_LEN = 2 * PSS_TRACE_HALF + 1
DWT_WAVELET = "db4"
DWT_LEVEL = 3
PROFILE_GROUPS = 20  # interference profile: 240 subcarriers in 20 groups of 12 (one RB each)
EPS = 1e-30
# Channel model of the residual (delay domain): taps at these SSB-rate lags
# (samples, 1/(256 SCS) each) relative to the FFT timing. The grid's phase is
# referenced to the first strong path (dsp.ssb_grid_at); the window starts
# dsp.FFT_BACKOFF = 3 samples before the CP end, so paths from -6 (an earlier,
# weaker path) to +18 (one normal CP, TS 38.211 §5.3.1: 144/2048 of 256) are
# modelled. Fitting L = 25 taps per symbol instead of smoothing in frequency
# leaves the residual unbiased under any multipath inside the CP: its expected
# energy is sigma^2 (N_pilots - L) on the pilots and sigma^2 (1 + |P_k|^2) on
# the PBCH data REs (P the pilot-to-subcarrier interpolator), corrected below.
CHANNEL_TAPS = np.arange(-6, 19)
SITE_STATS = ("isr_db", "res_all_rel_db", "epnre_rel_db", "res_pss_rel_db", "res_sss_rel_db",
              "res_dmrs_rel_db", "res_pbch_rel_db", "snr_est_db")
SITE_Z = ("isr_db", "res_all_rel_db", "epnre_rel_db", "res_pbch_rel_db")
QUANT_KEEP = 0.05  # floor of an energy after the known quantisation noise is removed (x that noise)
SITE_MIN_SPREAD_DB = 0.1  # floor of the site spread in the z-scores (a few-SSB calibration)


def _db(x) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), EPS))


def _db1(x: float) -> float:
    """Scalar dB (10 log10), floored like :func:`_db`."""
    return 10.0 * math.log10(max(float(x), EPS))


@functools.lru_cache(maxsize=4)
def _dwt_operator(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The db4 DWT (DWT_LEVEL levels, periodization) of a length-``n`` vector as
    one matrix (the transform is linear): rows of ``W`` (n_coeffs, n) hold all
    coefficients, ``band`` (n_coeffs,) says which band each belongs to (0 the
    approximation, 1.. the detail bands in pywt.wavedec order). Built once from
    pywt itself, so the values are pywt's."""
    eye = np.eye(n)
    cols = [np.concatenate(pywt.wavedec(e, DWT_WAVELET, mode="periodization", level=DWT_LEVEL)) for e in eye]
    sizes = [c.size for c in pywt.wavedec(eye[0], DWT_WAVELET, mode="periodization", level=DWT_LEVEL)]
    w = np.ascontiguousarray(np.stack(cols, axis=1))
    band = np.repeat(np.arange(len(sizes)), sizes)
    w.setflags(write=False)
    band.setflags(write=False)
    return w, band


def _dwt_summary(v: np.ndarray, n_approx: int) -> np.ndarray:
    """db4 DWT (3 levels, periodization): the first ``n_approx`` approximation
    coefficients and the energy share of each detail band."""
    v = np.asarray(v, dtype=np.float64)
    w, band = _dwt_operator(v.size)
    c = np.einsum("ij,j->i", w, v)
    energies = np.bincount(band, weights=c * c, minlength=DWT_LEVEL + 1)
    n_a = int(np.count_nonzero(band == 0))
    a = np.zeros(n_approx)
    a[: min(n_approx, n_a)] = c[: min(n_approx, n_a)]
    share = energies[1:] / max(energies.sum(), EPS)
    return np.concatenate([a, share])


@dataclass(frozen=True)
class Baseline:
    """What a calibrated site contributes to the features (detector.baseline).

    median_db, spread_db : the clean SSBs' median and robust spread (1.4826 MAD)
        of each feature in :data:`SITE_STATS` (all gain-invariant: relative to the
        SSB's own power), by name.
    """

    median_db: dict
    spread_db: dict


@functools.lru_cache(maxsize=4)
def _re_codes(v: int) -> dict[str, np.ndarray]:
    """RE classification for PBCH-DMRS shift v = PCI mod 4 (read-only, cached).

    kind: (4, 240) int8, 0 null, 1 PSS, 2 SSS, 3 DMRS, 4 PBCH; and flat code
    arrays with their counts for one-pass energy sums (np.bincount).
    """
    maps = nr.ssb_re_indices(v)
    kind = np.zeros((4, 240), np.int8)
    for code, name in ((1, "pss"), (2, "sss"), (3, "dmrs"), (4, "pbch")):
        kind[maps[name]] = code
    region = np.full((4, 240), len(nr.NULL_REGIONS), np.int8)  # null regions 0..3, other 4
    for i, (sym, k0, k1) in enumerate(nr.NULL_REGIONS.values()):
        region[sym, k0 : k1 + 1] = i
    use = (kind <= 3)  # null + known REs: the interference estimate per symbol
    sym_use = np.where(use, np.arange(4)[:, None], 4).astype(np.int8)
    out = {"kind": kind, "kind_flat": kind.ravel().astype(np.intp), "region_flat": region.ravel().astype(np.intp),
           "sym_use_flat": sym_use.ravel().astype(np.intp)}
    out["kind_n"] = np.bincount(out["kind_flat"], minlength=5).astype(np.float64)
    out["region_n"] = np.bincount(out["region_flat"], minlength=5).astype(np.float64)
    out["sym_use_n"] = np.bincount(out["sym_use_flat"], minlength=5).astype(np.float64)
    for a in out.values():
        a.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4)
def _channel_fit(v: int) -> dict:
    """Per-symbol pilot sets and delay-domain interpolators for DMRS shift v.

    For symbol l: ``k`` the pilot subcarriers (PSS in 0; DMRS in 1, 3; SSS +
    DMRS in 2), ``P`` complex64 (240, n_pilots) with H(all k) = P @ (y_p x_p^*)
    (least squares over the CHANNEL_TAPS delays), ``gain`` (240,) = |P_k|^2 row
    energy (the estimation-noise factor per subcarrier) and ``dof`` = n_pilots - L;
    and ``pbch_gain_mean``, the mean |P_k|^2 over the PBCH data REs.
    """
    maps = nr.ssb_re_indices(v)
    dl, dk = maps["dmrs"]
    kk = np.arange(nr.SSB_N_SUBCARRIERS) - nr.SSB_CENTER_SUBCARRIER
    pilots = {0: maps["pss"][1], 1: dk[dl == 1], 2: np.sort(np.concatenate([maps["sss"][1], dk[dl == 2]])),
              3: dk[dl == 3]}
    out = {}
    basis_all = np.exp(-2j * np.pi * np.outer(kk, CHANNEL_TAPS) / dsp.SSB_FFT_SIZE)  # (240, L)
    for l, k in pilots.items():
        b = basis_all[k]  # (n_pilots, L)
        P = (basis_all @ np.linalg.pinv(b)).astype(np.complex64)
        gain = (np.abs(P.astype(np.complex128)) ** 2).sum(axis=1)
        for a in (P, gain, k):
            a.setflags(write=False)
        out[l] = {"k": np.asarray(k), "P": P, "gain": gain, "dof": int(k.size - CHANNEL_TAPS.size)}
    # mean |P_k|^2 over the PBCH data REs: the channel estimate's noise in the SSB power
    pl, pk = maps["pbch"]
    out["pbch_gain_mean"] = float(np.mean(np.stack([out[l]["gain"] for l in range(4)])[pl, pk]))
    return out


def residual_grid(grid: np.ndarray, pci: int, ibar: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-symbol channel estimate and the residual after removing the SSB.

    The channel of each symbol is fitted over the CHANNEL_TAPS delays to the
    known REs of that symbol (PSS; PBCH-DMRS; SSS + DMRS); PBCH REs are
    equalised with it and replaced by their hard QPSK decision.

    Returns
    -------
    resid : complex64 (4, 240) -- y - H x on every RE (x = 0 on null REs)
    h : complex64 (4, 240) -- channel estimate
    kind : int8 (4, 240) -- 0 null, 1 PSS, 2 SSS, 3 DMRS, 4 PBCH
    norm : float64 (4, 240) -- what each RE's expected |resid|^2 is in units of
        the noise + interference power per RE: 1 on null REs, 1 - L/N on
        pilots (the fit absorbs L of N degrees of freedom), 1 + |P_k|^2 on PBCH
        data REs (the channel estimate's own noise)
    """
    maps = nr.ssb_re_indices(pci)
    pss_l, pss_k = maps["pss"]
    sss_l, sss_k = maps["sss"]
    dl, dk = maps["dmrs"]
    pl, pk = maps["pbch"]
    v = pci % 4
    kind = _re_codes(v)["kind"]
    x = np.zeros((4, 240), np.complex64)
    x[pss_l, pss_k] = nr.pss(pci % 3)
    x[sss_l, sss_k] = nr.sss(pci)
    x[dl, dk] = nr.pbch_dmrs(pci, ibar)
    fit = _channel_fit(v)
    h = np.empty((4, 240), np.complex64)
    norm = np.ones((4, 240), np.float64)
    for l in range(4):
        f = fit[l]
        k = f["k"]
        # einsum (not @): a 240 x N matrix-vector product is faster in numpy's own
        # loop than through a multithreaded BLAS, whatever the thread settings
        h[l] = np.einsum("ij,j->i", f["P"], grid[l, k] * np.conj(x[l, k]))
        norm[l, k] = f["dof"] / k.size
    # PBCH: equalise, QPSK decision; its residual carries the estimate's noise too
    eq = grid[pl, pk] / np.where(np.abs(h[pl, pk]) > EPS, h[pl, pk], EPS)
    x[pl, pk] = ((np.sign(eq.real) + 1j * np.sign(eq.imag)) / np.sqrt(2)).astype(np.complex64)
    gains = np.stack([fit[l]["gain"] for l in range(4)])
    norm[pl, pk] = 1.0 + gains[pl, pk]
    resid = (grid - h * x).astype(np.complex64)
    return resid, h, kind, norm


def feature_names() -> list[str]:
    names = [
        "snr_est_db",  # S / EPNRE
        "isr_db",  # interference (null + pilot residual) / S
        "res_all_rel_db",  # residual over all 960 REs (incl. decision-directed PBCH) / S
        "epnre_rel_db",
        *[f"null_{r}_rel_db" for r in nr.NULL_REGIONS],
        "res_pss_rel_db",
        "res_sss_rel_db",
        "res_dmrs_rel_db",
        "res_pbch_rel_db",
        "res_vs_null_db",  # pilot residual / EPNRE: ~0 for white interference
        *[f"sym{l}_int_rel_db" for l in range(4)],  # per-symbol interference
        "sym_spread_db",  # max - min over symbols
        "profile_peak_db",  # strongest RB vs median RB of the interference profile
        "profile_top_share",  # energy share of the 2 strongest of 20 RBs
        *[f"profile_rb{i}_db" for i in range(PROFILE_GROUPS)],  # per-RB interference rel. to median
        *[f"profile_dwt_a{i}" for i in range(8)],
        *[f"profile_dwt_d{i}" for i in range(1, DWT_LEVEL + 1)],
        "pss_peak",
        "pss_psr_db",  # peak-to-sidelobe ratio
        "pss_nid2_margin_db",
        *[f"pss_dwt_a{i}" for i in range(12)],
        *[f"pss_dwt_d{i}" for i in range(1, DWT_LEVEL + 1)],
        "sss_metric",
        "dmrs_metric",
        "pbch_evm_db",
        "locked",  # PSS found at this SSB (0: flywheel position)
        "calibrated",
        # calibrated mode (else 0): this SSB minus the site's clean median, and
        # that rise in units of the site's clean spread; all relative to the
        # SSB's own power, so another receiver gain changes none of them
        *[f"site_{n}" for n in SITE_STATS],
        *[f"site_z_{n}" for n in SITE_Z],
    ]
    return names


FEATURE_NAMES = tuple(feature_names())
N_FEATURES = len(FEATURE_NAMES)
_NAME_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def ssb_features(
    grid: np.ndarray,
    pci: int,
    ibar: int,
    pss_trace: np.ndarray,
    *,
    nid2_margin_db: float = 0.0,
    sss_metric: float = 0.0,
    dmrs_metric: float = 0.0,
    locked: bool = True,
    baseline: Baseline | None = None,
    floor_per_re: float = 0.0,
) -> np.ndarray:
    """Feature vector of one SSB.

    Parameters
    ----------
    grid : complex64, shape (4, 240) -- REs of the SSB (CFO-corrected), file units
    pci : int, ibar : int -- the cell and ī_SSB the receiver decided
    pss_trace : float32, shape (65,) -- normalised PSS correlation rho2 at lags
        -32..32 around the PSS peak (SSB-rate samples) for the cell's N_ID2
    nid2_margin_db : rho2 of the best N_ID2 over the second best at the peak, dB
    sss_metric, dmrs_metric : normalised match quality 0..1 (dsp.identify)
    locked : whether the PSS was found at this SSB (else: flywheel position)
    baseline : the site's clean statistics (calibrated mode) or None
    floor_per_re : the receiver's known noise floor per RE in the grid's units
        (the quantisation noise of an integer recording, see
        :func:`detector.pipeline.quantization_floor_per_re`; 0 for cf32). It
        is removed from every interference energy, so that another receiver
        gain -- which moves the quantisation floor relative to the signal --
        does not look like interference. Energies are kept at least
        QUANT_KEEP x floor_per_re above zero.

    Returns
    -------
    float32, shape (N_FEATURES,), finite
    """
    grid = np.asarray(grid, dtype=np.complex64)
    if grid.shape != (4, 240):
        raise ValueError(f"grid must have shape (4, 240), got {grid.shape}")
    trace = np.asarray(pss_trace, dtype=np.float32)
    if trace.shape != (PSS_TRACE_LEN,):
        raise ValueError(f"pss_trace must have shape ({PSS_TRACE_LEN},), got {trace.shape}")
    resid, h, kind, norm = residual_grid(grid, pci, ibar)
    codes = _re_codes(pci % 4)
    # residual energy per RE in units of (noise + interference) power: unbiased
    p_res = (resid.real.astype(np.float64) ** 2 + resid.imag.astype(np.float64) ** 2) / norm  # (4, 240)
    floor = max(float(floor_per_re), 0.0)
    if not math.isfinite(floor):
        raise ValueError(f"floor_per_re must be finite, got {floor_per_re}")
    p_res -= floor  # interference + thermal noise, without the known quantisation noise
    lo = max(QUANT_KEEP * floor, EPS)
    p_flat = p_res.ravel()
    kn = codes["kind_n"]
    k_sum = np.bincount(codes["kind_flat"], weights=p_flat, minlength=5)  # null, PSS, SSS, DMRS, PBCH
    # SSB RE power: |H|^2 over the occupied REs less the estimate's own noise
    # (|P_k|^2 sigma^2 on PBCH REs, ~L/N sigma^2 elsewhere)
    h_flat = (h.real.astype(np.float64) ** 2 + h.imag.astype(np.float64) ** 2).ravel()
    h_sum = np.bincount(codes["kind_flat"], weights=h_flat, minlength=5)
    sigma2 = k_sum[:4].sum() / kn[:4].sum() + floor  # all the noise the estimate saw
    s = max(float(h_sum[1:].sum() / kn[1:].sum() - sigma2 * _channel_fit(pci % 4)["pbch_gain_mean"]),
            float(h_sum[1:].sum() / kn[1:].sum()) * 1e-3)
    db_s = _db1(s)
    k_sum = np.maximum(k_sum, lo * kn)
    e_null = k_sum[0] / kn[0]
    e_pil = k_sum[1:4].sum() / kn[1:4].sum()
    e_int = k_sum[:4].sum() / kn[:4].sum()
    rel = lambda e: _db1(max(e, lo)) - db_s  # noqa: E731
    f: list[float] = [db_s - _db1(e_null), rel(e_int), rel(p_flat.mean()), rel(e_null)]
    r_sum = np.bincount(codes["region_flat"], weights=p_flat, minlength=5)
    f.extend(rel(r_sum[i] / codes["region_n"][i]) for i in range(len(nr.NULL_REGIONS)))
    f.extend(rel(k_sum[c] / kn[c]) for c in (1, 2, 3, 4))
    f.append(_db1(e_pil) - _db1(e_null))
    # per-symbol interference (null + known-RE residual of each symbol)
    u_sum = np.bincount(codes["sym_use_flat"], weights=p_flat, minlength=5)
    sym_rel = _db(np.maximum(u_sum[:4] / codes["sym_use_n"][:4], lo)) - db_s
    f.extend(sym_rel.tolist())
    f.append(float(sym_rel.max() - sym_rel.min()))
    # interference profile over subcarriers: all REs' residual, mean over symbols, per RB
    sc_mean = np.maximum(p_res.mean(axis=0), lo)  # (240,)
    prof = sc_mean.reshape(PROFILE_GROUPS, -1).mean(axis=1)  # (20,)
    prof_db = _db(prof)
    med = float(np.median(prof_db))
    f.append(float(prof_db.max() - med))
    f.append(float(np.sort(prof)[-2:].sum() / max(prof.sum(), EPS)))
    f.extend((prof_db - med).tolist())
    sc_prof = _db(sc_mean) - med  # (240,)
    f.extend(_dwt_summary(sc_prof, 8).tolist())
    # PSS trace
    peak = float(trace[PSS_TRACE_HALF])
    side = np.concatenate([trace[: PSS_TRACE_HALF - 2], trace[PSS_TRACE_HALF + 3 :]])
    f.append(peak)
    f.append(float(_db(peak) - _db(side.max())))
    f.append(float(nid2_margin_db))
    f.extend(_dwt_summary(trace, 12).tolist())
    f.append(float(sss_metric))
    f.append(float(dmrs_metric))
    f.append(_db1(k_sum[4] / kn[4]) - _db1(h_sum[4] / kn[4] + EPS))
    f.append(1.0 if locked else 0.0)
    if baseline is None:
        f.extend([0.0] * (1 + len(SITE_STATS) + len(SITE_Z)))
    else:
        own = {n: f[_NAME_IDX[n]] for n in SITE_STATS}
        delta = {n: own[n] - float(baseline.median_db[n]) for n in SITE_STATS}
        f.append(1.0)
        f.extend(delta[n] for n in SITE_STATS)
        f.extend(delta[n] / max(float(baseline.spread_db[n]), SITE_MIN_SPREAD_DB) for n in SITE_Z)
    out = np.asarray(f, dtype=np.float32)
    if out.shape != (N_FEATURES,):  # pragma: no cover - guards the name list
        raise AssertionError(f"feature vector has {out.size} values, names list {N_FEATURES}")
    return np.nan_to_num(out, nan=0.0, posinf=100.0, neginf=-100.0)


_SUMMARY = tuple((n, FEATURE_NAMES.index(n)) for n in
                 ("snr_est_db", "isr_db", "epnre_rel_db", "profile_peak_db", "sym_spread_db"))


def raw_summary(vec: np.ndarray) -> dict:
    """The handful of features that records and alerts report, by name."""
    return {n: float(vec[i]) for n, i in _SUMMARY}
