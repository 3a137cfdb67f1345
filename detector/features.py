"""The one feature function shared by training and inference (versioned).

``ssb_features(grid, pci, ibar, pss_trace, ...)`` turns one received SSB (its
4 x 240 RE grid after CFO correction, and the PSS correlation trace around the
detected peak) into a fixed-length float32 vector. The model's ONNX metadata
stores :data:`FEATURE_VERSION`; a change of meaning or order bumps it.
``ssb_features_batch`` is the same computation for N SSBs at once (the
receiver's pipeline scores the SSBs of each pushed block together);
``ssb_features`` is its N = 1 case, and an SSB's features do not depend on the
other SSBs of its batch.

What the SSB offers as evidence of jamming (PAPER.md, DESIGN.md §4):

- **EPNRE**: energy per null RE (TS 38.211 Table 7.4.3.1-1: 130 REs that carry
  nothing on a clean channel), per region and in total;
- **residual energy** after removing the known PSS, SSS and PBCH-DMRS and the
  decided PBCH with a per-symbol delay-domain channel fit (a pilot pass, then a
  decision-directed pass over every occupied RE with a longer delay model): these
  are jamming + noise too, unbiased under multipath, and quadruple the REs the
  energy test can use;
- **interference profile** across the 240 subcarriers and across the 4 symbols
  (narrowband vs wideband, pulsed vs continuous), and its DWT (db4);
- **PSS correlation**: the normalised trace around the peak and its DWT, the
  peak-to-sidelobe ratio and the margin to the other N_ID2; SSS and DMRS match
  quality;
- **PSS/SSS channel gain**: the PSS's channel gain over the SSS's, as its distance
  from the EPRE ratios a gNB may use (0 or 3 dB, TS 38.213 §4.1). A fake PSS sent in
  time with the cell's own N_ID2 merges into the PSS channel estimate and leaves no
  residual, but it moves this ratio.

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

FEATURE_VERSION = "ssbwatch-features-8"
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
# modelled. This first pass fits L = 25 taps per symbol to its pilots (instead
# of smoothing in frequency), equalises the PBCH and decides its QPSK symbols.
CHANNEL_TAPS = np.arange(-6, 19)
# Second, decision-directed pass (_refit): once the PBCH is decided, symbols 1-3
# are known on every occupied RE (240, 223 and 240 of them), enough for a longer
# delay model: REFIT_TAPS reach 47 SSB-rate samples (6.1 us at 30 kHz SCS, 12 us
# at 15 kHz), where TDL-D/E paths at a 300 ns delay spread still carry energy.
# Paths beyond the 25-tap model otherwise stay in the residual as a floor tied to
# the channel realisation (-20..-30 dB under the SSB at 40 dB SNR), which
# differs from one recording of a site to the next. The PSS symbol (127
# contiguous pilots) takes the aligned mean of the symbol 1 and 3 estimates,
# scaled (alpha), plus the 25-tap correction of the first pass.
REFIT_TAPS = np.arange(-8, 48)
SITE_STATS = ("isr_db", "res_all_rel_db", "epnre_rel_db", "res_pss_rel_db", "res_sss_rel_db",
              "res_dmrs_rel_db", "res_pbch_rel_db", "snr_est_db", "pss_sss_gain_dev_db")
SITE_Z = ("isr_db", "res_all_rel_db", "epnre_rel_db", "res_pbch_rel_db", "pss_sss_gain_dev_db")
QUANT_KEEP = 0.05  # floor of an energy after the known quantisation noise is removed (x that noise)
PSS_SSS_EPRE_DB = (0.0, 10 * math.log10(2.0))  # PSS EPRE over SSS EPRE: 0 or 3 dB (TS 38.213 §4.1)
AUX_PSS_SHAPE = "pss_shape_db"  # ssb_features_batch(aux=...): beside the feature vector
# ... and the first cancelled neighbour's PSS channel gain over its symbols 1-3's on the PSS's
# subcarriers, dB (NaN where none is cancelled): a cell's PSS-to-SSS EPRE ratio is a fixed
# setting (PSS_SSS_EPRE_DB), and its PSS, SSS and PBCH go out on one antenna port, so a fake
# PSS with the neighbour's N_ID2, which the neighbour's own per-symbol fit takes for its PSS,
# raises it (pipeline.NB_PSS_JUMP_DB). On the same subcarriers, so that a frequency-selective
# channel, which the next recording redraws, weighs on both alike (stop 44: over all of symbols
# 1-3's, a neighbour 8 dB down through TDL multipath read 3.2-3.4 dB over its calibration on
# every clean SSB of the next recording; bench/receiver_eval.py analog --seed 3, site 8). The
# key was "nb_pss_gain_db" before: a baseline made then holds no reading of this one, and the
# rule waits for a new calibration.
AUX_NB_PSS = "nb_pss_sc_gain_db"
AUX_NULL_POWER = "null_re_power"  # ... and the null REs' mean energy (dsp.null_re_power of the grids)
SITE_MIN_SPREAD_DB = 0.1  # floor of the site spread in the z-scores (a few-SSB calibration)
# The band beside the SSB (feature version 8). Without a site baseline the SSB's own
# features cannot tell a jammer 20 dB under a 45 dB cell from a 25 dB cell's noise: both
# put the null REs 25 dB under the SSB. The recording's floor beside the SSB can, for every
# jammer that does not cover the whole recorded band (all but a barrage): the null REs
# stand over it. These are the quantities of the pipeline's band-excess rule
# (detector.pipeline.band_excess) given to the model, which weighs them against the rest
# (a co-channel cell off the serving cell's timing, or its traffic, raises them too).
# Where no floor was measured (an SSB that fills the recorded band, 7.68 Msps at 30 kHz
# SCS) band_known is 0, the floor is taken at the null REs' level: no excess.
BAND_FEATURES = ("band_known", "band_floor_rel_db", "band_over_db", "band_over_logz",
                 "band_near_over_db", "band_near_over_logz")
BAND_OVER_CLIP_DB = (-20.0, 40.0)  # band_*over_db are clipped to this range


def _db(x) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), EPS))


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


@functools.lru_cache(maxsize=4)
def _dwt_summary_plan(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(W.T (n, n_coeffs), band one-hot (n_coeffs, DWT_LEVEL + 1), number of
    approximation coefficients) of :func:`_dwt_operator` (read-only)."""
    w, band = _dwt_operator(n)
    onehot = (band[:, None] == np.arange(DWT_LEVEL + 1)[None, :]).astype(np.float64)
    wt = np.ascontiguousarray(w.T)
    for a in (wt, onehot):
        a.setflags(write=False)
    return wt, onehot, int(np.count_nonzero(band == 0))


def _dwt_summary_batch(v: np.ndarray, n_approx: int) -> np.ndarray:
    """db4 DWT (3 levels, periodization) of each row of ``v`` (N, n): the first
    ``n_approx`` approximation coefficients and the energy share of each detail
    band, (N, n_approx + DWT_LEVEL) float64."""
    v = np.asarray(v, dtype=np.float64)
    wt, onehot, n_a = _dwt_summary_plan(v.shape[1])
    c = v @ wt  # (N, n_coeffs)
    energies = (c * c) @ onehot  # (N, DWT_LEVEL + 1): approximation, details
    out = np.zeros((v.shape[0], n_approx + DWT_LEVEL))
    m = min(n_approx, n_a)
    out[:, :m] = c[:, :m]
    out[:, n_approx:] = energies[:, 1:] / np.maximum(energies.sum(axis=1, keepdims=True), EPS)
    return out


def _dwt_summary(v: np.ndarray, n_approx: int) -> np.ndarray:
    """:func:`_dwt_summary_batch` of one vector (n,): (n_approx + DWT_LEVEL,)."""
    return _dwt_summary_batch(np.asarray(v, dtype=np.float64)[None, :], n_approx)[0]


@dataclass(frozen=True)
class Baseline:
    """What a calibrated site contributes to the features (detector.baseline).

    median_db, spread_db : the clean SSBs' median and robust spread (1.4826 MAD)
        of each feature in :data:`SITE_STATS` (all gain-invariant: relative to the
        SSB's own power), by name.
    not_site : the statistics that are no property of this site (their
        calibrated columns read 0): ``pss_sss_gain_dev_db`` where a co-channel
        cell with the serving cell's N_ID2 adds its PSS to the serving one's
        (detector.baseline.ConfigBaseline.site).
    """

    median_db: dict
    spread_db: dict
    not_site: frozenset = frozenset()


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


def _delay_basis(taps: np.ndarray) -> np.ndarray:
    """The channel's delay-domain basis over the SSB's 240 subcarriers:
    complex128 (240, L), column j exp(-2 pi i k taps[j] / 256) (SSB-rate lags)."""
    kk = np.arange(nr.SSB_N_SUBCARRIERS) - nr.SSB_CENTER_SUBCARRIER
    return np.exp(-2j * np.pi * np.outer(kk, taps) / dsp.SSB_FFT_SIZE)


def _svd_fit(basis: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares fit of ``basis`` (240, L) on the subcarriers ``k``, in
    two stages of rank r from the SVD basis[k] = U S V^H: (u, interp) with u
    complex128 (len(k), r) orthonormal (the fit of y on k is u u^H y; its row
    norms are the leverages) and interp = B V S^-1, complex128 (240, r), so that
    H = interp (u^H y) on all 240 subcarriers (P = B pinv(B_k), as well
    conditioned as P itself)."""
    u, sv, vh = np.linalg.svd(basis[k], full_matrices=False)
    r = int(np.count_nonzero(sv > 1e-15 * sv.max()))  # the rank np.linalg.pinv keeps
    return u[:, :r], (basis @ vh[:r].conj().T) / sv[:r]


def _unit_phase(c: np.ndarray) -> np.ndarray:
    """c / |c| (complex, c's shape), 1 where c is 0."""
    ac = np.abs(c)
    return np.where(ac > 0, c / np.where(ac > 0, ac, 1.0), 1.0)


def _delay_fit(z: np.ndarray, proj_t: np.ndarray, interp_t: np.ndarray) -> np.ndarray:
    """H = interp (u^H z) for each SSB and symbol: z (m, S, n) the pilots' y x^*,
    proj_t (S, n, L) = (u^H).T, interp_t (S, L, 240); returns (m, S, 240) of
    z's dtype (the matrices are taken in it, :func:`_in`).

    complex64: one vector-matrix product per SSB and symbol (a stacked matmul),
    so that an SSB's values are bit for bit the same whatever SSBs share its
    batch (a stream pushed whole or in chunks gives the same records); a matrix
    product over the batch would round with the batch's blocking. complex128:
    one batched product per stage (its rounding differences, ~1e-16, do not
    reach the float32 features)."""
    proj_t, interp_t = _in(proj_t, z.dtype), _in(interp_t, z.dtype)
    if z.dtype == np.complex64:
        return np.matmul(np.matmul(z[:, :, None, :], proj_t), interp_t)[:, :, 0, :]
    return np.matmul(np.matmul(z.transpose(1, 0, 2), proj_t), interp_t).transpose(1, 0, 2)


# a read-only complex128 fit matrix's id -> (it, its complex64 copy); holding it
# keeps its id from being reused
_SINGLE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _in(a: np.ndarray, dtype) -> np.ndarray:
    """A read-only fit matrix (complex128, cached) in ``dtype``: itself, or its
    complex64 copy (made once)."""
    if dtype != np.complex64 or a.dtype == np.complex64:
        return a
    hit = _SINGLE.get(id(a))
    if hit is None or hit[0] is not a:
        c = a.astype(np.complex64)
        c.setflags(write=False)
        hit = _SINGLE[id(a)] = (a, c)
    return hit[1]


def _row_times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (m, n) @ b (n, r) row by row (each row's product alone: see
    :func:`_delay_fit`)."""
    return np.matmul(a[:, None, :], b)[:, 0, :]


@functools.lru_cache(maxsize=4)
def _channel_fit(v: int) -> dict:
    """Per-symbol pilot sets and the delay-domain channel fit for DMRS shift v.

    For symbol l the pilots ``k_l`` are the PSS in 0, the PBCH-DMRS in 1 and 3,
    SSS + DMRS in 2. The least-squares fit over the CHANNEL_TAPS delays maps the
    pilots' y_p x_p^* to H on all 240 subcarriers through the interpolator
    P_l = B pinv(B_l) (B the (240, L) delay basis, B_l its pilot rows). It is
    kept in two stages of rank L from the SVD B_l = U S V^H, P_l = (B V S^-1) U^H:
    a quarter of the operations of P_l itself, and as well conditioned (U is
    orthonormal, so the rows of B V S^-1 have the norms of P_l's rows; the tap
    weights pinv(B_l) themselves are not: L = 25 taps over the PSS's 127
    contiguous subcarriers are ill-posed, cond ~1e9).

    Returns a dict of read-only arrays:
    pil_idx : intp (4, n_max) -- flat RE index (l * 240 + k) of each symbol's
        pilots, padded to the longest pilot set (with RE 0)
    proj_t : complex128 (4, n_max, L) -- (U^H).T, zero on the padding rows
    interp_t : complex128 (4, L, 240) -- (B V S^-1).T
    pbch_idx : intp (432,) -- flat RE index of the PBCH data REs
    n_pilots : int (4,) -- pilots per symbol
    pbch_gain_mean : float -- mean |P_k|^2 over the PBCH data REs
    """
    maps = nr.ssb_re_indices(v)
    dl, dk = maps["dmrs"]
    pilots = {0: maps["pss"][1], 1: dk[dl == 1], 2: np.sort(np.concatenate([maps["sss"][1], dk[dl == 2]])),
              3: dk[dl == 3]}
    n_taps = CHANNEL_TAPS.size
    n_max = max(k.size for k in pilots.values())
    basis_all = _delay_basis(CHANNEL_TAPS)  # (240, L)
    pil_idx = np.zeros((4, n_max), np.intp)
    proj_t = np.zeros((4, n_max, n_taps), np.complex128)
    interp_t = np.zeros((4, n_taps, nr.SSB_N_SUBCARRIERS), np.complex128)
    gains = np.empty((4, 240), np.float64)
    for l, k in pilots.items():
        u, interp = _svd_fit(basis_all, k)
        r = u.shape[1]
        gains[l] = (np.abs(interp) ** 2).sum(axis=1)  # |P_k|^2: the estimate's noise gain
        pil_idx[l, : k.size] = l * nr.SSB_N_SUBCARRIERS + k
        proj_t[l, : k.size, :r] = u.conj()
        interp_t[l, :r] = interp.T
    pl, pk = maps["pbch"]
    n_pilots = np.array([pilots[l].size for l in range(4)])
    out = {"pil_idx": pil_idx, "proj_t": proj_t, "interp_t": interp_t, "pbch_idx": (pl * nr.SSB_N_SUBCARRIERS + pk).astype(np.intp),
           "n_pilots": n_pilots}
    for a in out.values():
        a.setflags(write=False)
    # mean |P_k|^2 over the PBCH data REs: the channel estimate's noise in the SSB power
    out["pbch_gain_mean"] = float(np.mean(gains[pl, pk]))
    return out


@functools.lru_cache(maxsize=64)
def _known_res(pci: int, ibar: int) -> tuple[np.ndarray, np.ndarray]:
    """The known REs of cell ``pci`` at ī_SSB ``ibar`` (read-only, cached): x (960,)
    complex64, the flat SSB grid with PSS, SSS and PBCH-DMRS (zero elsewhere),
    and conj(x) at the pilots of :func:`_channel_fit` (4, n_max), zero on the padding."""
    maps = nr.ssb_re_indices(pci)
    x = np.zeros((4, 240), np.complex64)
    x[maps["pss"]] = nr.pss(pci % 3)
    x[maps["sss"]] = nr.sss(pci)
    x[maps["dmrs"]] = nr.pbch_dmrs(pci, ibar)
    fit = _channel_fit(pci % 4)
    xf = x.ravel()
    xc = np.conj(xf[fit["pil_idx"]])
    xc[np.arange(xc.shape[1])[None, :] >= fit["n_pilots"][:, None]] = 0  # padding
    for a in (xf, xc):
        a.setflags(write=False)
    return xf, xc


def _occupied_fits(taps: np.ndarray, symbols: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The delay fit (``taps``) of each of ``symbols`` over its occupied REs
    (the same for every DMRS shift), stacked in that order: proj_t complex128
    (S, 240, L) ((U^H).T, zero rows off the occupied REs), interp_t complex128
    (S, L, 240), lev float64 (S, 240) (leverage, 0 off the occupied REs) and
    gain float64 (S, 240) (the estimate's noise gain per subcarrier)."""
    kind = _re_codes(0)["kind"]
    basis = _delay_basis(taps)
    n_s, n_taps = len(symbols), taps.size
    proj_t = np.zeros((n_s, nr.SSB_N_SUBCARRIERS, n_taps), np.complex128)
    interp_t = np.zeros((n_s, n_taps, nr.SSB_N_SUBCARRIERS), np.complex128)
    lev = np.zeros((n_s, nr.SSB_N_SUBCARRIERS))
    gain = np.zeros((n_s, nr.SSB_N_SUBCARRIERS))
    for i, l in enumerate(symbols):
        k = np.flatnonzero(kind[l] > 0)
        u, interp = _svd_fit(basis, k)
        r = u.shape[1]
        proj_t[i, k, :r] = u.conj()
        interp_t[i, :r] = interp.T
        lev[i, k] = (np.abs(u) ** 2).sum(axis=1)
        gain[i] = (np.abs(interp) ** 2).sum(axis=1)
    return proj_t, interp_t, lev, gain


@functools.lru_cache(maxsize=1)
def _refit() -> dict:
    """The second, decision-directed fit (same for every DMRS shift: the occupied
    REs of each symbol do not depend on it).

    Returns a dict of read-only arrays:
    proj_t : complex128 (3, 240, L2) -- (U^H).T of symbols 1-3 over their
        occupied subcarriers (rows of the others zero), L2 = REFIT_TAPS.size
    interp_t : complex128 (3, L2, 240) -- (B V S^-1).T
    lev : float64 (3, 240) -- each occupied RE's leverage in its symbol's fit
        (the share of its noise the fit absorbs; 0 on null REs)
    gain : float64 (3, 240) -- the estimate's noise gain at each subcarrier
    pss_k : intp (127,) -- the PSS subcarriers of symbol 0
    u0 : complex128 (127, r0) -- orthonormal basis of the first pass's CHANNEL_TAPS
        model on them (the 25-tap correction); lev0 : float64 (127,) its leverage
    """
    kind = _re_codes(0)["kind"]
    for v in range(1, 4):
        if not np.array_equal(_re_codes(v)["kind"] > 0, kind > 0):
            raise AssertionError("occupied SSB REs depend on the DMRS shift")
    proj_t, interp_t, lev, gain = _occupied_fits(REFIT_TAPS, (1, 2, 3))
    pss_k = np.flatnonzero(kind[0] > 0)
    u0 = np.ascontiguousarray(_svd_fit(_delay_basis(CHANNEL_TAPS), pss_k)[0])
    out = {"proj_t": proj_t, "interp_t": interp_t, "lev": lev, "gain": gain, "pss_k": pss_k.astype(np.intp),
           "u0": u0, "lev0": (np.abs(u0) ** 2).sum(axis=1)}
    for a in out.values():
        a.setflags(write=False)
    return out


def _refit_batch(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Second pass of the residual (see REFIT_TAPS) for m SSBs of known (and
    decided) REs: y complex64 (m, 4, 240) received, x complex64 (m, 4, 240) the
    SSB (unit modulus on every occupied RE, 0 on the null REs).

    Returns resid (m, 960) = y - H x; norm float64 (m, 960): each
    RE's expected |resid|^2 in units of the noise + interference power (1 on
    null REs; 1 - leverage on the fitted REs of symbols 1-3; on the PSS REs
    1 - leverage of the 25-tap + alpha fit, plus |alpha|^2 times the reference's
    own noise); h (m, 3, 240), the channel of symbols 1-3; and pss_shape
    float64 (m,), the energy per degree of freedom that the 25-tap correction
    takes from the PSS's residual beyond alpha href (:data:`PSS_SHAPE_NOTE`).
    resid and h in y's precision (complex64 for a grid, complex128 in the
    neighbour cancellation)."""
    rf = _refit()
    m = y.shape[0]
    cdt = np.result_type(y.dtype, np.complex64)
    z = dsp.cmul(y[:, 1:], np.conj(x[:, 1:])).astype(cdt, copy=False)  # (m, 3, 240): y x^* (|x| = 1), 0 on nulls
    h = _delay_fit(z, rf["proj_t"], rf["interp_t"])  # (m, 3, 240)
    resid = np.empty((m, 4, 240), cdt)
    resid[:, 1:] = y[:, 1:] - dsp.cmul(h, x[:, 1:])
    norm = np.ones((m, 4, 240))
    norm[:, 1:] -= rf["lev"][None]
    # symbol 0: the symbol 1 and 3 estimates aligned in phase (a per-symbol phase
    # of the SSB's frequency offset, a CFO or phase-noise residue) and averaged
    c = np.sum(dsp.cmul(np.conj(h[:, 2]), h[:, 0]), axis=1)
    rot = _unit_phase(c)
    k0 = rf["pss_k"]
    u0 = _in(rf["u0"], cdt)
    u0c, u0t = np.conj(u0), u0.T
    href = 0.5 * (h[:, 0, k0] + dsp.cmul(h[:, 2, k0], rot[:, None].astype(cdt)))  # (m, 127)
    z0 = dsp.cmul(y[:, 0, k0], np.conj(x[:, 0, k0])).astype(cdt, copy=False)
    # least squares z0 = alpha href + U c: alpha on the parts outside span(U)
    hp = href - _row_times(_row_times(href, u0c), u0t)
    zp = z0 - _row_times(_row_times(z0, u0c), u0t)
    e = np.sum(hp.real * hp.real + hp.imag * hp.imag, axis=1)
    ok = e > EPS
    alpha = np.where(ok, np.sum(dsp.cmul(np.conj(hp), zp), axis=1) / np.where(ok, e, 1.0), 0.0).astype(cdt)
    r0 = zp - dsp.cmul(alpha[:, None], hp)  # residual of y x^* on the PSS REs
    # the PSS channel's own shape: what the correction takes beyond alpha href alone
    eh = np.sum(href.real * href.real + href.imag * href.imag, axis=1)
    oh = eh > EPS
    alpha_a = np.where(oh, np.sum(dsp.cmul(np.conj(href), z0), axis=1) / np.where(oh, eh, 1.0), 0.0).astype(cdt)
    ra = z0 - dsp.cmul(alpha_a[:, None], href)
    pss_shape = np.maximum(np.sum(ra.real * ra.real + ra.imag * ra.imag, axis=1, dtype=np.float64)
                           - np.sum(r0.real * r0.real + r0.imag * r0.imag, axis=1, dtype=np.float64), 0.0) / u0.shape[1]
    resid[:, 0] = y[:, 0]
    resid[:, 0, k0] = dsp.cmul(r0, x[:, 0, k0])
    lev_a = np.where(ok[:, None], (hp.real * hp.real + hp.imag * hp.imag) / np.where(ok, e, 1.0)[:, None], 0.0)
    g_ref = 0.25 * (rf["gain"][0, k0] + rf["gain"][2, k0])  # noise gain of the averaged reference
    a2 = (alpha.real * alpha.real + alpha.imag * alpha.imag)[:, None]
    norm[:, 0, k0] = (1.0 - rf["lev0"] - lev_a) + a2 * (1.0 - rf["lev0"]) * g_ref
    return resid.reshape(m, 960), norm.reshape(m, 960), h, pss_shape


# PSS_SHAPE_NOTE: the PSS, SSS and PBCH of an SS/PBCH block go out on one antenna port
# (TS 38.211 §7.4.3.1), so over its four symbols the PSS sees the channel of the others but
# for a gain (the PSS-to-SSS EPRE, TS 38.213 §4.1) and a phase. The residual's PSS fit
# (alpha href + the 25-tap correction) absorbs a PSS of the same N_ID2 from another
# transmitter -- a PSS spoofer, or a co-channel cell's PSS -- as if it were channel; the
# energy the correction takes beyond alpha href, per degree of freedom, is ~ the noise per
# RE for a lone cell, and that of the foreign PSS with one (pipeline.PSS_SHAPE_JUMP_Z).


# ---------------------------------------------------------------------------
# A known co-channel neighbour cell (another PCI on the same SSB resources,
# time-aligned as in a synchronised TDD network) is cancelled: its PSS, SSS,
# PBCH-DMRS and decided PBCH are fitted with their own channel, alternating with
# the serving cell's fit (DESIGN.md §4: never mixed with the serving cell).
# Without it the neighbour stays in the residual: a floor at its power (-12..-3 dB
# under the SSB) that hides a weak jammer. Only cells the site saw while clean are
# cancelled (the baseline's neighbours): a fake cell that appears later keeps its
# residual.
NB_ITERATIONS = 3  # serving / neighbour fits per symbol, alternating (decisions re-made between)
NB_DD_ITERATIONS = 3  # before those: both cells' channels over symbols 1-3 at once, alternating
NB_ROBUST_ROUNDS = 2  # refits of the neighbour's first channel without its outlying pilots
NB_OUTLIER = 6.0  # a pilot is an outlier above this many times the median |residual|^2 (~1.5 % of clean ones)
NB_NONE_DB = -60.0  # nb_rel_db when no neighbour is cancelled


@functools.lru_cache(maxsize=1)
def _nb_fit() -> dict:
    """The neighbour's full fit: CHANNEL_TAPS over every occupied RE of each
    symbol (the same for any DMRS shift). Read-only arrays: proj_t complex128
    (4, 240, L) ((U^H).T, zero rows off the occupied REs), interp_t complex128
    (4, L, 240), lev float64 (4, 240) (leverage, 0 off the occupied REs)."""
    proj_t, interp_t, lev, _ = _occupied_fits(CHANNEL_TAPS, (0, 1, 2, 3))
    out = {"proj_t": proj_t, "interp_t": interp_t, "lev": lev}
    for a in out.values():
        a.setflags(write=False)
    return out


def _decide_qpsk(t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Hard QPSK decisions (TS 38.211 §5.1.3) of t / h: the signs of t h^* (those
    of t / h when |h|^2 > 0), of t itself where there is no channel (|h| <= EPS).
    complex64, the shape of t."""
    eq = dsp.cmul(t, np.conj(h))
    tiny = h.real * h.real + h.imag * h.imag <= EPS * EPS
    if tiny.any():
        eq[tiny] = t[tiny]
    d = np.empty(t.shape + (2,), np.float32)
    np.sign(eq.real, out=d[..., 0])
    np.sign(eq.imag, out=d[..., 1])
    d *= _QPSK_SCALE
    return d.view(np.complex64)[..., 0]


NB_IBAR_PRIOR = 1.5  # another ī_SSB must match the neighbour this many times better than the serving one's


def _nb_ibar(t: np.ndarray, pcin: np.ndarray, ibar: np.ndarray) -> np.ndarray:
    """The neighbour's ī_SSB per SSB: the PBCH-DMRS hypothesis (TS 38.211
    §7.4.1.4) that best matches t (m, 960) -- the received SSB less the serving
    cell -- summed non-coherently over groups of 4 DMRS REs (about one RB: the
    neighbour's own channel phase and per-symbol phase do not cancel it); the
    serving cell's ī_SSB ``ibar`` (m,) unless another matches NB_IBAR_PRIOR
    times better. A neighbour whose SSB lies on the serving one's symbols is
    frame-synchronised with it, and sends there the same SSB index in the
    same half frame (TS 38.213 §4.1), so the same ī_SSB; the match alone is
    weak where both cells' DMRS share REs (same v = PCI mod 4: a neighbour 3 dB
    down, its best hypothesis only 1.0-1.1 times its second; wrong on 7 of 24
    SSBs of one simulated site, whose neighbour then stayed uncancelled and
    read as jamming)."""
    m = t.shape[0]
    rows = np.arange(m)[:, None]
    idx = np.stack([_dmrs_flat(int(pn) % 4) for pn in pcin])  # (m, 144): each SSB's neighbour DMRS REs
    tg = t[rows, idx]
    score = np.empty((8, m))
    for ib in range(8):
        xg = np.stack([_known_res(int(pn), ib)[0] for pn in pcin])[rows, idx]
        c = dsp.cmul(tg, np.conj(xg)).reshape(m, -1, 4).sum(axis=2)
        score[ib] = np.sum(c.real * c.real + c.imag * c.imag, axis=1)
    best = np.argmax(score, axis=0)
    ibar = np.asarray(ibar, np.int64)
    keep = NB_IBAR_PRIOR * score[ibar, np.arange(m)] >= score[best, np.arange(m)]
    return np.where(keep, ibar, best)


@functools.lru_cache(maxsize=4)
def _common_fit(v: int) -> dict:
    """One channel for symbols 1-3 from all their pilots (SSS and PBCH-DMRS of
    DMRS shift v; the PSS is left out, its EPRE may be 3 dB over the SSS's,
    TS 38.213 §4.1, while the PBCH-DMRS EPRE equals the SSS's): the channel of
    an SSB changes little over its four symbols but for a common phase per
    symbol (a CFO or phase-noise residue), so each tap is fitted to three
    symbols' pilots instead of one's. CHANNEL_TAPS: the PBCH-DMRS comb (every
    4th subcarrier) makes REFIT_TAPS' longer span ill-conditioned. Read-only
    arrays: flat (P,) flat RE index of the stacked pilots, sym (P,) their
    symbol (1..3), proj_t complex128 (P, L), interp_t (L, 240)."""
    fit = _channel_fit(v)
    flat = np.concatenate([fit["pil_idx"][l, : int(fit["n_pilots"][l])] for l in (1, 2, 3)])
    return _stacked_fit(flat, CHANNEL_TAPS)


def _stacked_fit(flat: np.ndarray, taps: np.ndarray) -> dict:
    """One delay fit (``taps``) over the REs ``flat`` (flat indices l * 240 + k
    of several symbols, one channel for all): read-only flat (P,), sym (P,),
    proj_t complex128 (P, r) ((U^H).T) and interp_t complex128 (r, 240)."""
    flat = np.asarray(flat, np.intp)
    u, interp = _svd_fit(_delay_basis(taps), flat % nr.SSB_N_SUBCARRIERS)
    out = {"flat": flat, "sym": flat // nr.SSB_N_SUBCARRIERS, "proj_t": np.ascontiguousarray(u.conj()),
           "interp_t": np.ascontiguousarray(interp.T)}
    for a in out.values():
        a.setflags(write=False)
    return out


def _common_channel(z: np.ndarray, h: np.ndarray, v: int, robust: int = 0) -> np.ndarray:
    """Channel of symbols 1-3 from :func:`_common_fit`: z complex (m, 960)
    y x^* (x the cell's known REs), h complex128 (m, 4, 240)
    the per-symbol first pass, from which each symbol's phase relative to
    symbol 2 is taken (over the SSS subcarriers, where every estimate is
    backed by pilots). Returns complex128 (m, 3, 240)."""
    cf = _common_fit(v)
    k0 = slice(56, 183)  # the SSS subcarriers (TS 38.211 Table 7.4.3.1-1)
    c = np.sum(np.conj(h[:, 2:3, k0]) * h[:, 1:4, k0], axis=2)  # (m, 3)
    return _stacked_channel(z, _unit_phase(c), cf, robust)


def _stacked_channel(z: np.ndarray, rot: np.ndarray, cf: dict, robust: int = 0) -> np.ndarray:
    """The channel of symbols 1-3 fitted at once (``cf`` from
    :func:`_stacked_fit`) to z complex (m, 960) with each symbol's phase rot
    complex (m, 3) taken off, and put back: complex128 (m, 3, 240). ``robust``
    refits leave out the REs whose residual stands out (NB_OUTLIER)."""
    zs = (z[:, cf["flat"]] * np.conj(rot[:, cf["sym"] - 1])).astype(np.complex128)  # (m, P)
    a0 = zs @ cf["proj_t"]  # (m, r): Q^H z
    a = a0
    if robust:
        m, n_p = zs.shape
        q = cf["proj_t"].conj()  # (P, r): Q, orthonormal columns
        qz = np.vstack([q, np.zeros((1, q.shape[1]))])  # a zero row for the padding
        zz = np.hstack([zs, np.zeros((m, 1))])
        rows = np.arange(m)[:, None]
    for _ in range(robust):
        # pilots hit by another cell's wrong decision stand out of the fit: drop
        # them. Q^H W Q = I - Q_o^H Q_o and Q^H W z = Q^H z - Q_o^H z_o with o the
        # few dropped pilots (W = 1 but on them), padded to the most of any SSB
        r = zs - a @ q.T
        e = r.real * r.real + r.imag * r.imag
        out = e > NB_OUTLIER * np.median(e, axis=1, keepdims=True)
        k = max(int(out.sum(axis=1).max()), 1)
        idx = np.where(out, np.arange(n_p)[None], n_p)
        idx.sort(axis=1)
        idx = idx[:, :k]  # (m, k): each SSB's dropped pilots, then the zero row
        qo = qz[idx]  # (m, k, r)
        qoh = np.conj(qo).transpose(0, 2, 1)
        g = np.eye(q.shape[1]) - qoh @ qo  # (m, r, r)
        a = np.linalg.solve(g, (a0 - (qoh @ zz[rows, idx][..., None])[..., 0])[..., None])[..., 0]
    hc = a @ cf["interp_t"]  # (m, 240)
    return rot[:, :, None] * hc[:, None, :]


@functools.lru_cache(maxsize=1)
def _common_dd_fit() -> dict:
    """:func:`_common_fit` over every occupied RE of symbols 1-3 (for a cell
    whose PBCH is decided; the same for any DMRS shift), with REFIT_TAPS:
    flat (P,), sym (P,), proj_t complex128 (P, L2), interp_t (L2, 240)."""
    kind = _re_codes(0)["kind"]
    return _stacked_fit(np.concatenate([l * nr.SSB_N_SUBCARRIERS + np.flatnonzero(kind[l] > 0) for l in (1, 2, 3)]),
                        REFIT_TAPS)


NB_DELAY_SEARCH = np.arange(-24, 25)  # candidate delays of the neighbour's strongest path (SSB-rate samples)


@functools.lru_cache(maxsize=1)
def _nb_delay_steering() -> np.ndarray:
    """exp(+2 pi i (k - 120) d / 256) for the PSS / SSS subcarriers k = 56..182
    and each d of NB_DELAY_SEARCH: complex128 (127, D), read-only."""
    kk = np.arange(56, 183) - nr.SSB_CENTER_SUBCARRIER
    e = np.exp(2j * np.pi * np.outer(kk, NB_DELAY_SEARCH) / dsp.SSB_FFT_SIZE)
    e.setflags(write=False)
    return e


def _nb_ramp(t: np.ndarray, xn: np.ndarray) -> np.ndarray:
    """Per-RE phase ramp exp(+2 pi i (k - 120) d / 256) (complex128 (m, 960))
    that moves the neighbour's channel by d = min(its strongest path, 0)
    SSB-rate samples: found on its PSS (symbol 0) and SSS (symbol 2), both on
    subcarriers 56..182 (TS 38.211 Table 7.4.3.1-1), in t (m, 960), the
    received SSB less the serving cell, with xn (m, 960) its known REs. A
    neighbour is only time-aligned to within the CP, and one that arrives
    earlier than the serving cell's first path falls outside CHANNEL_TAPS."""
    m = t.shape[0]
    k = np.arange(56, 183)
    z = t.reshape(m, 4, 240)[:, (0, 2)][:, :, k] * np.conj(xn.reshape(m, 4, 240)[:, (0, 2)][:, :, k])
    c = z @ _nb_delay_steering()  # (m, 2, D)
    prof = np.sum(c.real * c.real + c.imag * c.imag, axis=1)
    d = np.minimum(NB_DELAY_SEARCH[np.argmax(prof, axis=1)], 0)
    kall = np.arange(nr.SSB_N_SUBCARRIERS) - nr.SSB_CENTER_SUBCARRIER
    ramp = np.exp(2j * np.pi * np.outer(d, kall) / dsp.SSB_FFT_SIZE)  # (m, 240)
    return np.tile(ramp, (1, 4))


def _common_dd(z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Channel of symbols 1-3 from all their occupied REs (:func:`_common_dd_fit`):
    z complex128 (m, 960) the target times x^* (x the cell's decided SSB), h
    complex128 (m, 3, 240) the last estimate, whose symbol 2 gives the shape
    against which each symbol's phase is measured. Returns complex128 (m, 3, 240)."""
    cf = _common_dd_fit()
    z3 = z.reshape(-1, 4, 240)[:, 1:]
    c = np.sum(np.conj(h[:, 1:2]) * z3, axis=2)  # (m, 3): each symbol's phase against symbol 2's shape
    return _stacked_channel(z, _unit_phase(c), cf)


_QPSK_POINTS = (np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / np.sqrt(2)).astype(np.complex64)


def _decide_joint(y: np.ndarray, ha: np.ndarray, hb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint maximum-likelihood QPSK decisions (TS 38.211 §5.1.3) of two cells'
    symbols sharing REs: the pair (a, b) of the 16 that minimises
    |y - ha a - hb b|^2, RE by RE. y, ha, hb complex (...,); returns a, b
    complex64 of that shape. Unlike deciding one cell with the other's last
    decisions removed, an error of one cell does not carry into the other's.

    For each a the best b is the hard decision of e_a = (y - ha a) hb^*, and
    with |a| = |b| = 1 the metric is, up to terms common to all pairs,
    -2 Re(a^* ha^* y) - 2 s (|Re e_a| + |Im e_a|) (s = 1/sqrt 2): 4 candidates
    in single precision (a decision only ever differs at an exact tie)."""
    y = y.astype(np.complex64, copy=False)
    ha = ha.astype(np.complex64)
    hbc = np.conj(hb).astype(np.complex64)
    d = np.conj(ha) * y
    p = y * hbc
    c = ha * hbc * _QPSK_SCALE
    # a = s (ar + j ai), in _QPSK_POINTS' order: e_a = p - a c
    er1, er2 = p.real - c.real, p.real + c.real  # ar = +1 / -1, before ai
    ei1, ei2 = p.imag - c.imag, p.imag + c.imag
    ers = (er1 + c.imag, er1 - c.imag, er2 + c.imag, er2 - c.imag)
    eis = (ei1 - c.real, ei1 + c.real, ei2 - c.real, ei2 + c.real)
    dr, di = d.real, d.imag
    lin = (dr + di, dr - di, di - dr, -dr - di)  # Re(a^* d) / s
    f = np.stack([lin[i] + np.abs(ers[i]) + np.abs(eis[i]) for i in range(4)])
    best = np.argmax(f, axis=0)
    er, ei = np.choose(best, ers), np.choose(best, eis)
    b = np.empty(er.shape + (2,), np.float32)
    b[..., 0] = np.where(er >= 0, _QPSK_SCALE, -_QPSK_SCALE)
    b[..., 1] = np.where(ei >= 0, _QPSK_SCALE, -_QPSK_SCALE)
    return _QPSK_POINTS[best], b.view(np.complex64)[..., 0]


@functools.lru_cache(maxsize=16)
def _pbch_overlap(v: int, vn: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat RE indices where the PBCH data of a cell of DMRS shift v and of one
    of shift vn meet (both), and where only the first / only the second carries
    PBCH data (TS 38.211 §7.4.3.1: the PBCH-DMRS comb moves with v). Read-only."""
    pa, pb = _channel_fit(v)["pbch_idx"], _channel_fit(vn)["pbch_idx"]
    out = (np.intersect1d(pa, pb), np.setdiff1d(pa, pb), np.setdiff1d(pb, pa))
    for a in out:
        a.setflags(write=False)
    return out


def _decide_both(yd: np.ndarray, hs: np.ndarray, hn: np.ndarray, x: np.ndarray, xn: np.ndarray,
                 v: int, pbn_rows: list) -> None:
    """Both cells' PBCH data decided in place (x, xn complex64 (m, 960)) from
    yd complex128 (m, 960) and the channels hs, hn (m, 960): jointly
    (:func:`_decide_joint`) on the REs where both carry PBCH data; where only
    one does, that one with the other's known RE (a PBCH-DMRS, TS 38.211
    §7.4.1.4) removed. v: the serving cell's DMRS shift; pbn_rows: (the
    neighbour's DMRS shift, its rows: a slice or an index array) per neighbour
    DMRS shift."""
    for vn, r_idx in pbn_rows:
        both, only_s, only_n = _pbch_overlap(v, vn)
        if isinstance(r_idx, slice):
            rb, rs, rn = (slice(None), both), (slice(None), only_s), (slice(None), only_n)
        else:
            rb, rs, rn = np.ix_(r_idx, both), np.ix_(r_idx, only_s), np.ix_(r_idx, only_n)
        x[rb], xn[rb] = _decide_joint(yd[rb], hs[rb], hn[rb])
        x[rs] = _decide_qpsk(yd[rs] - dsp.cmul(hn[rs], xn[rs]), hs[rs])
        xn[rn] = _decide_qpsk(yd[rn] - dsp.cmul(hs[rn], x[rn]), hn[rn])


@functools.lru_cache(maxsize=4)
def _dmrs_flat(v: int) -> np.ndarray:
    """Flat RE indices (l * 240 + k) of the PBCH-DMRS for shift v, in symbol and
    subcarrier order (read-only)."""
    dl, dk = nr.ssb_re_indices(v)["dmrs"]
    idx = np.sort((dl * nr.SSB_N_SUBCARRIERS + dk).astype(np.intp))
    idx.setflags(write=False)
    return idx


def _cancel_batch(y: np.ndarray, x: np.ndarray, h1: np.ndarray, pcin: np.ndarray, v: int,
                  ibar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residual of m SSBs with a known neighbour cell cancelled.

    y complex64 (m, 960) received; x complex64 (m, 960) the serving SSB with its
    decided PBCH; h1 complex (m, 960) the serving cell's first-pass channel;
    pcin int (m,) the neighbour's PCI; v the serving cell's DMRS shift (which
    places its PBCH data REs); ibar int (m,) the serving cell's ī_SSB (the
    neighbour's unless its DMRS says otherwise: :func:`_nb_ibar`).

    Both cells' PBCH data share REs, so everything hangs on deciding them
    right. The first channels come from each cell's pilots over symbols 1-3 at
    once (:func:`_common_channel`; the neighbour's without the pilots that a
    wrong serving decision hits); then the PBCH of both is decided jointly
    (:func:`_decide_both`) and both channels refitted from all their REs
    (:func:`_common_dd`), NB_DD_ITERATIONS times. Last, the serving cell's
    second pass (:func:`_refit_batch`) and the neighbour's fit per symbol
    (:func:`_nb_fit`) alternate NB_ITERATIONS times. A neighbour 6 dB under the
    serving cell, 30 dB over the noise, is taken from 6-8 dB to ~24 dB under
    it (~13 dB with the per-symbol fits alone). Returns resid complex128 (m, 960), norm
    float64 (m, 960) (1 less both fits' leverage), the neighbour's mean
    channel power over its occupied REs, float64 (m,), and the serving cell's
    pss_shape (:func:`_refit_batch`, the neighbour removed), float64 (m,)."""
    m = y.shape[0]
    pbch_idx = _channel_fit(v)["pbch_idx"]
    yd = y.astype(np.complex128)
    x = x.copy()
    # the serving cell's channel on symbols 1-3 from all its pilots at once (the
    # per-symbol first pass fits 25 taps to 60 PBCH-DMRS that the neighbour hits)
    known = x.copy()
    known[:, pbch_idx] = 0
    h1 = h1.reshape(m, 4, 240).astype(np.complex128)
    h1[:, 1:] = _common_channel(yd * np.conj(known), h1, v)
    h1 = h1.reshape(m, 960)
    x[:, pbch_idx] = _decide_qpsk(yd[:, pbch_idx], h1[:, pbch_idx])
    t = yd - dsp.cmul(h1, x)  # the received SSB less the serving cell (first pass)
    ibn = _nb_ibar(t, pcin, ibar)
    xn = np.stack([_known_res(int(pn), int(ib))[0] for pn, ib in zip(pcin, ibn)])  # (m, 960) known REs
    # the neighbour's first pass: its own pilots, per symbol (symbol 0, and each
    # symbol's phase), then symbols 1-3 at once, leaving out the pilots where a
    # wrong decision of the serving PBCH stands out; then both PBCH decided. Its
    # fits see its channel moved to its strongest path when that comes before the
    # serving cell's (CHANNEL_TAPS start 6 samples before the serving cell's)
    rr = _nb_ramp(t, xn)  # (m, 960)
    rr3 = rr.reshape(m, 4, 240)
    hn = np.empty((m, 960), np.complex128)
    pbn_rows = []
    for vn, rows in _by_shift(pcin % 4):
        fit = _channel_fit(vn)
        r_idx = np.arange(m)[rows]
        xc = np.stack([_known_res(int(pcin[i]), int(ibn[i]))[1] for i in r_idx])
        z = dsp.cmul(t[rows][:, fit["pil_idx"]], xc) * rr[rows][:, fit["pil_idx"]]
        hr = _delay_fit(z, fit["proj_t"], fit["interp_t"])  # (k, 4, 240), the moved channel
        hr[:, 1:] = _common_channel(t[rows] * np.conj(xn[rows]) * rr[rows], hr, vn, robust=NB_ROBUST_ROUNDS)
        hn[rows] = (hr * np.conj(rr3[rows])).reshape(len(r_idx), 960)
        pbn_rows.append((vn, rows))
    _decide_both(yd, h1, hn, x, xn, v, pbn_rows)
    # decision-directed: each cell's channel from all its REs of symbols 1-3 with
    # the other cell removed, alternating, the decisions re-made in between
    hs3 = h1.reshape(m, 4, 240)[:, 1:]
    for _ in range(NB_DD_ITERATIONS):
        hs3 = _common_dd((yd - dsp.cmul(hn, xn)) * np.conj(x), hs3)
        hs = np.zeros((m, 4, 240), np.complex128)
        hs[:, 1:] = hs3
        hs = hs.reshape(m, 960)
        hn3 = hn.reshape(m, 4, 240) * rr3  # moved
        hn3[:, 1:] = _common_dd((yd - dsp.cmul(hs, x)) * np.conj(xn) * rr, hn3[:, 1:])
        hn = (hn3 * np.conj(rr3)).reshape(m, 960)
        _decide_both(yd, hs, hn, x, xn, v, pbn_rows)
    nf = _nb_fit()
    fitted_n = dsp.cmul(hn, xn)
    for it in range(NB_ITERATIONS):
        target = yd - fitted_n
        r_s, n_s, h_s, shape_s = _refit_batch(target.reshape(m, 4, 240), x.reshape(m, 4, 240))
        t = yd - (target - r_s)  # y less the serving cell's second-pass fit
        zn = dsp.cmul(t.reshape(m, 4, 240), np.conj(xn.reshape(m, 4, 240))) * rr3
        hn = (_delay_fit(zn, nf["proj_t"], nf["interp_t"]) * np.conj(rr3)).reshape(m, 960)
        fitted_n = dsp.cmul(hn, xn)
        if it == NB_ITERATIONS - 1:
            resid = t - fitted_n
            occ = nf["lev"] > 0  # (4, 240)
            hp = np.where(occ.reshape(1, 960), hn.real * hn.real + hn.imag * hn.imag, 0.0)
            # the neighbour's PSS gain over its other symbols' on the PSS's subcarriers (AUX_NB_PSS;
            # the same subcarriers, so that a frequency-selective channel weighs on both alike)
            hp3 = hp.reshape(m, 4, 240)
            g0 = hp3[:, 0].sum(axis=1) / max(int(occ[0].sum()), 1)
            same = occ[1:] & occ[0][None, :]  # (3, 240)
            g13 = np.where(same[None], hp3[:, 1:], 0.0).sum(axis=(1, 2)) / max(int(same.sum()), 1)
            nb_pss = 10 * np.log10(np.maximum(g0, 1e-300) / np.maximum(g13, 1e-300))
            return resid, _norm_less_nb_fit(n_s), hp.sum(axis=1) / occ.sum(), shape_s, nb_pss
        # decisions again with the better channels (both cells' PBCH, jointly)
        hs = np.zeros((m, 4, 240), np.complex128)
        hs[:, 1:] = h_s
        _decide_both(yd, hs.reshape(m, 960), hn, x, xn, v, pbn_rows)
        fitted_n = dsp.cmul(hn, xn)
    raise AssertionError("unreachable")


def _cancel_extra(t: np.ndarray, nrm: np.ndarray, pcin: np.ndarray, ibar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One more co-timed cell taken out of a residual: t complex128 (m, 960), the
    received SSB less the serving cell and the neighbours cancelled before
    (:func:`_cancel_batch`), nrm float64 (m, 960) its norm; pcin int (m,) the
    cell's PCI, ibar int (m,) the serving cell's ī_SSB (the cell's unless its
    DMRS says otherwise: :func:`_nb_ibar`). The cell's pilots (PSS, SSS,
    PBCH-DMRS) give its channel per symbol (:func:`_channel_fit`), its PBCH is
    decided with it, and the per-symbol fit over all its REs (:func:`_nb_fit`)
    is taken out. In a synchronised network several cells sit on the serving
    SSB's REs; each one left in is a floor under the SSB that moves with its
    fading (a calibrated site with two co-timed neighbours, only the first
    cancelled: 15 of 264 clean SSBs called jammed). Returns (t less the cell,
    complex128; nrm less its fit's leverage, each symbol's occupied REs at their
    mean, at least 0.1)."""
    m = t.shape[0]
    ibn = _nb_ibar(t, pcin, ibar)
    xn = np.stack([_known_res(int(pn), int(ib))[0] for pn, ib in zip(pcin, ibn)])
    for vn, rows in _by_shift(pcin % 4):
        fit = _channel_fit(vn)
        r_idx = np.arange(m)[rows]
        xc = np.stack([_known_res(int(pcin[i]), int(ibn[i]))[1] for i in r_idx])
        tr = t[rows]
        h = _delay_fit(tr[:, fit["pil_idx"]] * xc, fit["proj_t"], fit["interp_t"]).reshape(len(r_idx), 960)
        pb = fit["pbch_idx"]
        xn[np.ix_(r_idx, pb)] = _decide_qpsk(tr[:, pb], h[:, pb])
    nf = _nb_fit()
    hn = _delay_fit((t * np.conj(xn)).reshape(m, 4, 240), nf["proj_t"], nf["interp_t"]).reshape(m, 960)
    return t - hn * xn, _norm_less_nb_fit(nrm)


def _norm_less_nb_fit(nrm: np.ndarray) -> np.ndarray:
    """A residual's norm float64 (m, 960) less the leverage of a neighbour's
    per-symbol fit (:func:`_nb_fit`). The fits are not orthogonal RE by RE
    (their leverages may add up to ~1 on an edge RE): each symbol's occupied
    REs get their mean norm, at least 0.1. float64 (m, 960)."""
    m = nrm.shape[0]
    lev = _nb_fit()["lev"]
    occ = lev > 0  # (4, 240)
    out = nrm.reshape(m, 4, 240) - lev[None]
    mean_occ = np.where(occ[None], out, 0.0).sum(axis=2) / occ.sum(axis=1)[None]  # (m, 4)
    return np.where(occ[None], np.maximum(mean_occ, 0.1)[:, :, None], out).reshape(m, 960)


_QPSK_SCALE = np.float32(1 / np.sqrt(2))  # QPSK amplitude per component (TS 38.211 §5.1.3)


def _per_ssb(a, n: int, dtype=np.float64) -> np.ndarray:
    """A scalar or a length-n sequence as an (n,) array."""
    a = np.asarray(a, dtype=dtype)
    return np.full(n, a, dtype) if a.ndim == 0 else a.reshape(n)


def _neighbour_table(nb, n: int) -> np.ndarray:
    """Neighbour cells per SSB as int64 (n, K): from a scalar, a length-n
    sequence (one each) or n rows of K (-1: none)."""
    a = np.asarray(nb, dtype=np.int64)
    if a.ndim == 2:
        if a.shape[0] != n:
            raise ValueError(f"neighbour_pcis must have {n} rows, got {a.shape}")
        return a
    return _per_ssb(a, n, np.int64)[:, None]


def _by_shift(v_all: np.ndarray):
    """(v, rows) for each DMRS shift v in ``v_all``: rows a slice of all when
    there is one shift (the usual case: one tracked cell), else an index array."""
    v0 = int(v_all[0])
    if (v_all == v0).all():
        return [(v0, slice(None))]
    return [(int(v), np.flatnonzero(v_all == v)) for v in np.unique(v_all)]


def residual_batch(grids: np.ndarray, pcis: np.ndarray, ibars: np.ndarray, nb_pcis=None):
    """:func:`residual_grid` of N SSBs, flat: (resid, h) complex64 (N, 960),
    inv_norm float64 (N, 960) (1 / norm), nb_pow float64 (N,): the channel
    power of the neighbour cell cancelled from each SSB (``nb_pcis``, int (N,),
    -1 for none; see :func:`_cancel_batch`), 0 where none -- or (N, K): K cells
    per SSB, the first cancelled jointly with the serving cell, each further
    one from what those left (:func:`_cancel_extra`) -- pss_shape float64 (N,)
    (:func:`_refit_batch`), and nb_pss float64 (N,): the first cancelled
    neighbour's PSS channel gain over that of its symbols 1-3, dB
    (:data:`AUX_NB_PSS`; NaN where none is cancelled). Vectorised over the SSBs
    of each DMRS shift v (one group while a cell is tracked).

    The fits run in single precision, the grid's own (its FFT left it at
    ~1e-7 of the SSB's power), with products that are each SSB's alone
    (:func:`_delay_fit`): an SSB's values are the same whichever SSBs share its
    batch (a stream pushed whole or in chunks gives the same records). The
    neighbour cancellation runs in double precision."""
    n = grids.shape[0]
    g = grids.reshape(n, 4 * 240)
    if nb_pcis is not None:
        nb_pcis = _neighbour_table(nb_pcis, n)
    v_all = pcis % 4
    nb_pow = np.zeros(n)
    nb_pss = np.full(n, np.nan)
    pss_shape = np.zeros(n)
    resid = np.empty((n, 960), np.complex64)
    h = np.empty((n, 960), np.complex64)
    inv_norm = np.empty((n, 960), np.float64)
    pl, il = pcis.tolist(), ibars.tolist()
    for v, rows in _by_shift(v_all):
        fit = _channel_fit(v)
        known = [_known_res(pl[i], il[i]) for i in (range(n) if isinstance(rows, slice) else rows)]
        gv = g[rows]
        m = len(known)
        # per symbol: H = (B V S^-1) (U^H (y_p x_p^*))
        z = dsp.cmul(gv[:, fit["pil_idx"]], np.stack([k[1] for k in known]))  # (m, 4, n_max) complex64
        hv = _delay_fit(z, fit["proj_t"], fit["interp_t"]).reshape(m, 960)
        # PBCH: equalise and decide (QPSK)
        pb = fit["pbch_idx"]
        x = np.stack([k[0] for k in known])
        x[:, pb] = _decide_qpsk(gv[:, pb], hv[:, pb])
        # second pass on the decided SSB (REFIT_TAPS): the residual and its norm;
        # with a known neighbour cell, that cell cancelled too
        # (the plain second pass only where no neighbour is cancelled: the
        # cancellation makes its own)
        cancel = np.zeros(m, bool)
        if nb_pcis is not None:
            nbk = nb_pcis[rows]  # (m, K)
            nbv = nbk[:, 0]
            cancel = (nbv >= 0) & (nbv != pcis[rows])
        r2 = np.empty((m, 960), np.complex64)
        n2 = np.empty((m, 960), np.float64)
        sh = np.empty(m)
        plain = np.flatnonzero(~cancel)
        if plain.size:
            gp, xp = (gv, x) if plain.size == m else (gv[plain], x[plain])
            r2[plain], n2[plain], _, sh[plain] = _refit_batch(gp.reshape(-1, 4, 240), xp.reshape(-1, 4, 240))
        sel = np.flatnonzero(cancel)
        if sel.size:
            rs, ns, pw, sh[sel], nbp = _cancel_batch(gv[sel], x[sel], hv[sel], nbv[sel], v, ibars[rows][sel])
            nb_pow[np.arange(n)[rows][sel]] = pw
            nb_pss[np.arange(n)[rows][sel]] = nbp
            for k in range(1, nbk.shape[1]):  # more co-timed cells, each out of what the others left
                pk = nbk[sel, k]
                more = np.flatnonzero((pk >= 0) & (pk != pcis[rows][sel]) & (nbk[sel, :k] != pk[:, None]).all(axis=1))
                if more.size:
                    rs[more], ns[more] = _cancel_extra(rs[more], ns[more], pk[more], ibars[rows][sel][more])
            r2[sel], n2[sel] = rs, ns
        pss_shape[rows] = sh
        resid[rows] = r2
        h[rows] = hv
        inv_norm[rows] = 1.0 / np.maximum(n2, 1e-3)
    return resid, h, inv_norm, nb_pow, pss_shape, nb_pss


def residual_grid(grid: np.ndarray, pci: int, ibar: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-symbol channel estimate and the residual after removing the SSB.

    First pass: the channel of each symbol is fitted over the CHANNEL_TAPS
    delays to the known REs of that symbol (PSS; PBCH-DMRS; SSS + DMRS); PBCH
    REs are equalised with it and replaced by their hard QPSK decision. Second
    pass (:func:`_refit_batch`): symbols 1-3 are refitted over REFIT_TAPS on all
    their occupied REs, the PSS symbol on the aligned mean of symbols 1 and 3
    (scaled) plus the 25-tap correction; the residual is that of the second pass.

    Returns
    -------
    resid : complex64 (4, 240) -- y - H x on every RE (x = 0 on null REs)
    h : complex64 (4, 240) -- the first pass's channel estimate
    kind : int8 (4, 240) -- 0 null, 1 PSS, 2 SSS, 3 DMRS, 4 PBCH
    norm : float64 (4, 240) -- what each RE's expected |resid|^2 is in units of
        the noise + interference power per RE: 1 on null REs, 1 - leverage on
        the refitted REs (the share of their noise the fit absorbs)
    """
    grid = np.asarray(grid, dtype=np.complex64)
    resid, h, inv_norm, *_ = residual_batch(grid.reshape(1, 4, 240), np.array([int(pci)]), np.array([int(ibar)]))
    v = int(pci) % 4
    return (resid.reshape(4, 240).astype(np.complex64), h.reshape(4, 240).astype(np.complex64),
            _re_codes(v)["kind"], 1.0 / inv_norm.reshape(4, 240))


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
        # channel gain seen on the PSS (symbol 0) over that on the SSS (symbol 2), the
        # same 127 subcarriers, as its distance from the nearest PSS/SSS EPRE ratio a
        # gNB may use (PSS_SSS_EPRE_DB): ~0 on a clean channel whichever the cell uses;
        # a co-timed fake PSS with the cell's N_ID2 adds to the PSS estimate alone
        "pss_sss_gain_dev_db",
        # a known neighbour cell cancelled from the residual (calibrated mode, the
        # baseline's neighbours): its channel power over the SSB's, dB (NB_NONE_DB: none)
        "nb_rel_db",
        # the captured band beside the SSB (the receiver's band floor, dsp.band_floors_per_re:
        # the noise and whatever else the recording holds outside the SSB's 20 RBs), see
        # _band_features: whether it was measured, its level against the SSB's power, and the
        # null REs' energy over it (dB and a signed log of its z), against the whole band's
        # floor and against the floor within three RBs of the SSB
        *BAND_FEATURES,
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
# The feature versions a model may have been trained on, each as the columns of this
# version's vector that such a model reads (detector.model selects them): version 8 added
# BAND_FEATURES; a model trained on version 7 (the model shipped from stop 48 to stop 57,
# and any model trained with ssbwatch until then) reads the vector without them -- the
# same values, computed the same way, as version 7 gave it. A site baseline's statistics
# (SITE_STATS) are the same in both.
FEATURE_VERSIONS: dict[str, tuple[int, ...]] = {
    FEATURE_VERSION: tuple(range(N_FEATURES)),
    "ssbwatch-features-7": tuple(i for i, n in enumerate(FEATURE_NAMES) if n not in BAND_FEATURES),
}


def feature_names_of(version: str) -> tuple[str, ...]:
    """The feature names a model of feature ``version`` reads, in its order
    (KeyError: a version this ssbwatch cannot feed)."""
    return tuple(FEATURE_NAMES[i] for i in FEATURE_VERSIONS[version])


@functools.lru_cache(maxsize=4)
def _energy_plan(v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The energy statistics of :func:`ssb_features_batch` for DMRS shift v as
    matrix products of the per-RE energies (read-only):

    a : (960, 17) -- residual energy sums: columns 0-4 per kind (null, PSS, SSS,
        DMRS, PBCH), 5-9 per null region (0-3, other), 10-14 per symbol of the
        null + known REs (0-3, other), 15 all REs, 16 the mean over the null +
        known REs (the noise the channel estimate saw)
    ah : (960, 4) -- |H|^2 means over the occupied REs, the PBCH REs, the PSS
        REs and the SSS REs
    kn : (5,) -- REs per kind
    w : (16, 16) -- columns 0-15 of ``a`` (the kind sums floored) to the mean
        energies: interference (null + known), all REs, null, the 4 null regions,
        the residual of PSS, SSS, DMRS, PBCH, the 4 symbols, the known REs
    """
    codes = _re_codes(v)
    a = np.zeros((960, 17))
    r = np.arange(960)
    for j, name in enumerate(("kind_flat", "region_flat", "sym_use_flat")):
        a[r, 5 * j + codes[name]] = 1.0
    a[:, 15] = 1.0
    kn = a[:, :5].sum(axis=0)
    rn = a[:, 5:10].sum(axis=0)
    un = a[:, 10:15].sum(axis=0)
    kind = codes["kind_flat"]
    a[:, 16] = np.where(kind <= 3, 1.0 / kn[:4].sum(), 0.0)
    ah = np.zeros((960, 4))
    ah[:, 0] = np.where(kind >= 1, 1.0 / kn[1:].sum(), 0.0)
    ah[:, 1] = np.where(kind == 4, 1.0 / kn[4], 0.0)
    ah[:, 2] = np.where(kind == 1, 1.0 / kn[1], 0.0)
    ah[:, 3] = np.where(kind == 2, 1.0 / kn[2], 0.0)
    w = np.zeros((16, 16))
    w[:4, 0] = 1.0 / kn[:4].sum()  # interference: null + known REs
    w[15, 1] = 1.0 / 960  # all REs
    w[0, 2] = 1.0 / kn[0]  # null REs (EPNRE)
    for i in range(4):
        w[5 + i, 3 + i] = 1.0 / rn[i]  # null regions
        w[1 + i, 7 + i] = 1.0 / kn[1 + i]  # PSS, SSS, DMRS, PBCH
        w[10 + i, 11 + i] = 1.0 / un[i]  # symbols
    w[1:4, 15] = 1.0 / kn[1:4].sum()  # known REs (pilots)
    for x in (a, ah, kn, w):
        x.setflags(write=False)
    return a, ah, kn, w


def ssb_features_batch(
    grids: np.ndarray,
    pcis,
    ibars,
    pss_traces: np.ndarray,
    *,
    nid2_margin_db=0.0,
    sss_metric=0.0,
    dmrs_metric=0.0,
    locked=True,
    baselines=None,
    floor_per_re=0.0,
    neighbour_pcis=None,
    band_floor_per_re=float("nan"),
    band_floor_bins=0,
    band_floor_near_per_re=float("nan"),
    band_floor_near_bins=0,
    aux: dict | None = None,
) -> np.ndarray:
    """Feature vectors of N SSBs at once (the one feature computation;
    :func:`ssb_features` is its N = 1 case).

    Parameters
    ----------
    grids : complex64, shape (N, 4, 240) -- each SSB's REs (CFO-corrected), file units
    pcis, ibars : int, shape (N,) -- the cell and ī_SSB the receiver decided
    pss_traces : float32, shape (N, 65) -- normalised PSS correlation rho2 at lags
        -32..32 around the PSS peak (SSB-rate samples) for the cell's N_ID2
    nid2_margin_db, sss_metric, dmrs_metric, locked, floor_per_re : scalars or
        shape (N,) (see :func:`ssb_features`)
    baselines : None, one :class:`Baseline` for all, or a sequence of N
        (Baseline or None)
    neighbour_pcis : None, or int scalar / shape (N,): a neighbour cell to
        cancel from each SSB's residual (-1: none; see :func:`_cancel_batch`),
        or shape (N, K): K of them each (:func:`residual_batch`)
    band_floor_per_re, band_floor_near_per_re : scalars or shape (N,) -- the
        recording's floor per RE beside the SSB, over the whole band and within
        three RBs of it (the grid's units; dsp.band_floors_per_re); NaN: not
        measured. band_floor_bins, band_floor_near_bins: the FFT bins each was
        taken from (its precision). See :func:`_band_features`.
    aux : None, or a dict that gets the statistics kept beside the feature
        vector (the model does not see them; the site rules of
        :mod:`detector.pipeline` do): ``AUX_PSS_SHAPE`` float64 (N,), the PSS
        channel's own shape (:data:`PSS_SHAPE_NOTE`) over the null REs' energy
        per RE, dB; ``AUX_NULL_POWER`` float64 (N,), the null REs' mean energy
        (dsp.null_re_power)

    Returns
    -------
    float32, shape (N, N_FEATURES), finite
    """
    grids = np.asarray(grids, dtype=np.complex64)
    if grids.ndim != 3 or grids.shape[1:] != (4, 240):
        raise ValueError(f"grids must have shape (N, 4, 240), got {grids.shape}")
    n = grids.shape[0]
    traces = np.asarray(pss_traces, dtype=np.float32)
    if traces.shape != (n, PSS_TRACE_LEN):
        raise ValueError(f"pss_traces must have shape ({n}, {PSS_TRACE_LEN}), got {traces.shape}")
    pcis = _per_ssb(pcis, n, np.int64)
    ibars = _per_ssb(ibars, n, np.int64)
    floor = _per_ssb(floor_per_re, n)
    if not np.isfinite(floor).all():
        raise ValueError(f"floor_per_re must be finite, got {floor_per_re}")
    floor = np.maximum(floor, 0.0)
    if n == 0:
        if aux is not None:
            aux[AUX_PSS_SHAPE] = np.zeros(0)
            aux[AUX_NB_PSS] = np.zeros(0)
            aux[AUX_NULL_POWER] = np.zeros(0)
        return np.zeros((0, N_FEATURES), np.float32)
    resid, h, inv_norm, nb_pow, pss_shape, nb_pss = residual_batch(grids, pcis, ibars, neighbour_pcis)
    # residual energy per RE in units of (noise + interference) power: unbiased,
    # less the known quantisation noise (interference + thermal noise)
    p = (resid.real * resid.real + resid.imag * resid.imag) * inv_norm
    p -= floor[:, None]
    lo = np.maximum(QUANT_KEEP * floor, EPS)  # (N,)
    hp = (h.real * h.real + h.imag * h.imag).astype(np.float64)  # (float64: the products below are batch-wide)
    # energy statistics (kind, null region, symbol sums and their means) of the
    # residual and of |H|^2, as matrix products
    v_all = pcis % 4
    sums = np.empty((n, 17))
    hmean = np.empty((n, 4))  # |H|^2 over the occupied REs, the PBCH, PSS and SSS REs
    e1 = np.empty((n, 16))
    gain_mean = np.empty(n)
    for v, rows in _by_shift(v_all):
        a, ah, kn, w = _energy_plan(v)
        sums[rows] = p[rows] @ a
        hmean[rows] = hp[rows] @ ah
        # kind sums floored at lo per RE, then the mean energies
        x = sums[rows, :16]
        x[:, :5] = np.maximum(x[:, :5], lo[rows, None] * kn)
        e1[rows] = x @ w
        gain_mean[rows] = _channel_fit(v)["pbch_gain_mean"]
    # SSB RE power: |H|^2 over the occupied REs less the estimate's own noise
    # (|P_k|^2 sigma^2 on PBCH REs, ~L/N sigma^2 elsewhere)
    sigma2 = sums[:, 16] + floor  # all the noise the estimate saw
    s_raw = hmean[:, 0]
    d1 = _db(np.maximum(e1, lo[:, None]))  # the 16 mean energies of _energy_plan, dB
    d2 = _db(np.stack([np.maximum(s_raw - sigma2 * gain_mean, s_raw * 1e-3), hmean[:, 1] + EPS], axis=1))
    db_s = d2[:, 0]

    f = np.zeros((n, N_FEATURES), np.float64)
    ix = _NAME_IDX
    # isr, res_all, epnre, the 4 null regions, the residual of PSS, SSS, DMRS, PBCH
    # (relative to the SSB power), then the 4 symbols; the order of FEATURE_NAMES
    f[:, ix["isr_db"] : ix["res_pbch_rel_db"] + 1] = d1[:, :11] - db_s[:, None]
    sym_rel = d1[:, 11:15] - db_s[:, None]
    f[:, ix["sym0_int_rel_db"] : ix["sym3_int_rel_db"] + 1] = sym_rel
    f[:, ix["snr_est_db"]] = db_s - d1[:, 2]
    f[:, ix["res_vs_null_db"]] = d1[:, 15] - d1[:, 2]
    f[:, ix["sym_spread_db"]] = sym_rel.max(axis=1) - sym_rel.min(axis=1)
    # interference profile over subcarriers: all REs' residual, mean over symbols, per RB
    sc_mean = np.maximum(p.reshape(n, 4, 240).mean(axis=1), lo[:, None])  # (N, 240)
    prof = sc_mean.reshape(n, PROFILE_GROUPS, -1).mean(axis=2)  # (N, 20)
    prof_db = _db(prof)
    # median of the 20 RBs (the mean of the middle two: np.median's value) and the
    # 2 strongest, from one sort (dB is monotonic: the same order)
    sp = np.sort(prof, axis=1)
    srt = _db(sp)
    med = 0.5 * (srt[:, PROFILE_GROUPS // 2 - 1] + srt[:, PROFILE_GROUPS // 2]) if PROFILE_GROUPS % 2 == 0 \
        else srt[:, PROFILE_GROUPS // 2]
    f[:, ix["profile_peak_db"]] = srt[:, -1] - med
    f[:, ix["profile_top_share"]] = sp[:, -2:].sum(axis=1) / np.maximum(prof.sum(axis=1), EPS)
    f[:, ix["profile_rb0_db"] : ix["profile_rb0_db"] + PROFILE_GROUPS] = prof_db - med[:, None]
    f[:, ix["profile_dwt_a0"] : ix["profile_dwt_a0"] + 8 + DWT_LEVEL] = \
        _dwt_summary_batch(_db(sc_mean) - med[:, None], 8)
    # PSS trace
    peak = traces[:, PSS_TRACE_HALF]
    side = np.concatenate([traces[:, : PSS_TRACE_HALF - 2], traces[:, PSS_TRACE_HALF + 3 :]], axis=1)
    f[:, ix["pss_peak"]] = peak
    f[:, ix["pss_psr_db"]] = _db(peak) - _db(side.max(axis=1))
    f[:, ix["pss_nid2_margin_db"]] = nid2_margin_db
    f[:, ix["pss_dwt_a0"] : ix["pss_dwt_a0"] + 12 + DWT_LEVEL] = _dwt_summary_batch(traces, 12)
    f[:, ix["sss_metric"]] = sss_metric
    f[:, ix["dmrs_metric"]] = dmrs_metric
    f[:, ix["pbch_evm_db"]] = d1[:, 10] - d2[:, 1]
    g = _db(hmean[:, 2] + EPS) - _db(hmean[:, 3] + EPS)
    f[:, ix["pss_sss_gain_dev_db"]] = np.min(np.abs(g[:, None] - np.asarray(PSS_SSS_EPRE_DB)[None, :]), axis=1)
    f[:, ix["nb_rel_db"]] = np.where(nb_pow > 0, _db(nb_pow + EPS) - db_s, NB_NONE_DB)
    null_power = dsp.null_re_power(grids)
    f[:, ix[BAND_FEATURES[0]] : ix[BAND_FEATURES[-1]] + 1] = _band_features(
        null_power, db_s, _per_ssb(band_floor_per_re, n), _per_ssb(band_floor_bins, n),
        _per_ssb(band_floor_near_per_re, n), _per_ssb(band_floor_near_bins, n))
    f[:, ix["locked"]] = np.asarray(locked, dtype=bool)
    if aux is not None:  # (the null REs' energy per RE with the known floor back in: all the noise)
        aux[AUX_PSS_SHAPE] = _db(np.maximum(pss_shape, EPS)) - _db(np.maximum(e1[:, 2], lo) + floor)
        aux[AUX_NB_PSS] = nb_pss
        aux[AUX_NULL_POWER] = null_power
    if baselines is not None:
        bases = [baselines] * n if isinstance(baselines, Baseline) else list(baselines)
        if len(bases) != n:
            raise ValueError(f"baselines: {len(bases)} for {n} SSBs")
        _site_features(f, bases)
    out = f.astype(np.float32)
    if not np.isfinite(out).all():
        np.nan_to_num(out, nan=0.0, posinf=100.0, neginf=-100.0, copy=False)
    return out


def _band_features(null_per_re: np.ndarray, cell_db: np.ndarray, floor: np.ndarray, n_bins: np.ndarray,
                   near: np.ndarray, near_bins: np.ndarray) -> np.ndarray:
    """The BAND_FEATURES columns, float64 (N, 6): ``null_per_re`` the null REs'
    mean energy (grid units, the known floors in), ``cell_db`` the SSB's power
    per RE (dB), ``floor`` / ``near`` the band floor per RE over the band and
    near the SSB (NaN: not measured) and ``n_bins`` / ``near_bins`` their bins,
    all shape (N,). band_known: 1 where the band's floor was measured;
    band_floor_rel_db: that floor against the SSB's power (where not measured,
    the null REs' level); band_over_db: the null REs over the floor, dB,
    clipped to BAND_OVER_CLIP_DB (0 where not measured); band_over_logz: its
    z -- (null / floor - 1) over the standard deviation of that ratio for
    dsp.N_NULL_RES exponential REs and a floor of ``n_bins`` bins
    (dsp.BAND_FLOOR_REL_VAR), as the pipeline's band-excess rule reads it --
    as sign(z) log(1 + |z|); the same two against the near floor."""
    null = np.maximum(np.asarray(null_per_re, np.float64), EPS)
    out = np.zeros((null.shape[0], len(BAND_FEATURES)))
    for j, (fl, nb) in enumerate(((floor, n_bins), (near, near_bins))):
        fl = np.asarray(fl, np.float64)
        ok = np.isfinite(fl) & (fl > 0)
        ratio = null / np.where(ok, fl, null)
        sd = np.sqrt(1.0 / dsp.N_NULL_RES + dsp.BAND_FLOOR_REL_VAR / np.maximum(np.asarray(nb, np.float64), 1.0))
        z = (ratio - 1.0) / sd
        out[:, 2 + 2 * j] = np.where(ok, np.clip(_db(ratio), *BAND_OVER_CLIP_DB), 0.0)
        out[:, 3 + 2 * j] = np.where(ok, np.sign(z) * np.log1p(np.abs(z)), 0.0)
        if j == 0:
            out[:, 0] = ok
            out[:, 1] = _db(np.where(ok, fl, null)) - np.asarray(cell_db, np.float64)
    return out


_SITE_IDX = np.array([_NAME_IDX[n] for n in SITE_STATS])
_SITE_Z_POS = np.array([SITE_STATS.index(n) for n in SITE_Z])


def _site_features(f: np.ndarray, bases: list) -> None:
    """Fill the calibrated-mode columns of the feature rows ``f`` (N, N_FEATURES)
    whose baseline is not None (in place): this SSB minus the site's clean
    median, and that rise in units of the site's clean spread."""
    rows = [i for i, b in enumerate(bases) if b is not None]
    if not rows:
        return
    by_id = {}
    for i in rows:
        b = bases[i]
        if id(b) not in by_id:
            by_id[id(b)] = (np.array([float(b.median_db[n]) for n in SITE_STATS]),
                            np.array([max(float(b.spread_db[n]), SITE_MIN_SPREAD_DB) for n in SITE_Z]),
                            np.array([n not in b.not_site for n in SITE_STATS], np.float32))
    med = np.stack([by_id[id(bases[i])][0] for i in rows])
    spread = np.stack([by_id[id(bases[i])][1] for i in rows])
    delta = (f[rows][:, _SITE_IDX] - med) * np.stack([by_id[id(bases[i])][2] for i in rows])
    c0 = _NAME_IDX["calibrated"]
    f[rows, c0] = 1.0
    f[np.ix_(rows, range(c0 + 1, c0 + 1 + len(SITE_STATS)))] = delta
    zc = _NAME_IDX[f"site_z_{SITE_Z[0]}"]
    f[np.ix_(rows, range(zc, zc + len(SITE_Z)))] = delta[:, _SITE_Z_POS] / spread


# The columns that are an energy relative to the SSB's own power (the cell's
# |H|^2): a fade of F dB raises each by F and lowers snr_est_db by F.
_REL_TO_S = np.array([_NAME_IDX[n] for n in FEATURE_NAMES[_NAME_IDX["isr_db"] : _NAME_IDX["res_pbch_rel_db"] + 1]]
                     + [_NAME_IDX[f"sym{l}_int_rel_db"] for l in range(4)] + [_NAME_IDX["pbch_evm_db"]]
                     + [_NAME_IDX["band_floor_rel_db"]])


def fade_compensated(f: np.ndarray, fade_db: float, baseline: Baseline | None) -> np.ndarray:
    """The feature vector ``f`` (float32, (N_FEATURES,)) of an SSB as it would
    read with the cell fade_db stronger and the same interference and noise:
    the energies relative to the SSB power lowered by fade_db, snr_est_db and
    the cancelled neighbour's level adjusted, the calibrated columns recomputed
    against ``baseline``. What fading does to the PSS correlation and the match
    metrics is left as it is. Returns a new float32 vector."""
    g = f.astype(np.float64)
    g[_REL_TO_S] -= fade_db
    g[_NAME_IDX["snr_est_db"]] += fade_db
    nb = _NAME_IDX["nb_rel_db"]
    if g[nb] > NB_NONE_DB:
        g[nb] -= fade_db
    if baseline is not None:
        rows = g[None]
        _site_features(rows, [baseline])
        g = rows[0]
    return g.astype(np.float32)


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
    neighbour_pci: int = -1,
    band_floor_per_re: float = float("nan"),
    band_floor_bins: int = 0,
    band_floor_near_per_re: float = float("nan"),
    band_floor_near_bins: int = 0,
) -> np.ndarray:
    """Feature vector of one SSB (:func:`ssb_features_batch` with N = 1).

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
    neighbour_pci : a co-channel cell the site knows (the baseline's
        neighbours), cancelled from the residual; -1 for none
    band_floor_per_re, band_floor_bins, band_floor_near_per_re, band_floor_near_bins :
        the recording's floor beside the SSB and its bins (NaN: not measured;
        see :func:`ssb_features_batch`)

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
    if not math.isfinite(float(floor_per_re)):
        raise ValueError(f"floor_per_re must be finite, got {floor_per_re}")
    return ssb_features_batch(grid[None], [pci], [ibar], trace[None], nid2_margin_db=nid2_margin_db,
                              sss_metric=sss_metric, dmrs_metric=dmrs_metric, locked=locked,
                              baselines=None if baseline is None else [baseline], floor_per_re=floor_per_re,
                              neighbour_pcis=None if neighbour_pci < 0 else [neighbour_pci],
                              band_floor_per_re=band_floor_per_re, band_floor_bins=band_floor_bins,
                              band_floor_near_per_re=band_floor_near_per_re,
                              band_floor_near_bins=band_floor_near_bins)[0]


_SUMMARY = tuple((n, FEATURE_NAMES.index(n)) for n in
                 ("snr_est_db", "isr_db", "epnre_rel_db", "profile_peak_db", "sym_spread_db"))


def raw_summary(vec: np.ndarray) -> dict:
    """The handful of features that records and alerts report, by name."""
    return {n: float(vec[i]) for n, i in _SUMMARY}


# PBCH-DMRS symbol pairs whose gains :func:`dmrs_gain_step_db` compares: symbols 1 and 3 hold
# the PBCH-DMRS on every fourth subcarrier of all 240, symbol 2 on the same subcarriers of
# 0-47 and 192-239 (TS 38.211 §7.4.3.1, Table 7.4.3.1-1), so each pair shares its pilots'
# subcarriers -- the channel, whatever its frequency response, cancels.
_GAIN_PAIRS = ((1, 3), (1, 2), (2, 3))


@functools.lru_cache(maxsize=4)
def _gain_pair_idx(v: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Flat RE indices (symbol a's, symbol b's) of each _GAIN_PAIRS pair for DMRS shift v."""
    dl, dk = nr.ssb_re_indices(v)["dmrs"]
    ks = {l: np.sort(dk[dl == l]) for l in (1, 2, 3)}
    out = []
    for a, b in _GAIN_PAIRS:
        k = ks[2] if 2 in (a, b) else ks[1]
        ia, ib = (a * nr.SSB_N_SUBCARRIERS + k).astype(np.intp), (b * nr.SSB_N_SUBCARRIERS + k).astype(np.intp)
        ia.setflags(write=False)
        ib.setflags(write=False)
        out.append((ia, ib))
    return tuple(out)


def dmrs_gain_step_db(grid: np.ndarray, pci: int, ibar: int, n_sigma: float) -> float:
    """The change of the cell's own gain between the PBCH symbols (1, 2, 3) of one
    SSB that its PBCH-DMRS proves whatever noise or interference it carries, dB
    (the largest in magnitude; 0.0 where none is proven).

    For each pair of DMRS symbols a, b (:data:`_GAIN_PAIRS`) with z = y conj(x) on
    the subcarriers they share, z_b = r z_a + e is fitted by least squares (r =
    <z_a, z_b> / |z_a|^2, its standard error from the residual e) and so is z_a =
    r' z_b + e'. Noise in the symbol a fit leans on only pulls |r| down
    (attenuation), so |r| - ``n_sigma`` x its standard error over 1 proves the gain
    rose from a to b, and |r'| so over 1 that it fell; the step is that lower
    bound, in dB (negative: fell). A jammer adds energy but not the cell's own
    pilots coherently, so it widens the bounds without moving them; a receiver
    whose gain changed inside the SSB (an AGC step) moves them. A symbol the step
    falls inside reads the gain of its larger part.

    grid: complex64 (4, 240), the SSB's resource grid (:func:`dsp.ssb_grids_at`);
    pci, ibar: the cell and ī_SSB (TS 38.211 §7.4.1.4.1) its DMRS is generated with.
    """
    g = np.asarray(grid).reshape(-1)
    x = _known_res(int(pci), int(ibar))[0]
    step = 0.0
    for ia, ib in _gain_pair_idx(int(pci) % 4):
        za = (g[ia] * np.conj(x[ia])).astype(np.complex128)
        zb = (g[ib] * np.conj(x[ib])).astype(np.complex128)
        n = za.size
        pa = float(np.vdot(za, za).real)
        pb = float(np.vdot(zb, zb).real)
        c = complex(np.vdot(za, zb))
        if pa <= 0.0 or pb <= 0.0:
            continue
        resid = max(pb - abs(c) ** 2 / pa, 0.0)  # = pa - |c|^2 / pb x pb / pa: the two fits' residuals scale so
        for sign, p_reg, p_fit in ((1.0, pa, pb), (-1.0, pb, pa)):
            r = abs(c) / p_reg
            se = math.sqrt(resid * (p_fit / pb) / (n - 1) / p_reg)
            low = r - n_sigma * se
            if low > 1.0 and 20.0 * math.log10(low) > abs(step):
                step = sign * 20.0 * math.log10(low)
    return step
