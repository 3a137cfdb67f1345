"""Receiver DSP: pure functions, arrays in, arrays out.

Everything downstream of the front end works on the *SSB-rate stream*: the
captured band shifted so that the SSB centre (subcarrier 120, TS 38.104
§5.4.3.1) sits at 0 Hz and resampled to ``SSB_FFT_SIZE * scs`` (3.84 Msps at
15 kHz, 7.68 Msps at 30 kHz). At that rate the OFDM symbol is 256 samples, the
normal CP 18 samples (TS 38.211 §5.3.1: 144 kappa 2^-mu T_c), and every SSB
symbol has the normal (short) CP: the candidate SSB symbols of TS 38.213 §4.1
Cases A-C never include symbol 0 or 7 * 2^mu of a subframe.

Resampling is done in the frequency domain (one FFT of the input block, the
SSB band's bins, one small inverse FFT), which gives exact rational rate
changes for any input rate (23.04, 46.08 and 19.5 Msps alike) and filters to
the SSB band for free.

Dtypes: complex64 in and out; float32 metrics.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft as sfft

from signals import nr

SSB_FFT_SIZE = 256  # SSB-rate FFT size: 240 subcarriers + 16 guard bins
SSB_CP = 18  # normal CP at the SSB rate, both SCS (TS 38.211 §5.3.1, 1.92 Msps * 2^mu * 2 base)
SSB_SYMBOL_LEN = SSB_FFT_SIZE + SSB_CP  # 274
SSB_LEN = nr.SSB_N_SYMBOLS * SSB_SYMBOL_LEN  # 1096 samples at the SSB rate
PSS_K = np.arange(nr.PSS_FIRST_SUBCARRIER, nr.PSS_FIRST_SUBCARRIER + nr.PSS_LENGTH)  # k = 56..182
# FFT window start, samples before the end of the CP. Timing is on the first strong
# path, so the rest of the CP (2.3 us at 30 kHz) is left to the channel's delay spread;
# 3 samples (0.4 us at 30 kHz) absorb a weaker earlier path.
FFT_BACKOFF = 3
BAND_EDGE_BINS = 121  # flat passband half width (bins) of the SSB-band filter; 128 = Nyquist


def _fft_scipy(a: np.ndarray, axis: int, forward: bool) -> np.ndarray:
    return sfft.fft(a, axis=axis, workers=1) if forward else sfft.ifft(a, axis=axis, workers=1)


def _fft_direct():
    """scipy.fft's pocketfft binding without the backend dispatch (a few us per call,
    the per-SSB path makes five): used only if it gives scipy.fft's results."""
    try:
        from scipy.fft._pocketfft import pypocketfft as pp

        def f(a: np.ndarray, axis: int, forward: bool) -> np.ndarray:
            if a.dtype != np.complex64:
                return _fft_scipy(a, axis, forward)
            return pp.c2c(a, (axis % a.ndim,), forward, 0 if forward else 2, None, 1)

        t = (np.arange(24, dtype=np.float32) * np.float32(0.37)).view(np.complex64).reshape(3, 4)
        for ax in (0, 1):
            for fw in (True, False):
                r = f(t.T if ax else t, 1, fw)
                if r.dtype != np.complex64 or not np.array_equal(r, _fft_scipy(t.T if ax else t, 1, fw)):
                    return _fft_scipy
        return f
    except Exception:  # noqa: BLE001 - private API: fall back to the public one
        return _fft_scipy


_fft = _fft_direct()  # _fft(a, axis, forward): complex FFT along one axis (inverse scaled by 1/n)


def ssb_rate_hz(scs_khz: int) -> float:
    """SSB-rate stream sample rate: 256 x SCS."""
    return SSB_FFT_SIZE * scs_khz * 1e3


# ---------------------------------------------------------------------------
# Front end
# ---------------------------------------------------------------------------
def sanitize(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN/Inf samples with 0 and count them.

    Returns
    -------
    (complex64 array of the same shape, number of non-finite samples)
    """
    x = np.asarray(x, dtype=np.complex64)
    # one pass when everything is finite (the usual case): a NaN/Inf makes the sum
    # non-finite (so may an overflow of huge values, then the exact count says 0)
    if x.size == 0 or np.isfinite(x.sum()):
        return x, 0
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad:
        x = x.copy()
        x[bad] = 0
    return x, n_bad


CLIP_MIN_COUNT = 8  # components at a rail (each sign's largest value) before it counts as one
CLIP_PILE_RATIO = 3.0  # ... and this many times those in the 1 % of amplitude just under it
CLIP_REL_TOL = 1e-5  # "at the rail": within this fraction of it (a DC offset removed and added back)


def clip_stats(xs: np.ndarray, min_rail: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """ADC clipping in windows of samples: (fraction of I and Q components at
    the rails, float64 (N,); the rail, float64 (N,), 0 where none).

    ``xs``: complex64 (N, n), the samples as read (before any DC removal). A
    clipped component sits exactly at the converter's largest (or smallest)
    value, so each sign's extreme over a window's I and Q is taken as a rail
    when at least CLIP_MIN_COUNT components sit on it and more than
    CLIP_PILE_RATIO times as many as in the 1 % of amplitude just under it (an
    unclipped Gaussian-like signal thins out towards its peak; one clipped at
    a = rail / sigma piles Q(a) / (0.01 a phi(a)) ~ 100 / a^2 times as many
    up at the rail: over 3 out to a ~ 5.8, where 4e-9 of the components
    clip), and it is at least ``min_rail`` (64 LSB for integer formats: a
    signal of a few LSB repeats its peak value without any clipping). The two signs are apart: two's complement rails are asymmetric
    (ci8: -128 and +127). The rail returned is the smaller of those found."""
    v = np.ascontiguousarray(xs).view(np.float32).reshape(xs.shape[0], -1)
    n = max(v.shape[1], 1)
    frac = np.zeros(v.shape[0])
    rail = np.full(v.shape[0], np.inf)
    for sign in (1.0, -1.0):
        top = v.max(axis=1, initial=0.0) if sign > 0 else -v.min(axis=1, initial=0.0)
        on = np.where((top >= min_rail) & (top > 0), (1.0 - CLIP_REL_TOL) * top, np.inf).astype(np.float32)
        # components on the rail: v >= on (the top), -v >= on (the bottom), without copies of v
        # (a bool mask summed as uint8: count_nonzero along an axis casts it to intp first, 2x slower)
        at = (v >= on[:, None] if sign > 0 else v <= -on[:, None]).view(np.uint8).sum(axis=1, dtype=np.int64)
        cand = np.flatnonzero(at >= CLIP_MIN_COUNT)  # (an unclipped signal: its peak alone, the usual case)
        if cand.size == 0:
            continue
        w = sign * v[cand]
        t = top[cand, None]
        under = np.count_nonzero((w >= 0.99 * t) & (w < on[cand, None]), axis=1)
        ok = at[cand] > CLIP_PILE_RATIO * under
        frac[cand[ok]] += at[cand[ok]] / n
        rail[cand[ok]] = np.minimum(rail[cand[ok]], top[cand[ok]])
    return frac, np.where(np.isfinite(rail), rail, 0.0)


def clip_distortion_power(frac: np.ndarray, rail: np.ndarray) -> np.ndarray:
    """Power per complex sample (units of rail^2) that clipping adds, for a
    Gaussian-like signal (OFDM) whose I and Q are each clipped at ``rail``
    with the observed probability ``frac``: per component, with a = rail /
    sigma = Q^-1(frac / 2), the output is alpha x + d with alpha = 1 - 2 Q(a)
    (Bussgang: the part of the limiter's output proportional to the input, which
    the channel fit takes for the cell) and d uncorrelated with x, of power
    E[y^2] - alpha^2 sigma^2 = sigma^2 [1 - 2 Q(a) - 2 a phi(a) + 2 a^2 Q(a)
    - alpha^2]: it stays in the residual and fills the null REs, spread over
    the recorded band. 0 where ``frac`` is 0. float64, the shape of ``frac``."""
    from scipy.special import ndtr, ndtri

    f = np.clip(np.asarray(frac, np.float64), 0.0, 0.999)
    a = np.where(f > 0, -ndtri(np.maximum(f, 1e-300) / 2.0), np.inf)
    q = ndtr(-a)
    phi = np.exp(-0.5 * np.minimum(a * a, 1e4)) / math.sqrt(2 * math.pi)
    ok = f > 0
    a_ = np.where(ok, a, 0.0)
    sigma = np.where(ok, np.asarray(rail, np.float64) / np.where(ok, a, 1.0), 0.0)
    alpha = 1.0 - 2.0 * q
    per_comp = sigma * sigma * np.maximum(1.0 - 2.0 * q - 2.0 * a_ * phi + 2.0 * a_ * a_ * q - alpha * alpha, 0.0)
    return np.where(ok, 2.0 * per_comp, 0.0)


# The DC offset is taken from the quieter half of a block. A receiver's DC offset is a
# constant: it is in every part of the block, the noise-only ones too, while a strong SSB's
# own content at 0 Hz is only where the SSB is. The block's plain mean, tested against its
# mean power (white noise), took a short recording of one strong SSB over the capture centre
# for DC (the cyberx capture cut to end at its SSB: its mean was subtracted, a tone on the
# SSB's middle subcarrier, called jammed); against the signal's spectral density around DC
# instead, it missed a true offset of -30...-20 dBc in 1 ms recordings at 7.68 Msps whose SSB
# fills the band (2-4 of 6 SSBs jammed). Here: the block in DC_PARTS equal parts, the DC the
# mean of the parts whose energy is at most the median, kept when its square stands
# min_ratio times over its own estimation variance (the spread of those parts' means).
# A mean of the quiet half taken for DC where there is none is itself only noise (1/n of the
# quiet parts' power): the test can be lenient, and must be where the traffic's own content at
# 0 Hz is near the offset (1 ms at 7.68 Msps, loaded carrier: a -30 dBc offset stood 8.5 dB
# over its estimation variance, 12x is 10.8 dB, and on the SSB's middle subcarrier it jammed
# 1 of 6 SSBs at -30 dBc, 2 of 6 at -25). Zero-mean noise passes 4x in ~2 % of blocks.
DC_MIN_RATIO = 4.0
DC_PARTS = 64  # 32 quiet parts
DC_MIN_PART = 16  # shorter blocks (under 1024 samples): the plain mean against the block's power


def dc_offset(x: np.ndarray, min_ratio: float = DC_MIN_RATIO) -> tuple[complex, float]:
    """:func:`dc_offset_parts` less the parts' energies."""
    dc, power, _ = dc_offset_parts(x, min_ratio)
    return dc, power


def dc_offset_parts(x: np.ndarray, min_ratio: float = DC_MIN_RATIO) -> tuple[complex, float, np.ndarray | None]:
    """The receiver's DC offset in a block of samples (LO leakage, ADC offset).

    ``x``: complex64, shape (n,). Returns (dc, power): :func:`dc_estimate`'s mean
    (complex, input units) when it stands out of its own estimation noise,
    |dc|^2 > min_ratio * var, else 0 -- the block's mean power (0.0 when dc is 0),
    and the energy of each of its DC_PARTS parts (:func:`dc_estimate`'s)."""
    m, var, power, energy = dc_estimate(x)
    dc, _ = dc_track(None, m, var, min_ratio)  # (one block: a stream's first)
    return (dc, power, energy) if dc else (0j, 0.0, energy)


def dc_estimate(x: np.ndarray) -> tuple[complex, float | None, float, np.ndarray | None]:
    """The mean of a block's quieter half and its estimation variance, untested.

    ``x``: complex64, shape (n,). Returns (m, var, power, energy): the mean of
    the block's quieter half -- of its DC_PARTS equal parts, those whose energy
    is at most the median, then those whose energy about that mean is --
    (complex, input units), its estimation variance (from the spread of those
    parts' means; a block under DC_PARTS * DC_MIN_PART samples: the plain mean
    against var / n), the block's mean power, and the energy of each of its
    DC_PARTS parts (float64 (DC_PARTS,), the samples of
    ``x[: DC_PARTS * (n // DC_PARTS)]`` in order; None for a short block).
    (0j, None, 0.0, None) when the block holds NaN/Inf or under 2 samples. The
    mean of a ~22 ms block of a noise-like signal estimates DC to 1 / n of the
    block's power (-49 dB at 3.84 Msps, -58 dB at 30.72 Msps; the quieter half:
    3 dB less precise); a strong SSB's own content at 0 Hz is where the SSB is,
    outside the quieter half unless it fills half the block; a tone within about
    1 / (the block's duration) of the capture centre is taken for DC.
    """
    n = x.size
    if n < 2:
        return 0j, None, 0.0, None
    if n < DC_PARTS * DC_MIN_PART:
        m = complex(x.sum(dtype=np.complex128)) / n
        power = sum_sq(x) / n
        if not (math.isfinite(m.real) and math.isfinite(m.imag) and math.isfinite(power)):
            return 0j, None, 0.0, None
        m2 = m.real * m.real + m.imag * m.imag
        return m, max(power - m2, 0.0) / n, power, None
    per = n // DC_PARTS
    parts = x[: DC_PARTS * per].reshape(DC_PARTS, per)
    means = parts.sum(axis=1).astype(np.complex128) / per  # (pairwise sums: float32 is exact enough)
    v = np.ascontiguousarray(parts)
    v = v.view(v.real.dtype)  # (DC_PARTS, 2 per): I and Q
    energy = np.einsum("ij,ij->i", v, v).astype(np.float64)
    power = (float(energy.sum()) + sum_sq(x[DC_PARTS * per :])) / n
    if not (np.isfinite(means).all() and math.isfinite(power)):
        return 0j, None, 0.0, None
    dc = complex(means[energy <= np.median(energy)].mean())
    # the quieter half again, of the parts' energies about that DC: a DC many times the signal
    # makes the parts whose own mean leans against it the quieter ones, and their mean falls
    # short of it (a DC 20 dB over amarisoft-n78-pci500, which lies in its SSB's band: 0.6 % of
    # it left, a tone on the SSB's RB 13, called jammed); where the DC is small, the same parts
    about = energy - 2.0 * per * (means.real * dc.real + means.imag * dc.imag) + per * abs(dc) ** 2
    quiet = means[about <= np.median(about)]
    dc = complex(quiet.mean())
    d = quiet - dc
    var = float(np.sum(d.real * d.real + d.imag * d.imag)) / (quiet.size - 1) / quiet.size
    return dc, var, power, energy


# A stream's DC blocks (a tracking receiver's every dc_refresh_s, its cell searches') are not
# each tested alone: each block's mean passes DC_MIN_RATIO in ~2 % of blocks where there is no
# offset (its estimation noise; 3 % of the 10 ms blocks of 24 clean field-mix sites, bench
# probe), and a false offset is not harmless where the carrier is loud: it is the carrier's
# own content at 0 Hz over ~100 symbols, and subtracted from every sample it lands as a tone on
# whichever RE of the SSB lies at 0 Hz -- a null RE: a CW jammer some 20 dB over the noise of a
# 39 dB SNR cell, its SSBs jammed until the next block (`bench/events.py`: 32 of 800 clean SSBs
# and a false alert in 2 s at one of 16 sites). :func:`dc_track`: the stream's first block is
# tested alone, as a recording of one block must be (DC_MIN_RATIO), and so is every block
# while an offset is held; where none is, a block's mean is taken only when it stands
# DC_ONSET_RATIO x over its variance (exp(-12) ~ 6e-6 of the blocks without an offset); else,
# held or not, the inverse-variance mean of the last DC_POOL_BLOCKS blocks' means where it
# stands DC_MIN_RATIO x (blocks pooled) over its own (exp(-4k) of the tests: a persistent
# offset is found, and kept, as its ratio grows with the blocks). A block whose mean stands
# DC_JUMP_RATIO x (both variances) off the pool's starts a new pool (the offset moved: a gain
# step, a jammer's mean).
DC_ONSET_RATIO = 12.0
DC_POOL_BLOCKS = 4
DC_JUMP_RATIO = 16.0


def dc_pool_add(pool: tuple, m: complex, var: float | None, max_blocks: int = DC_POOL_BLOCKS,
                jump_ratio: float = DC_JUMP_RATIO) -> tuple:
    """The pool of a stream's last DC blocks ((mean, variance) pairs, oldest first,
    :func:`dc_estimate`'s) with one more block: at most ``max_blocks``, restarted
    at this block where its mean stands ``jump_ratio`` times (both variances) off
    the pool's; () for a block without an estimate (non-finite, too short)."""
    if var is None:
        return ()
    if pool:
        mp, vp = dc_pooled(pool)
        if abs(m - mp) ** 2 > jump_ratio * (var + vp):
            pool = ()
    return (pool + ((complex(m), float(var)),))[-max_blocks:]


def dc_pooled(pool: tuple) -> tuple[complex, float]:
    """(mean, variance) of a non-empty pool of DC blocks: their inverse-variance mean
    (a block of zero variance, an exact constant: its mean alone)."""
    exact = [m for m, v in pool if v <= 0.0]
    if exact:
        return exact[-1], 0.0
    w = [1.0 / v for _, v in pool]
    sw = sum(w)
    return sum(wi * m for wi, (m, _) in zip(w, pool)) / sw, 1.0 / sw


def dc_track(state: tuple | None, m: complex, var: float | None,
             min_ratio: float = DC_MIN_RATIO) -> tuple[complex, tuple]:
    """The DC offset to subtract after one more DC block of a stream, and the stream's
    DC state after it (see DC_ONSET_RATIO). ``state``: None at the stream's start,
    else (pool of the last blocks, :func:`dc_pool_add`; whether an offset is held);
    ``m``, ``var``: the block's :func:`dc_estimate` (var None: no estimate -- no offset,
    the pool emptied)."""
    first = state is None
    pool, holding = ((), False) if first else state
    if var is None:
        return 0j, ((), False)
    pool = dc_pool_add(pool, m, var)
    r = abs(m) ** 2
    if r > (min_ratio if first or holding else DC_ONSET_RATIO) * var:
        dc = m
    else:
        mp, vp = dc_pooled(pool)
        dc = mp if len(pool) >= 2 and abs(mp) ** 2 > min_ratio * len(pool) * vp else 0j
    return dc, (pool, dc != 0)


IQ_IMAGE_SIGMAS = 5.0  # iq_image: the improperness must stand this many standard errors out of its noise
IQ_IMAGE_MIN = 0.02  # iq_image: |w| under this (image -34 dB) is left alone: harmless
IQ_IMAGE_MAX = 0.3  # iq_image: |w| over this (image -10 dB) is no receiver's imbalance: an improper signal
IQ_IMAGE_PARTS = 64  # iq_image: equal parts of the block; its quieter half is read
IQ_IMAGE_AGREE = 0.5  # iq_image: the louder half's w within this fraction of |w| of the quieter half's


def iq_image(x: np.ndarray, part_energy: np.ndarray | None = None) -> complex:
    """The receiver's IQ imbalance in a block of samples (DC removed): the
    coefficient w of its mirror image, y = x + w conj(x), as the improperness
    E[y^2] / (2 E|y|^2) of the block's quieter half -- of its IQ_IMAGE_PARTS equal
    parts, those whose energy is at most the median (as :func:`dc_offset`) -- so
    that ``y - w conj(y)`` takes the image out (to a factor 1 - |w|^2 and second
    order in w). The receiver's noise and the carrier's traffic are proper
    (E[x^2] = 0) and pass through the same imbalance; a strong SSB is not quite
    (its PSS and SSS are real sequences: on the capture centre, a 10 ms block
    holding one SSB at 40 dB SNR without traffic read -13 dB over the whole block),
    and it lies in the louder half. The receiver's imbalance is in the louder half
    too: w is taken only where that half's own reading lies within IQ_IMAGE_AGREE
    x |w| of it (srsran-n3-pci1's quieter half reads -12 dB, its louder half -42 dB:
    improper noise of its own, not an image of the signal).

    0 where |w| is under IQ_IMAGE_MIN (harmless: an image 30 dB down changes no
    verdict) or IQ_IMAGE_SIGMAS standard errors of noise alone (1 / (2 sqrt(n))
    over the half read), over IQ_IMAGE_MAX (a tone or a real signal at 0 Hz, not an
    imbalance: left alone), where the block holds NaN/Inf, or is under
    IQ_IMAGE_PARTS x 64 samples. A 20 dB image (w = 0.1) of an SSB 0.36 MHz off
    the capture centre lands on its null REs 24 subcarriers away, and the image of
    the carrier's traffic on them wherever the SSB is: the model took two real cells
    for jammed.

    ``x``: complex64 (n,); ``part_energy``: float64 (IQ_IMAGE_PARTS,), the energy of
    each part when already known (:func:`dc_offset_parts` of the same block, which
    found no DC: the same values). Returns complex (0j when none)."""
    per = x.size // IQ_IMAGE_PARTS
    if per < 64:
        return 0j
    v = np.ascontiguousarray(x[: per * IQ_IMAGE_PARTS], dtype=np.complex64).reshape(IQ_IMAGE_PARTS, per)
    if part_energy is None or np.shape(part_energy) != (IQ_IMAGE_PARTS,):  # (DC_PARTS' parts: the same split)
        f = v.view(np.float32)
        p = np.einsum("ij,ij->i", f, f).astype(np.float64)  # each part's energy
    else:
        p = np.asarray(part_energy, dtype=np.float64)
    if not np.isfinite(p).all():
        return 0j
    # sum y^2 of each part (a dot product of complex arrays does not conjugate), in dot products
    # of at most 8192 values as in sum_sq: one batched matmul of the parts where they are that short
    if per <= 8192:
        m2 = np.matmul(v[:, None, :], v[:, :, None])[:, 0, 0].astype(np.complex128)
    else:
        m2 = np.array([sum(complex(np.dot(r[i : i + 8192], r[i : i + 8192])) for i in range(0, per, 8192))
                       for r in v])
    quiet = p <= np.median(p)
    total, loud = float(p[quiet].sum()), float(p[~quiet].sum())
    if not (total > 0.0 and loud > 0.0 and np.isfinite(m2).all()):
        return 0j
    w = complex(m2[quiet].sum()) / (2.0 * total)
    w_loud = complex(m2[~quiet].sum()) / (2.0 * loud)
    noise = IQ_IMAGE_SIGMAS / (2.0 * math.sqrt(int(quiet.sum()) * per))
    if not max(IQ_IMAGE_MIN, noise) < abs(w) <= IQ_IMAGE_MAX:
        return 0j
    # the receiver's imbalance is in everything it records: the louder half shows it too
    return w if abs(w_loud - w) <= IQ_IMAGE_AGREE * abs(w) else 0j


# ---------------------------------------------------------------------------
# The spectrum around the SSB: the floor an SSB-band jammer does not raise
# ---------------------------------------------------------------------------
BAND_FLOOR_GUARD_SC = 6  # subcarriers beyond the SSB's 240 left out on each side (its own skirt)
BAND_FLOOR_NYQUIST_FRACTION = 0.8  # bins within this fraction of Nyquist (an SDR's anti-alias roll-off beyond)
BAND_FLOOR_DC_BINS = 3  # bins around the capture centre left out (LO leakage)
BAND_FLOOR_PERCENTILE = 10.0  # the bins' energy percentile taken for the floor (traffic sits above)
BAND_FLOOR_MIN_BINS = 48  # four RBs
BAND_FLOOR_REL_VAR = 1.3  # the floor's relative variance x its bins (the 10th percentile of Gamma(4): 1.24)
# The floor near the SSB: the same percentile over the bins within BAND_FLOOR_NEAR_SC
# subcarriers (three RBs) beyond the SSB's guard on either side. The band floor's bins lie
# anywhere in the recorded band, and where that is wider than the carriers on the air, those
# outside them hold the receiver's noise alone while the SSB's null REs hold what every
# transmitter on the carrier spreads over it too -- its noise (EVM), a co-channel cell's, a
# louder recording's noise (two real captures co-timed: the SSB's null REs 27-28 dB under the
# cell over the band floor, at the floor near it). Interference confined to the SSB's band
# stands over both (pipeline.BAND_EXCESS_WIDE_ISR_DB). Near: inside a carrier of a few RBs
# more than the SSB; one SSB's width on either side reached past the 23 MHz of that test's
# louder recording, whose edge then gave the floor (3.5 dB under its noise).
BAND_FLOOR_NEAR_SC = 36
BAND_FLOOR_NEAR_MIN_BINS = 32  # one side's 36 where the recorded band ends at the other (an SSB near its edge)


# The BAND_FLOOR_PERCENTILE-th percentile of a bin's mean energy over the 4 symbols for white
# noise, per unit noise: scipy.stats.gamma.ppf(0.10, 4, scale=0.25) (the mean of 4 unit
# exponentials), what the floor is divided by (a constant: importing scipy.stats costs ~0.7 s
# at start-up; tests/test_receiver.py checks it)
BAND_FLOOR_BIAS = 0.43619239070622784


BAND_FLOOR_OFFSET_STEP_HZ = 10.0  # the SSB centre rounded to this for the plan (ICI under -50 dB)

# A recording may hold noise over only part of its band: one resampled to a higher rate, an
# SDR whose filter is set narrower than its sample rate. Its empty band edges read tens of dB
# under the noise, and a floor taken there reads as far under the SSB's null REs: every SSB
# "band excess", jammed (a clean 12 dB cell recorded at 30.72 Msps, resampled to 46.08: 3 of
# 3 SSBs; 16 of 46 in bench/receiver_eval.py rates at 50 Msps). passband_half_width_hz finds
# such edges in a search block (Welch spectrum, PASSBAND_NFFT bins): bins outside the central
# half that stand PASSBAND_STOP_DB under the central half's PASSBAND_REF_PERCENTILE-th
# percentile (its idle bins: the noise) are a stopband -- no receiver noise falls there -- and
# the passband then ends where the spectrum last stands within PASSBAND_EDGE_DB of that
# reference (its -6 dB point); the band floor's bins stop PASSBAND_MARGIN of the sample rate
# short of it. Without a stopband nothing changes (the bins within
# BAND_FLOOR_NYQUIST_FRACTION of Nyquist). The depth: resampled recordings' stopbands stand
# 59-75 dB under that reference (white noise from 30.72 Msps to 40-61.44, cf32 or quantised);
# the noise beside a carrier whose traffic fills the central half reads as deep as its SNR (the
# evaluation split's 1200 captures: up to 35.9 dB; taken for a stopband at 30 dB, 18 of them
# kept the floor inside the carrier, on its traffic). An SDR whose analog filter alone narrows
# the band leaves its ADC's noise there, maybe less deep than this: not told apart.
PASSBAND_NFFT = 256
PASSBAND_SEGMENTS = 64
PASSBAND_REF_PERCENTILE = 5.0
PASSBAND_STOP_DB = 45.0
PASSBAND_EDGE_DB = 6.0
PASSBAND_MARGIN = 0.02
# Noise over less than half of the band (a recording resampled to 3x its rate or more: the
# central half's PASSBAND_REF_PERCENTILE-th percentile lies in its empty edges, and no stopband
# stood under that): the reference is then taken over the central eighth, quarter and half
# (fs / 16, fs / 8, fs / 4 either side; widest last) as far as each stays within
# PASSBAND_NEST_DB of the narrower part's. White noise resampled from 30.72 Msps to 92.16 /
# 122.88 / 245.76 Msps: the first part whose reference falls is 64 / 72 / 71 dB under (cf32 and
# ci16 alike); a jammer at the band's centre, off the SSB, narrows the passband only where it
# stands this far over the receiver's noise across the whole central eighth. Nothing changes
# where the central half's reference stands within PASSBAND_NEST_DB of the narrower parts'.
PASSBAND_NEST = (16, 8, 4)  # fs / these: the half widths tried, narrowest first
PASSBAND_NEST_DB = 55.0
# A receiver's filter skirt inside the band floor's bins (skirt_half_width_hz): an SDR whose
# analog filter is set narrower than its sample rate (its bandwidth set to a 20 MHz channel at
# 30.72 Msps) rolls the noise off from inside BAND_FLOOR_NYQUIST_FRACTION of Nyquist, and the
# ADC's noise beyond stands ~30 dB under: no stopband by PASSBAND_STOP_DB, but the floor's
# 10th percentile then comes from the skirt, dB under the noise in the SSB's null REs (clean
# 5-30 dB cells, a 5th-order lowpass to 0.7 / 0.65 x Nyquist: 23 / 33 of 200 SSBs jammed
# uncalibrated, bench/receiver_eval.py analog). Each side's profile (the search block's Welch
# spectrum over SKIRT_SMOOTH_BINS bins, dB) is followed inward from where its decline ends --
# its lowest bin where that is at the band floor's outer limit, else the first bin of the flat
# bottom within SKIRT_PLATEAU_DB of its minimum -- while it rises SKIRT_SLOPE_DB per bin or
# more over SKIRT_SLOPE_BINS bins; a decline of SKIRT_SPAN_DB or more is a skirt, and the
# floor's bins stop at its top. Not a skirt: flat noise at the edge; a floor that slopes gently
# across the band (two real 46.08 Msps recordings: ~0.1 dB per bin); a decline with a step of
# more than SKIRT_CLIFF_DB in one bin (a carrier's or a jammer's edge, the receiver's noise
# beyond: SSB-band noise on an SSB at the LO); a decline to a flat bottom less than
# SKIRT_DEEP_DB deep (the noise beyond a jammer's edge that rolls off gradually). A side
# narrower than SKIRT_MIN_BINS bins is not looked at. Both sides must show one, their tops
# within SKIRT_ASYMMETRY of each other (an analog filter is symmetric about the LO). A noise
# jammer centred on the LO that rolls off to the band's limit as gradually as a filter, or
# over SKIRT_DEEP_DB, reads the same (its band then holds the floor, as a barrage's does).
SKIRT_SMOOTH_BINS = 3
SKIRT_PLATEAU_DB = 3.0
SKIRT_SLOPE_DB = 0.25
SKIRT_SLOPE_BINS = 5
SKIRT_CLIFF_DB = 6.0
SKIRT_SPAN_DB = 6.0
SKIRT_END_BINS = 2
SKIRT_DEEP_DB = 20.0
SKIRT_ASYMMETRY = 0.4
SKIRT_ASYMMETRY_BINS = 3
SKIRT_MIN_BINS = 16


# Whitening of a search block (the cell search's last resort, receiver.acquire_steps): the
# block's power spectrum is smoothed over this width -- a few subcarriers at 15 / 30 kHz SCS,
# far narrower than any jammer the spectrum can tell from the cell's own band -- and each bin
# divided by its square root.
WHITEN_SMOOTH_HZ = 60e3
WHITEN_FLOOR = 1e-6  # bins under this fraction of the median smoothed power are not boosted further


def whiten(x: np.ndarray, fs_hz: float, smooth_hz: float = WHITEN_SMOOTH_HZ) -> np.ndarray:
    """:func:`whiten_steps` run to its end."""
    return run_steps(whiten_steps(x, fs_hz, smooth_hz))


def whiten_steps(x: np.ndarray, fs_hz: float, smooth_hz: float = WHITEN_SMOOTH_HZ):
    """A generator that yields between its two block FFTs (a live cell search
    spreads it over time) and returns (``StopIteration.value``) ``x`` with a
    flat power spectrum: every FFT bin of the whole block divided by the square
    root of the block's power spectrum smoothed over ``smooth_hz``
    (circularly), then scaled back to the block's mean power.

    A jammer that holds part of the band (partial-band noise, tones) keeps
    its bins at the level of the rest, instead of standing 10-20 dB over the
    cell's subcarriers there: a PSS
    correlation over the whitened block takes the cell's PSS from the
    subcarriers the jammer leaves alone. The cell's own spectrum (a
    stationary OFDM carrier) is flat over its band and comes out as it was,
    but for one scale; the SSB's four symbols in a block of ~20 ms weigh
    nothing in the block's spectrum.

    Parameters
    ----------
    x : complex64 (n,) -- a search block at ``fs_hz``

    Returns
    -------
    complex64 (n,) (the generator's value); ``x`` itself (a copy) when it
    holds no energy
    """
    from scipy.ndimage import uniform_filter1d

    x = np.asarray(x, dtype=np.complex64)
    n = x.size
    if n == 0:
        return x.copy()
    X = _fft(x, 0, True)
    yield
    v = X.view(np.float32).reshape(n, 2)
    p = np.einsum("ij,ij->i", v, v)  # |X|^2, float32
    k = max(1, int(round(smooth_hz * n / fs_hz)))
    ps = uniform_filter1d(p, min(k, n), mode="wrap")
    med = float(np.median(ps))
    if not med > 0.0 or not math.isfinite(med):
        return x.copy()
    X /= np.sqrt(np.maximum(ps, np.float32(WHITEN_FLOOR * med))).astype(np.float32)
    yield
    y = _fft(X, 0, False)
    pw_x, pw_y = sum_sq(x), sum_sq(y)
    if pw_y > 0.0:
        y *= np.float32(math.sqrt(pw_x / pw_y))
    return y.astype(np.complex64, copy=False)


def _passband_psd(x: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Welch spectrum of a block for :func:`band_widths_hz`: (f float64 (PASSBAND_NFFT,),
    Hz from the capture centre, ascending; psd float64 (PASSBAND_NFFT,)), None where
    the block holds fewer than 8 segments."""
    n_seg = x.size // PASSBAND_NFFT
    if n_seg < 8:
        return None
    step = max(1, n_seg // PASSBAND_SEGMENTS)
    segs = np.ascontiguousarray(x[: n_seg * PASSBAND_NFFT]).reshape(n_seg, PASSBAND_NFFT)[::step][:PASSBAND_SEGMENTS]
    win = np.hanning(PASSBAND_NFFT).astype(np.float32)
    spec = _fft(segs * win, 1, True)
    psd = np.fft.fftshift(np.mean(spec.real ** 2 + spec.imag ** 2, axis=0, dtype=np.float64))
    f = (np.arange(PASSBAND_NFFT) - PASSBAND_NFFT // 2) * (fs_hz / PASSBAND_NFFT)
    return f, psd


def _passband_of_psd(f: np.ndarray, psd: np.ndarray, fs_hz: float) -> float:
    """:func:`passband_half_width_hz` of a Welch spectrum (:func:`_passband_psd`)."""
    # the reference: the central half's, unless that already reaches PASSBAND_NEST_DB under a
    # narrower central part's (noise over under half of the band: a recording resampled to
    # 3x its rate or more); then the widest central part that does not
    central = np.abs(f) < fs_hz / PASSBAND_NEST[0]
    ref = float(np.percentile(psd[central], PASSBAND_REF_PERCENTILE))
    for div in PASSBAND_NEST[1:]:
        wider = np.abs(f) < fs_hz / div
        r = float(np.percentile(psd[wider], PASSBAND_REF_PERCENTILE))
        if not r >= ref * 10 ** (-PASSBAND_NEST_DB / 10):
            break
        central, ref = wider, r
    if not ref > 0:
        return fs_hz / 2
    stop = (psd < ref * 10 ** (-PASSBAND_STOP_DB / 10)) & ~central
    if not stop.any():
        return fs_hz / 2
    inside = psd >= ref * 10 ** (-PASSBAND_EDGE_DB / 10)
    pos, neg = inside & (f > 0), inside & (f < 0)
    edge_hi = float(f[pos].max()) if pos.any() else 0.0
    edge_lo = float(-f[neg].min()) if neg.any() else 0.0
    return min(edge_hi, edge_lo) + fs_hz / (2 * PASSBAND_NFFT)


def passband_half_width_hz(x: np.ndarray, fs_hz: float) -> float:
    """Half width (Hz) of the part of the recorded band that holds the
    receiver's noise (see PASSBAND_STOP_DB): fs / 2 where the whole band does
    (no stopband found) or the block is too short to tell.

    ``x``: complex64 (n,), a block of the recording (e.g. a cell search's)."""
    ps = _passband_psd(x, fs_hz)
    return fs_hz / 2 if ps is None else _passband_of_psd(*ps, fs_hz)


def band_widths_hz(x: np.ndarray, fs_hz: float) -> tuple[float, float | None]:
    """(:func:`passband_half_width_hz`, :func:`skirt_half_width_hz` within the
    band the band floor may use) of one block, from one Welch spectrum.

    ``x``: complex64 (n,), a block of the recording (e.g. a cell search's)."""
    ps = _passband_psd(x, fs_hz)
    if ps is None:
        return fs_hz / 2, None
    f, psd = ps
    passband = _passband_of_psd(f, psd, fs_hz)
    limit = min(BAND_FLOOR_NYQUIST_FRACTION * fs_hz / 2, passband - PASSBAND_MARGIN * fs_hz)
    return passband, skirt_half_width_hz(psd, fs_hz, limit)


def _skirt_side(s: np.ndarray) -> int | None:
    """Where one side's final decline begins: ``s`` float64 (n,), the smoothed
    profile in dB from the centre outward; the index of the decline's top, or None
    where the side does not end in a filter's skirt (see SKIRT_SPAN_DB)."""
    n = s.size
    # where the decline ends: its lowest bin where it still falls to the limit, else the first
    # bin of the flat part at its bottom (an ADC's noise beyond the filter)
    end = int(np.argmin(s))
    if end < n - SKIRT_END_BINS:
        end = int(np.flatnonzero(s <= s[end] + SKIRT_PLATEAU_DB)[0])
    # up the decline, inward, while it rises SKIRT_SLOPE_DB per bin or more over SKIRT_SLOPE_BINS
    # bins (a skirt; flat noise and a floor that slopes gently across the band do not)
    k = SKIRT_SLOPE_BINS
    i = np.arange(end - k, -1, -1)
    if i.size == 0:
        return None
    stop = np.flatnonzero((s[i] - s[i + k]) < SKIRT_SLOPE_DB * k)
    j = int(stop[0]) if stop.size else i.size
    if j == 0:
        return None
    top = int(i[j - 1])
    if np.any(s[top:end] - s[top + 1 : end + 1] > SKIRT_CLIFF_DB):
        return None  # a step in it: a carrier's or a jammer's edge, the receiver's noise beyond
    span = float(s[top] - s[end])
    if span < SKIRT_SPAN_DB:
        return None
    if end < n - SKIRT_END_BINS and span < SKIRT_DEEP_DB:
        return None  # a decline to a flat floor not deep enough: the noise beside a jammer's edge
    return top


def skirt_half_width_hz(psd: np.ndarray, fs_hz: float, limit_hz: float) -> float | None:
    """Where a receiver's filter skirt begins inside ``limit_hz`` of the capture
    centre (Hz, the half width short of it), or None where none is seen.

    An SDR whose analog filter is set narrower than its sample rate rolls its
    noise off gradually, on both sides of its LO alike, from inside the band the
    band floor takes its bins from (:func:`band_floors_per_re`): those bins then
    read under the receiver's noise, and the SSB's null REs over them (see
    SKIRT_SPAN_DB for the test).

    ``psd``: :func:`_passband_psd`'s spectrum (centre bin PASSBAND_NFFT // 2)."""
    n = psd.size
    c = n // 2
    df = fs_hz / n
    r_hi = int(np.floor(limit_hz / df))
    r_lo = BAND_FLOOR_DC_BINS + 1
    if r_hi - r_lo < SKIRT_MIN_BINS or r_hi >= c:
        return None
    if not np.isfinite(psd).all():
        return None
    k = SKIRT_SMOOTH_BINS
    sm = np.convolve(psd, np.ones(k) / k, mode="same")
    cuts = []
    for side in (1, -1):
        s = 10 * np.log10(np.maximum(sm[c + side * np.arange(r_lo, r_hi + 1)], 1e-300))
        i = _skirt_side(s)
        if i is None:
            return None
        cuts.append(r_lo + i)
    if abs(cuts[0] - cuts[1]) > max(SKIRT_ASYMMETRY_BINS, SKIRT_ASYMMETRY * min(cuts)):
        return None
    return (min(cuts) + 0.5) * df


@functools.lru_cache(maxsize=32)
def _band_floor_plan(n_fft: int, fs_hz: float, ssb_offset_hz: float, scs_khz: int,
                     usable_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phasor (n_fft,) complex64 that takes the SSB centre to DC, so that the
    carrier's subcarriers fall on the bins: no leakage of its traffic into idle
    bins; the bins (after it) that hold neither the SSB (with its guard), nor
    the recorded band's edges (beyond ``usable_hz`` from its centre), nor its DC;
    the positions among those of the ones near the SSB, BAND_FLOOR_NEAR_SC)."""
    f = np.fft.fftfreq(n_fft, 1.0 / fs_hz)  # relative to the SSB centre
    f_abs = (f + ssb_offset_hz + fs_hz / 2) % fs_hz - fs_hz / 2  # where the bin lies in the recorded band
    half = (120 + BAND_FLOOR_GUARD_SC) * scs_khz * 1e3  # the SSB's 240 subcarriers around its centre
    ok = ((np.abs(f) > half) & (np.abs(f_abs) < usable_hz)
          & (np.abs(f_abs) > BAND_FLOOR_DC_BINS * fs_hz / n_fft))
    idx = np.flatnonzero(ok)
    idx.setflags(write=False)
    near = np.flatnonzero(np.abs(f[idx]) <= half + BAND_FLOOR_NEAR_SC * scs_khz * 1e3)  # positions in idx
    near.setflags(write=False)
    ph = np.exp(-2j * np.pi * ssb_offset_hz / fs_hz * np.arange(n_fft)).astype(np.complex64)
    ph.setflags(write=False)
    return ph, idx, near


def _usable_hz(fs_hz: float, passband_hz: float | None, skirt_hz: float | None) -> float:
    """The half width of the recorded band that holds the receiver's noise (Hz):
    BAND_FLOOR_NYQUIST_FRACTION of Nyquist, within the passband and before the skirt
    where those were found."""
    usable = BAND_FLOOR_NYQUIST_FRACTION * fs_hz / 2
    if passband_hz is not None:
        usable = min(usable, round((passband_hz - PASSBAND_MARGIN * fs_hz) / 1e3) * 1e3)
    if skirt_hz is not None:
        usable = min(usable, round(skirt_hz / 1e3) * 1e3)
    return usable


def band_floors_per_re(xs: np.ndarray, first: float, fs_hz: float, ssb_offset_hz: float,
                       scs_khz: int, passband_hz: float | None = None,
                       skirt_hz: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The noise floor of the spectrum around the SSB, during the SSB, per RE
    of the SSB grid (:func:`ssb_grids_at`'s units).

    The four SSB symbols are taken at the input rate (FFT of round(fs / SCS)
    samples from the middle of each normal CP); of the bins outside the SSB
    band (and its guard), the capture's band edges and DC, the
    BAND_FLOOR_PERCENTILE-th percentile of their energy over the four symbols,
    unbiased for white noise (BAND_FLOOR_BIAS), is the floor: the
    receiver's noise where the carrier around the SSB is idle (traffic raises
    bins above it, whatever its RB grid; a band busier than 90 % everywhere
    raises the floor, which then reads high: the safe side). Null REs are
    empty (TS 38.211 §7.4.3.1), so energy there above this floor is
    interference confined to the SSB's band -- or the cell's own leakage
    (EVM, phase noise), which the caller tells apart by its level against
    the SSB.

    Parameters
    ----------
    xs : complex64, shape (m, n) -- windows at ``fs_hz``, each with an SSB
        whose first CP starts at sample ``first`` (may be fractional)
    ssb_offset_hz : the SSB centre relative to the capture centre (CFO included)
    passband_hz : the half width of the band that holds the receiver's noise
        (:func:`passband_half_width_hz`; None: all of it)
    skirt_hz : where the receiver's filter skirt begins (:func:`skirt_half_width_hz`;
        None: none seen); no bin beyond it is taken

    Returns
    -------
    floor : float64 (m,) -- per RE of the SSB grid (input units^2 x SSB rate /
        fs: a unitary FFT of the SSB-rate stream); NaN where fewer than
        BAND_FLOOR_MIN_BINS bins lie in the capture or the window is short
    n_bins : int (m,) -- bins the floor was taken from
    near_floor : float64 (m,) -- the same over the bins near the SSB (BAND_FLOOR_NEAR_SC);
        NaN where fewer than BAND_FLOOR_NEAR_MIN_BINS of them lie in the capture
    near_bins : int (m,) -- the bins that one was taken from
    """
    m, n = xs.shape
    n_fft = int(round(fs_hz / (scs_khz * 1e3)))
    off = round(float(ssb_offset_hz) / BAND_FLOOR_OFFSET_STEP_HZ) * BAND_FLOOR_OFFSET_STEP_HZ
    usable = _usable_hz(fs_hz, passband_hz, skirt_hz)
    ph, idx, near = _band_floor_plan(n_fft, float(fs_hz), off, int(scs_khz), float(usable))
    n_b, n_near = idx.size, near.size
    # each symbol's FFT window starts mid-CP: robust to a co-channel cell arriving a little early
    # (its next symbol) and to a late multipath tap alike
    starts = np.floor(first + np.arange(4) * n_fft * (1 + 144 / 2048) + n_fft * 72 / 2048).astype(np.intp)
    if m == 0 or n_b < BAND_FLOOR_MIN_BINS or starts[-1] + n_fft > n or starts[0] < 0:
        return np.full(m, np.nan), np.full(m, n_b, np.int64), np.full(m, np.nan), np.full(m, n_near, np.int64)
    win = np.empty((m, len(starts), n_fft), np.complex64)  # (m, 4, n_fft), the SSB centre at DC
    for i, s0 in enumerate(starts.tolist()):  # (a symbol's slice of every window at once)
        np.multiply(xs[:, s0 : s0 + n_fft], ph, out=win[:, i])
    v = np.take(_fft(win, 2, True), idx, axis=2).view(np.float32)  # (m, 4, 2 n_b): re, im
    # |F|^2 over the symbols (summed in float32, in symbol order), then re^2 + im^2 in float64: the
    # values of einsum("msk,msk->mk") and a float64 sum over the pairs, without the slow small-axis sum
    v2 = v * v
    e32 = v2[:, 0] + v2[:, 1]
    for sym in range(2, v2.shape[1]):
        e32 += v2[:, sym]
    e32 = e32.reshape(m, n_b, 2)
    e = e32[:, :, 0].astype(np.float64) + e32[:, :, 1]
    k = int(round(BAND_FLOOR_PERCENTILE / 100.0 * (n_b - 1)))
    floor = np.partition(e, k, axis=1)[:, k] / (4 * n_fft * BAND_FLOOR_BIAS)  # per symbol, unitary FFT
    if n_near < BAND_FLOOR_NEAR_MIN_BINS:
        near_floor = np.full(m, np.nan)
    else:
        kn = int(round(BAND_FLOOR_PERCENTILE / 100.0 * (n_near - 1)))
        near_floor = np.partition(e[:, near], kn, axis=1)[:, kn] / (4 * n_fft * BAND_FLOOR_BIAS)
    per_re = ssb_rate_hz(scs_khz) / fs_hz
    return floor * per_re, np.full(m, n_b, np.int64), near_floor * per_re, np.full(m, n_near, np.int64)


# Where the recording holds no band beside the SSB (30 kHz SCS at 7.68 Msps: the SSB's 7.2 MHz
# fill 94 % of it), the floor is taken in the SSB's own band just before it and just after it:
# the window's samples up to PRE_FLOOR_GUARD SSB-rate samples before the SSB's first CP (the
# tracker's search range and a channel's early paths; a reactive jammer comes on after the
# SSB's start, so not there) and from POST_FLOOR_GUARD after its end (the channel's tail, a
# reactive jammer's hold time), one FFT of each at the input rate, the bins within the SSB's
# 240 subcarriers less PRE_FLOOR_EDGE_SC each side; the PRE_FLOOR_PERCENTILE-th percentile of
# their energy, unbiased for white noise (an exponential's: -ln(1 - p)); the lower of the two.
# The serving cell's traffic there, or another SSB (Case B's back-to-back pairs: the symbol
# before the second of a pair is the first one's PBCH, the symbol after the first is the
# second's PSS), raises a segment's bins: the other one then gives the floor, or both read
# high, the safe side. Its spread, as the bins of the band floor's estimator that would give it
# (BAND_FLOOR_REL_VAR), is returned beside it for pipeline.band_excess's z.
PRE_FLOOR_GUARD = 24  # SSB-rate samples: the tracker's +-8, a TDL channel's early paths (~1 us at 7.68 Msps)
POST_FLOOR_GUARD = 40  # SSB-rate samples: the channel's tail, a reactive jammer's hold (~5 us at 7.68 Msps)
PRE_FLOOR_EDGE_SC = 6
PRE_FLOOR_PERCENTILE = 25.0
PRE_FLOOR_MIN_BINS = 32
ADJACENT_AGREE = 2.0  # the two segments' floors within this ratio: both the noise


def _segment_floor(seg: np.ndarray, fs_hz: float, ssb_offset_hz: float, scs_khz: int,
                   usable_hz: float) -> tuple[np.ndarray | None, float]:
    """(floor per RE of the grid float64 (m,), its relative variance) of segments
    ``seg`` complex64 (m, L) in the SSB's band (see PRE_FLOOR_GUARD); (None, 0) where
    too few bins lie there."""
    n_seg = seg.shape[1]
    if n_seg <= 0:
        return None, 0
    f_abs = np.fft.fftfreq(n_seg, 1.0 / fs_hz)  # in the recorded band
    f = (f_abs - ssb_offset_hz + fs_hz / 2) % fs_hz - fs_hz / 2  # from the SSB centre
    half = (120 - PRE_FLOOR_EDGE_SC) * scs_khz * 1e3
    idx = np.flatnonzero((np.abs(f) < half) & (np.abs(f_abs) < usable_hz)
                         & (np.abs(f_abs) > BAND_FLOOR_DC_BINS * fs_hz / n_seg))
    n_b = idx.size
    if n_b < PRE_FLOOR_MIN_BINS:
        return None, 0
    v = np.take(_fft(np.ascontiguousarray(seg), 1, True), idx, axis=1)
    e = v.real.astype(np.float64) ** 2 + v.imag.astype(np.float64) ** 2
    p = PRE_FLOOR_PERCENTILE / 100.0
    k = int(round(p * (n_b - 1)))
    q = -math.log(1.0 - p)  # the exponential's p-quantile per unit mean
    floor = np.partition(e, k, axis=1)[:, k] / (n_seg * q)  # unitary FFT
    # the relative variance of a sample quantile: p (1 - p) / (n f(q)^2 q^2), f(q) = 1 - p
    rel_var = p / ((1.0 - p) * n_b * q * q)
    return floor * (ssb_rate_hz(scs_khz) / fs_hz), rel_var


def adjacent_floor_per_re(xs: np.ndarray, first: float, fs_hz: float, ssb_offset_hz: float,
                          scs_khz: int, passband_hz: float | None = None,
                          skirt_hz: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The noise floor in the SSB's band just before and just after it (the lower),
    per RE of the SSB grid (:func:`ssb_grids_at`'s units; see PRE_FLOOR_GUARD).

    Parameters
    ----------
    xs : complex64, shape (m, n) -- windows at ``fs_hz`` (DC offset removed), each
        with an SSB whose first CP starts at sample ``first`` (may be fractional)
    ssb_offset_hz : the SSB centre relative to the capture centre (CFO included)
    passband_hz, skirt_hz : as for :func:`band_floors_per_re` (no bin outside the
        band that holds the receiver's noise)

    Returns
    -------
    floor : float64 (m,) -- NaN where neither segment holds PRE_FLOOR_MIN_BINS bins
    n_bins : int64 (m,) -- the band floor's bin count of the same spread
        (BAND_FLOOR_REL_VAR / the relative variance of this estimate)
    """
    m, n = xs.shape
    ratio = fs_hz / ssb_rate_hz(scs_khz)
    usable = _usable_hz(fs_hz, passband_hz, skirt_hz)
    if m == 0:
        return np.full(m, np.nan), np.zeros(m, np.int64)
    n_pre = int(math.floor(first - PRE_FLOOR_GUARD * ratio))
    post0 = int(math.ceil(first + (SSB_LEN + POST_FLOOR_GUARD) * ratio))
    got = [_segment_floor(seg, fs_hz, ssb_offset_hz, scs_khz, usable)
           for seg in (xs[:, : max(n_pre, 0)], xs[:, min(post0, n) :])]
    got = [g for g in got if g[0] is not None]
    if not got:
        return np.full(m, np.nan), np.zeros(m, np.int64)
    rel_var = max(v for _, v in got)
    fl = np.array([f for f, _ in got])
    floor = fl.min(axis=0)
    if len(got) == 2:
        # the lower of two estimates of one noise reads low by ~sd / sqrt(pi); where the
        # two differ by more than ADJACENT_AGREE the higher holds something else and the
        # lower is the noise's own estimate
        same = fl.max(axis=0) <= ADJACENT_AGREE * floor
        floor = np.where(same, floor / (1.0 - math.sqrt(rel_var / math.pi)), floor)
    return floor, np.full(m, max(1, int(round(BAND_FLOOR_REL_VAR / rel_var))), np.int64)


NULL_RE_SYMBOLS = (0, 2)  # the SSB symbols that hold null REs (TS 38.211 §7.4.3.1, Table 7.4.3.1-1)
_NULL_MASK_02 = nr.NULL_RE_MASK[list(NULL_RE_SYMBOLS)]
_NULL_MASK_02.setflags(write=False)
N_NULL_RES = int(nr.NULL_RE_MASK.sum())  # 130, all in symbols NULL_RE_SYMBOLS


def null_re_power(grids: np.ndarray) -> np.ndarray:
    """Mean power of the 130 null REs (TS 38.211 §7.4.3.1) of SSB grids
    complex64 (m, 4, 240) -- or (m, 2, 240): their symbols NULL_RE_SYMBOLS
    alone (``ssb_grids_at(..., symbols=NULL_RE_SYMBOLS)``): float64 (m,), the
    grids' units."""
    mask = nr.NULL_RE_MASK if grids.shape[1] == nr.SSB_N_SYMBOLS else _NULL_MASK_02
    g = grids.reshape(len(grids), -1)[:, mask.ravel()]
    return (g.real.astype(np.float64) ** 2 + g.imag.astype(np.float64) ** 2).mean(axis=1)


def sum_sq(x: np.ndarray) -> float:
    """sum |x|^2 of a complex64 array in float32 (non-finite when x holds NaN/Inf, or
    overflows), by dot products of at most 8192 values (so that BLAS stays on one
    thread whatever its settings)."""
    v = np.ascontiguousarray(x).view(np.float32).ravel()
    step = 8192
    return float(sum(np.dot(v[i : i + step], v[i : i + step]) for i in range(0, v.size, step)))


def _phasor(n: int, w: float, start: float = 0.0) -> np.ndarray:
    """exp(-1j * w * (k + start)), k = 0..n-1, complex64.

    Computed in double precision as an outer product of two short exponentials
    (rows of 256), so the cost is ~n multiplications instead of n complex
    exponentials.
    """
    return _expj_lin(-w, start, n).astype(np.complex64)


def cmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b (complex, broadcast) into a new array. numpy may compute ``a * b``
    in place in a temporary operand of 256 kB or more, with another loop whose
    complex rounding differs; with an explicit output every element gets the
    rounding it gets in a small product, so that each SSB of a batch gets
    exactly what it gets alone."""
    return np.multiply(a, b, out=np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b)))


_expj = nr.expj  # exp(1j * phase) from cos and sin (one copy, signals.nr)


def _expj_lin(w: float, k0: float, n: int) -> np.ndarray:
    """exp(1j * w * (k0 + k)), k = 0..n-1, complex128, from ~2 sqrt(n) complex
    exponentials: exp(1j w (k0 + b a)) exp(1j w c) with k = b a + c (see
    :func:`_expj_lin_part`, of which this is the whole range)."""
    return _expj_lin_part(w, k0, n, 0, n)


@functools.lru_cache(maxsize=64)
def _rate_ratio(fs_hz: float, out_hz: float) -> tuple[int, int]:
    """(p, q) with out/fs = p/q in lowest terms (q input samples <-> p output)."""
    fr = Fraction(out_hz / fs_hz).limit_denominator(100000)
    if abs(float(fr) - out_hz / fs_hz) > 1e-9 * out_hz / fs_hz:
        raise ValueError(f"sample rate {fs_hz:g} Hz has no rational ratio to {out_hz:g} Hz")
    return fr.numerator, fr.denominator


@functools.lru_cache(maxsize=256)
def fft_len_for(n_samples: int, fs_hz: float, out_hz: float) -> tuple[int, int]:
    """Input FFT length >= n_samples (a fast size, multiple of q) and output length."""
    p, q = _rate_ratio(fs_hz, out_hz)
    # k blocks of q input samples; k even and 2,3,5,7,11-smooth keeps both FFTs fast
    # (q itself may hold other primes, e.g. 325 = 5^2 13 for 19.5 Msps)
    k = 2 * sfft.next_fast_len(max(1, -(-n_samples // (2 * q))))
    return k * q, k * p


@functools.lru_cache(maxsize=64)
def _band_taper(n_out: int) -> np.ndarray:
    """Spectral mask over the n_out output bins (fftshifted order): flat over the
    SSB's 240 subcarriers, raised-cosine to zero at the band edge."""
    f = (np.arange(n_out) - n_out // 2) * (SSB_FFT_SIZE / n_out)  # in SSB subcarriers
    a = np.abs(f)
    m = np.ones(n_out, dtype=np.float32)
    edge = (a > BAND_EDGE_BINS) & (a < SSB_FFT_SIZE / 2)
    m[edge] = 0.5 * (1 + np.cos(np.pi * (a[edge] - BAND_EDGE_BINS) / (SSB_FFT_SIZE / 2 - BAND_EDGE_BINS)))
    m[a >= SSB_FFT_SIZE / 2] = 0
    return m


_PLAN_CACHE_MAX_BINS = 1 << 15  # gather plans of larger outputs (acquisition) are not cached


@functools.lru_cache(maxsize=32)
def _band_plan_cached(n_in: int, n_out: int, taper: bool) -> tuple[np.ndarray, np.ndarray]:
    return _band_plan(n_in, n_out, taper)


def _band_plan(n_in: int, n_out: int, taper: bool) -> tuple[np.ndarray, np.ndarray]:
    """Input-bin offsets (from the centre bin) of the ``n_out`` output bins in
    numpy FFT order, and their weights in that order: the band taper times the
    rate-change scale ``n_out / n_in``."""
    off = sfft.ifftshift(np.arange(-(n_out // 2), n_out - n_out // 2)).astype(np.intp)
    m = _band_taper(n_out) if taper else np.ones(n_out, np.float32)
    w = (sfft.ifftshift(m) * np.float32(n_out / n_in)).astype(np.float32)
    off.setflags(write=False)
    w.setflags(write=False)
    return off, w


def band_plan(n_in: int, n_out: int, taper: bool = True) -> tuple[np.ndarray, np.ndarray]:
    if n_out <= _PLAN_CACHE_MAX_BINS:
        return _band_plan_cached(n_in, n_out, taper)
    return _band_plan(n_in, n_out, taper)


def band_spectrum(x: np.ndarray, fs_hz: float, out_hz: float) -> tuple[np.ndarray, int, int]:
    """FFT of a block, padded to a length compatible with the rate change.

    Returns
    -------
    (X complex64 shape (n_in,), n_in, n_out)
    """
    n_in, n_out = fft_len_for(len(x), float(fs_hz), float(out_hz))
    X = sfft.fft(np.asarray(x, dtype=np.complex64), n=n_in, workers=1)
    return X.astype(np.complex64, copy=False), n_in, n_out


def extract_band_from_spectrum(
    X: np.ndarray, fs_hz: float, n_out: int, center_hz: float, n_valid_in: int | None = None, taper: bool = True
) -> np.ndarray:
    """Band around ``center_hz`` from a block spectrum, as a time signal at the
    output rate ``fs_hz * n_out / len(X)``, centred at 0 Hz.

    The centre is rounded to the nearest input bin; the remainder is removed by a
    frequency shift of the output, so any ``center_hz`` is exact.

    Parameters
    ----------
    X : complex64, shape (n_in,), from :func:`band_spectrum`
    n_valid_in : int, optional; number of real (non-padding) input samples:
        the output is cut to the matching length.

    Returns
    -------
    complex64, shape (n_out or fewer,)
    """
    n_in = X.shape[0]
    bin_hz = fs_hz / n_in
    k0 = int(round(center_hz / bin_hz))
    resid_hz = center_hz - k0 * bin_hz
    off, w = band_plan(n_in, n_out, taper)
    sel = np.take(X, off + k0, mode="wrap")  # the band's bins, numpy order (wrapping round n_in)
    sel *= w
    y = sfft.ifft(sel, workers=1, overwrite_x=True).astype(np.complex64, copy=False)
    out_rate = fs_hz * n_out / n_in
    if n_valid_in is not None:
        y = y[: int(math.ceil(n_valid_in * n_out / n_in))]
    if resid_hz != 0.0:
        y *= _phasor(y.size, 2 * np.pi * resid_hz / out_rate)
    return y


@functools.lru_cache(maxsize=16)
def _polyphase_plan(n_in: int, n_out: int, k0: int) -> np.ndarray:
    """For n_in = q n_out, the band's bins X[k0 + off] of an n_in-point spectrum
    from the q n_out-point spectra X_r of the polyphase components x[r::q]:
    X[k] = sum_r exp(-2j pi k r / n_in) X_r[k mod n_out].

    Output bin i (numpy order, offset off[i] = i mod n_out from k0) reads column
    m = (k0 + i) mod n_out of every X_r; the returned (q, n_out) twiddles (times
    the band weights) are indexed by m, so that S[m] = sum_r tw[r, m] X_r[m] is
    the band spectrum rotated by k0 mod n_out bins (undone in the time domain)."""
    q = n_in // n_out
    off, w = band_plan(n_in, n_out, True)
    i = np.arange(n_out)
    m = (k0 + i) % n_out  # column read by output bin i
    k = (k0 + off.astype(np.int64)) % n_in  # its input bin
    kr = (k[None, :] * np.arange(q)[:, None]) % n_in  # exact phase index
    tw = np.empty((q, n_out), np.complex64)
    tw[:, m] = (np.exp(-2j * np.pi * kr / n_in) * w[None, :]).astype(np.complex64)
    tw.setflags(write=False)
    return tw


def _polyphase(n_in: int, n_out: int) -> bool:
    """Whether a band extraction from n_in to n_out points takes the polyphase path
    (an integer ratio q = n_in / n_out >= 2, and a cached plan's size)."""
    q = n_in // n_out
    return n_in == q * n_out and q >= 2 and n_out <= _PLAN_CACHE_MAX_BINS


def band_rotation(n: int, fs_hz: float, center_hz: float, out_hz: float) -> tuple[int, float] | None:
    """How :func:`extract_band` of ``n`` samples centres ``center_hz`` when it
    takes the polyphase path (integer rate ratio q = n_in / n_out >= 2): the
    input bin k0 the band is cut around, and the rotation w (rad / output
    sample) that :func:`extract_band_unrotated`'s output is multiplied by,
    exp(-1j w k), to finish the shift (the bin rounding and the sub-bin rest).
    None when the polyphase path does not apply."""
    n_in, n_out = fft_len_for(n, float(fs_hz), float(out_hz))
    if not _polyphase(n_in, n_out):
        return None
    bin_hz = fs_hz / n_in
    k0 = int(round(center_hz / bin_hz))
    resid_hz = center_hz - k0 * bin_hz
    return k0, 2 * np.pi * ((k0 % n_out) / n_out + resid_hz / (fs_hz * n_out / n_in))


def extract_band_unrotated(xs: np.ndarray, fs_hz: float, k0: int, out_hz: float) -> np.ndarray:
    """The polyphase band extraction of :func:`extract_band` for several
    equal-length blocks at once, before its final rotation (see
    :func:`band_rotation`): row i times exp(-1j w k) is ``extract_band`` of
    ``xs[i]`` (bit for bit: the FFTs of a batch are those of each row).

    Parameters
    ----------
    xs : complex64, shape (N, n), at ``fs_hz``
    k0 : the input bin the band is cut around (:func:`band_rotation`)

    Returns
    -------
    complex64, shape (N, ceil(n * out_hz / fs_hz))
    """
    m, n = xs.shape
    n_in, n_out = fft_len_for(n, float(fs_hz), float(out_hz))
    q = n_in // n_out
    xp = np.empty((m, n_in), np.complex64)
    xp[:, :n] = xs
    xp[:, n:] = 0
    Xr = _fft(xp.reshape(m, n_out, q).transpose(0, 2, 1), 2, True)  # (N, q, n_out): spectra of x[r::q]
    Xr *= _polyphase_plan(n_in, n_out, k0 % n_in)
    S = Xr[:, 0]
    for r in range(1, q):
        S += Xr[:, r]
    # S is the band spectrum rotated by k0 mod n_out bins (undone by the rotation)
    return _fft(S, 1, False)[:, : int(math.ceil(n * n_out / n_in))]


def band_cut(n: int, fs_hz: float, center_hz: float, out_hz: float) -> tuple[int, float]:
    """:func:`band_rotation` at any rate ratio: on the polyphase path its (k0, w);
    elsewhere (a rate ratio that is not an integer >= 2: 7.68 Msps for 30 kHz SCS,
    11.52, 19.5, 20 Msps...) the bin of the n_in-point spectrum that
    :func:`extract_band_from_spectrum` rounds ``center_hz`` to and the rotation
    (rad / output sample) that finishes the shift, so that
    ``rotate_band(extract_bands_unrotated(x[None], fs_hz, k0, out_hz)[0], w)`` is
    :func:`extract_band` of ``x``'s values on either path."""
    rot = band_rotation(n, fs_hz, center_hz, out_hz)
    if rot is not None:
        return rot
    n_in, n_out = fft_len_for(n, float(fs_hz), float(out_hz))
    bin_hz = fs_hz / n_in
    k0 = int(round(center_hz / bin_hz))
    return k0, 2 * np.pi * (center_hz - k0 * bin_hz) / (fs_hz * n_out / n_in)


def extract_bands_unrotated(xs: np.ndarray, fs_hz: float, k0: int, out_hz: float) -> np.ndarray:
    """The band extraction of :func:`extract_band` for several equal-length
    blocks at once, before its final rotation, at any rate ratio (``k0`` from
    :func:`band_cut`): :func:`extract_band_unrotated` on the polyphase path,
    else each row's n_in-point FFT (one batch), the band's bins around k0 weighted
    as :func:`extract_band_from_spectrum` weights them, and their inverse FFT
    (row by row the values of one block alone).

    xs complex64 (N, n) at ``fs_hz``; returns complex64 (N, ceil(n * out_hz / fs_hz))."""
    m, n = xs.shape
    n_in, n_out = fft_len_for(n, float(fs_hz), float(out_hz))
    if _polyphase(n_in, n_out):
        return extract_band_unrotated(xs, fs_hz, k0, out_hz)
    xp = np.zeros((m, n_in), np.complex64)
    xp[:, :n] = xs
    off, w = band_plan(n_in, n_out, True)
    sel = _fft(xp, 1, True)[:, (off + k0) % n_in]  # the band's bins, numpy order (wrapping round n_in)
    sel *= w
    return _fft(sel, 1, False)[:, : int(math.ceil(n * n_out / n_in))]


def rotate_band(y0: np.ndarray, w: float) -> np.ndarray:
    """y0 * exp(-1j w k), k = 0..n-1 (a new complex64 array; ``y0`` itself when
    w is 0): the last step of :func:`extract_band` after
    :func:`extract_band_unrotated` (``w`` from :func:`band_rotation`)."""
    return cmul(y0, _phasor(y0.size, w)) if w != 0.0 else y0


def rotate_bands(y0: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`rotate_band` of each row of ``y0`` (N, n) with its own ``w`` (N,)
    (bit for bit), in one pass: complex64 (N, n)."""
    w = np.asarray(w, dtype=np.float64)
    out = cmul(y0, _expj_lin_rows(-w, y0.shape[1]).astype(np.complex64))
    keep = w == 0.0
    if keep.any():
        out[keep] = y0[keep]
    return out


def _expj_lin_part(w: float, k0: float, n: int, a: int, b: int) -> np.ndarray:
    """``_expj_lin(w, k0, n)[a:b]``, the same values from the same products."""
    if n <= 512:
        return np.exp(1j * w * (k0 + np.arange(a, b)))
    blk = max(8, int(math.sqrt(n)))
    r0 = a // blk
    hi = np.exp(1j * w * (k0 + blk * np.arange(r0, (max(b, a + 1) - 1) // blk + 1)))
    lo = np.exp(1j * w * np.arange(blk))
    return (hi[:, None] * lo[None, :]).ravel()[a - r0 * blk : b - r0 * blk]


def _expj_lin_rows(w: np.ndarray, n: int, k0: float = 0.0) -> np.ndarray:
    """``_expj_lin(w[i], k0, n)`` for each i, (N, n) complex128, the same values
    from the same products (each distinct w once: the rows of one CFO epoch share it)."""
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.size > 1:  # (distinct as bit patterns: -0.0 and 0.0 stay apart)
        u, inv = np.unique(w.view(np.int64), return_inverse=True)
        if u.size < w.size:
            return _expj_lin_rows(u.view(np.float64), n, k0)[inv.reshape(-1)]
    w = w[:, None]
    if n <= 512:
        return np.exp(1j * w * (k0 + np.arange(n))[None, :])
    blk = max(8, int(math.sqrt(n)))
    rows = -(-n // blk)
    hi = np.exp(1j * w * (k0 + blk * np.arange(rows))[None, :])
    lo = np.exp(1j * w * np.arange(blk)[None, :])
    return (hi[:, :, None] * lo[:, None, :]).reshape(w.shape[0], -1)[:, :n]


def extract_band(x: np.ndarray, fs_hz: float, center_hz: float, out_hz: float) -> np.ndarray:
    """Shift ``center_hz`` to 0 Hz, filter to the SSB band and resample to ``out_hz``.

    The same as :func:`band_spectrum` + :func:`extract_band_from_spectrum`; when
    the input FFT length is a multiple q of the output's (integer rate ratios:
    30.72, 15.36, 23.04, 46.08 Msps...), only the band's bins are computed: from
    q FFTs of n_out points of the polyphase components (one batched call)
    instead of one FFT of n_in points (short SSB windows while tracking).

    Parameters
    ----------
    x : complex64, shape (n,), at ``fs_hz``

    Returns
    -------
    complex64, shape (ceil(n * out_hz / fs_hz),)
    """
    rot = band_rotation(len(x), fs_hz, center_hz, out_hz)
    if rot is None:
        X, n_in, n_out = band_spectrum(x, fs_hz, out_hz)
        return extract_band_from_spectrum(X, fs_hz, n_out, center_hz, n_valid_in=len(x))
    k0, w = rot
    y = extract_band_unrotated(np.asarray(x, dtype=np.complex64).reshape(1, -1), fs_hz, k0, out_hz)[0]
    if w != 0.0:
        y *= _phasor(y.size, w)
    return y


# ---------------------------------------------------------------------------
# PSS correlation
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def pss_replicas() -> np.ndarray:
    """Time-domain PSS symbols (useful part, no CP) at the SSB rate.

    Returns
    -------
    complex64, shape (3, 256), unit energy per row; bin order: SSB subcarrier k
    sits at FFT bin k - 120 (so the SSB centre is at 0 Hz).
    """
    out = np.zeros((3, SSB_FFT_SIZE), dtype=np.complex64)
    bins = (PSS_K - nr.SSB_CENTER_SUBCARRIER) % SSB_FFT_SIZE
    for nid2 in range(3):
        f = np.zeros(SSB_FFT_SIZE, dtype=np.complex64)
        f[bins] = nr.pss(nid2)
        t = np.fft.ifft(f)
        out[nid2] = t / np.linalg.norm(t)
    return out


@functools.lru_cache(maxsize=8)
def _pss_filter_spectra(n: int) -> np.ndarray:
    """(4, n) complex64, numpy order at the SSB rate: row 0 the PSS-band mask,
    rows 1..3 the mask times the conjugate spectra of the three replicas (one
    multiplication of the signal's spectrum gives the filtered signal and the
    three correlations)."""
    rep = np.zeros((3, n), dtype=np.complex64)
    rep[:, :SSB_FFT_SIZE] = pss_replicas()
    out = np.empty((4, n), np.complex64)
    m = _pss_band_mask(n)
    out[0] = m
    out[1:] = np.conj(sfft.fft(rep, axis=1, workers=1)).astype(np.complex64) * m
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def _pss_band_mask(n: int) -> np.ndarray:
    """FFT-bin mask (numpy order, size n at the SSB rate) of the PSS's 127
    subcarriers +- 1 guard."""
    f = sfft.fftfreq(n, 1.0 / SSB_FFT_SIZE)  # in subcarriers relative to the SSB centre
    lo, hi = PSS_K[0] - nr.SSB_CENTER_SUBCARRIER - 1.5, PSS_K[-1] - nr.SSB_CENTER_SUBCARRIER + 1.5
    m = ((f >= lo) & (f <= hi)).astype(np.float32)
    m.setflags(write=False)
    return m


# Narrowband excision before PSS detection: a bin of the PSS band's spectrum that
# holds more than this share of the band's energy is a tone (CW / multi-tone
# jammer, spur), not the PSS, whose energy spreads over its 127 subcarriers (and,
# in a long block, over many comb lines per subcarrier); it is zeroed so that a
# strong tone cannot hide the cell. The SSB grids the features see are untouched.
TONE_SHARE = 0.02


def excise_tones(Y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the bins of a spectrum ``Y`` (complex, last axis = frequency) that,
    inside ``mask`` (float32 0/1, same length), hold more than TONE_SHARE of the
    masked energy. Returns ``Y`` itself when nothing stands out, else a copy."""
    p = (Y.real * Y.real + Y.imag * Y.imag) * mask
    tot = float(p.sum())
    if tot <= 0.0:
        return Y
    hit = p > TONE_SHARE * tot
    if not hit.any():
        return Y
    out = Y.copy()
    out[hit] = 0
    return out


TONE_RE_RATIO = 30.0  # an RE this many times above its symbol's median power is a tone (identification only)


def suppress_tones_grid(grid: np.ndarray) -> np.ndarray:
    """A copy of an SSB grid (4, 240) complex64 for cell identification, with the
    REs whose power exceeds TONE_RE_RATIO x the median of their symbol zeroed: a
    CW or multi-tone jammer inside the SSS / PBCH-DMRS subcarriers would otherwise
    dominate every N_ID1 and i_SSB hypothesis alike. Returns ``grid`` itself when
    no RE stands out."""
    p = grid.real * grid.real + grid.imag * grid.imag
    med = np.median(p, axis=1, keepdims=True)
    hit = p > TONE_RE_RATIO * np.maximum(med, 1e-30)
    if not hit.any():
        return grid
    out = grid.copy()
    out[hit] = 0
    return out


def pss_band_filter(y: np.ndarray) -> np.ndarray:
    """Keep only the PSS's 127 subcarriers (+-1 guard) of an SSB-rate signal."""
    Y = sfft.fft(y, workers=1) * _pss_band_mask(y.shape[-1])
    return sfft.ifft(Y, workers=1).astype(np.complex64)


_ALL_NID2 = (0, 1, 2)


def pss_correlate(y: np.ndarray, nid2s=_ALL_NID2) -> tuple[np.ndarray, np.ndarray]:
    """Normalised PSS correlation of an SSB-rate signal.

    rho2[i, n] = |sum_m y_p[n+m] p_i*[m]|^2 / sum_m |y_p[n+m]|^2, with ``y_p`` the
    signal filtered to the PSS band (so the metric does not depend on the load
    of the rest of the carrier) and ``p_i`` the unit-energy replica: 1 for a
    clean PSS, ~1/127 for noise.

    One FFT of ``y`` serves the filter and the correlations (circular over
    len(y), which equals the linear correlation at every returned lag), and one
    batched inverse FFT gives the filtered signal and the correlations.

    Returns
    -------
    rho2 : float32, shape (len(nid2s), n_lags), n_lags = len(y) - 255
    corr : complex64, shape (len(nid2s), n_lags), the raw correlation
    """
    y = np.asarray(y, dtype=np.complex64)
    n = y.size
    nids = _ALL_NID2 if nid2s is _ALL_NID2 else tuple(int(i) for i in nid2s)
    if n < SSB_FFT_SIZE:
        return np.zeros((len(nids), 0), np.float32), np.zeros((len(nids), 0), np.complex64)
    Y = _fft(y, 0, True)
    H = _pss_filter_spectra(n)
    rows = H if nids == (0, 1, 2) else H[[0, *(1 + i for i in nids)]]
    return _pss_rho2(_fft(rows * Y, 1, False))


def pss_correlate_rows(ys: np.ndarray) -> np.ndarray:
    """:func:`pss_correlate`'s rho2 (all three N_ID2) of each row of ``ys``
    (complex64 (N, n), n >= 256, SSB rate) in one batch of FFTs; each row's
    values are those it gets in a batch of one (row-wise FFTs, running sums).

    Returns
    -------
    rho2 : float32, shape (N, 3, n - 255)
    """
    ys = np.asarray(ys, dtype=np.complex64)
    m, n = ys.shape
    t = _fft(_pss_filter_spectra(n)[None] * _fft(ys, 1, True)[:, None], 2, False)  # (N, 4, n)
    n_lags = n - SSB_FFT_SIZE + 1
    pw = t.real * t.real + t.imag * t.imag
    e = np.cumsum(pw[:, 0].astype(np.float64), axis=1)  # running |y_p|^2 per row
    energy = e[:, SSB_FFT_SIZE - 1 : SSB_FFT_SIZE - 1 + n_lags].copy()
    energy[:, 1:] -= e[:, : n_lags - 1]
    floor = np.maximum(energy.max(axis=1) * 1e-9, 1e-30)[:, None]
    return (pw[:, 1:, :n_lags] / np.maximum(energy, floor)[:, None]).astype(np.float32)


def rotate_band_rows(y0s: np.ndarray, w: float, starts: np.ndarray, n: int) -> np.ndarray:
    """``rotate_band(y0s[i], w)[starts[i] : starts[i] + n]`` for each row (the
    rotation's values, not necessarily its bits), zero where a segment leaves
    its row: complex64 (N, n)."""
    m, size = y0s.shape
    st = [int(a) for a in starts]
    seg = np.zeros((m, n), np.complex64)
    for i, a in enumerate(st):  # (one slice per row: the segments usually lie inside)
        lo, hi = max(a, 0), min(a + n, size)
        if hi > lo:
            seg[i, lo - a : hi - a] = y0s[i, lo:hi]
    if w != 0.0:  # exp(-j w (start + k)) as a product of the two phasors
        ph = np.exp(-1j * w * np.array(st, np.float64))[:, None] * np.exp(-1j * w * np.arange(n))[None, :]
        seg = cmul(seg, ph.astype(np.complex64))
    return seg


def pss_correlate_steps(y: np.ndarray):
    """:func:`pss_correlate` (all three N_ID2) of a long signal (a search block)
    as a generator that yields between its FFTs (see
    :func:`detector.receiver.acquire_steps`), with the PSS band's tones excised
    first (:func:`excise_tones`); returns (rho2, corr)."""
    y = np.asarray(y, dtype=np.complex64)
    if y.size < SSB_FFT_SIZE:
        return pss_correlate(y)
    Y = excise_tones(_fft(y, 0, True), _pss_band_mask(y.size))
    yield
    t = _fft(_pss_filter_spectra(y.size) * Y, 1, False)
    del Y
    yield
    return _pss_rho2(t)


def _pss_rho2(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rho2 and the correlations from [y_p, corr_0, ...] (inverse FFTs, len(y) each)."""
    n = t.shape[1]
    n_lags = n - SSB_FFT_SIZE + 1
    pw = t.real * t.real + t.imag * t.imag  # |.|^2 of every row at once (float32)
    e = np.cumsum(pw[0].astype(np.float64))  # running |y_p|^2
    energy = e[SSB_FFT_SIZE - 1 : SSB_FFT_SIZE - 1 + n_lags].copy()
    energy[1:] -= e[: n_lags - 1]
    corr = t[1:, :n_lags]
    floor = max(float(energy.max()) * 1e-9, 1e-30)
    rho2 = (pw[1:, :n_lags] / np.maximum(energy, floor)).astype(np.float32)
    return rho2, corr


def find_peaks(metric: np.ndarray, threshold: float, min_distance: int) -> np.ndarray:
    """Indices of local maxima above ``threshold``, at least ``min_distance`` apart
    (greedy, strongest first)."""
    cand = np.flatnonzero(metric >= threshold)
    if cand.size == 0:
        return cand
    order = cand[np.argsort(metric[cand])[::-1]]
    taken: list[int] = []
    for i in order:  # loop over above-threshold peaks only (a handful)
        if all(abs(int(i) - t) >= min_distance for t in taken):
            taken.append(int(i))
        if len(taken) >= 256:
            break
    return np.array(sorted(taken), dtype=np.int64)


def parabolic_offset(v_m1: float, v0: float, v_p1: float) -> float:
    """Sub-sample offset of a peak from three samples around it, in [-0.5, 0.5]."""
    den = float(v_m1) - 2 * float(v0) + float(v_p1)
    if den >= 0:
        return 0.0
    return min(0.5, max(-0.5, 0.5 * (float(v_m1) - float(v_p1)) / den))


# A co-channel cell that arrives more than a CP before or after the serving one (a closer or a
# farther site) spills its symbols into every FFT window of the serving cell's symbols, null
# REs included (detector.pipeline's band-excess rule). Its PSS is searched for this many
# SSB-rate samples early or late (from 2/3 of a CP -- the FFT window sits 3 samples before the
# CP's end -- up to 11.1 / 9.4 CPs, where 74 / 86 of its PSS's 256 samples still fall in the
# serving PSS symbol: rho2 up to ~0.3 of a cell alone there; up to 6.7 / 6 CPs, as before stop
# 49, a neighbour 7-10 CPs early was not found and its SSBs, which overlap all four of the
# serving ones, were jammed uncalibrated: 54-60 of 60, 8 CPs late 21 of 60) in what is
# left once the serving cell's own PSS symbol is taken out (MISTIMED_CELL_TAPS: its channel as
# taps at these delays around its strongest path, least squares, so that its own paths are
# not taken for a cell), so that the serving PSS's energy neither hides it (the PSS correlation is
# normalised by the window's energy: a cell 12 dB down, 3-6 CPs early, reads 0.05-0.07 beside
# it) nor correlates with it: the region then holds the other cell, noise, and what the
# serving cell sends before its SSB. That last is blanked too (its traffic, at the cell's
# level, would drown a weak early cell), and late, the serving cell's PBCH symbol (its data is
# not known). So only the serving SSB's first symbol (and 4 samples before it) is read.
EARLY_CELL_LAGS = (12, 200)
LATE_CELL_LAGS = (12, 170)
MISTIMED_CELL_TAPS = tuple(range(-4, 7))


def mistimed_cell_rho2(y: np.ndarray, start: float, nid2: int) -> tuple[float, float]:
    """The strongest PSS correlation (rho2 as :func:`pss_correlate_rows`, any
    N_ID2) of a cell whose SSB starts EARLY_CELL_LAGS samples before / LATE_CELL_LAGS
    samples after the serving cell's, with the serving cell's PSS symbol cancelled.

    Parameters
    ----------
    y : complex64, shape (n,) -- SSB-rate signal, the serving cell's CFO removed
        (the searches read only the serving SSB's first symbol: a window from
        its start on, SSBObservation.ssb_iq, is enough)
    start : float -- CP start of the serving SSB's first symbol in ``y``
    nid2 : int -- the serving cell's N_ID2

    Returns
    -------
    (early, late): floats in [0, 1].
    """
    y = np.asarray(y, dtype=np.complex64)
    i0 = int(math.floor(start))
    lo_pad = max(0, -(i0 + min(MISTIMED_CELL_TAPS)))
    hi_pad = max(0, i0 + SSB_SYMBOL_LEN + max(MISTIMED_CELL_TAPS) - y.size)
    if lo_pad or hi_pad:  # (a window that holds little more than the SSB: zeros around it)
        y = np.pad(y, (lo_pad, hi_pad))
        i0 += lo_pad
        start += lo_pad
    # the serving PSS symbol (CP + body, the body's periodic continuation) at the fractional start:
    # pss_replicas' body delayed in frequency (its bins are signed subcarrier offsets)
    k = sfft.fftfreq(SSB_FFT_SIZE, 1.0 / SSB_FFT_SIZE)
    body = sfft.ifft(sfft.fft(pss_replicas()[nid2].astype(np.complex128))
                     * np.exp(-2j * np.pi * k * (start - i0) / SSB_FFT_SIZE))
    taps = np.array(MISTIMED_CELL_TAPS)
    a, b = i0 + int(taps.min()), i0 + SSB_SYMBOL_LEN + int(taps.max())
    n = np.arange(a, b)[:, None] - i0 - taps[None, :]  # sample index within each delayed symbol
    cols = np.where((n >= 0) & (n < SSB_SYMBOL_LEN), body[(n - SSB_CP) % SSB_FFT_SIZE], 0.0)
    seg = y[a:b].astype(np.complex128)
    ch = cols.conj().T
    g = np.linalg.solve(ch @ cols, ch @ seg)  # least squares (the delayed symbols are independent)
    r = y.copy()
    r[a:b] = (seg - cols @ g).astype(np.complex64)
    # the two searches in one batch: the early one's segment, the late one's (the serving
    # PBCH symbol on blanked), zero-padded to the same length; each row's own lags read
    spans = [(i0 + SSB_CP - EARLY_CELL_LAGS[1], i0 + SSB_CP - EARLY_CELL_LAGS[0] + SSB_FFT_SIZE),
             (i0 + SSB_CP + LATE_CELL_LAGS[0], i0 + SSB_CP + LATE_CELL_LAGS[1] + SSB_FFT_SIZE)]
    n_seg = sfft.next_fast_len(max(hi - lo for lo, hi in spans))
    rows = np.zeros((2, n_seg), np.complex64)
    # early: before the serving SSB blanked (the serving cell's traffic may be there), so the
    # search reads nothing before it; late: from the serving PBCH symbol on blanked
    (e_lo, e_hi), (l_lo, l_hi) = spans
    rows[0, i0 - e_lo : e_hi - e_lo] = r[i0:e_hi]
    rows[1, : i0 + SSB_SYMBOL_LEN - l_lo] = r[l_lo : i0 + SSB_SYMBOL_LEN]
    rho2 = pss_correlate_rows(rows)
    return tuple(float(rho2[i, :, : hi - lo - SSB_FFT_SIZE + 1].max()) for i, (lo, hi) in enumerate(spans))


# pss_cfo_hz: over half a symbol the three PSS sequences are not orthogonal, and a co-timed cell
# of another N_ID2 (the sectors of one site) turns the phase between the halves: with one 6 dB
# down, the cell search read the CFO ~650 Hz off, tracking ~490 Hz (`bench/receiver_eval.py nbcfo
# --n 40 --seed 5`; alone: 13 Hz). Another N_ID2's PSS whose normalised correlation at its best lag
# within PSS_CFO_OTHER_LAGS of the window stands at PSS_CFO_OTHER_MIN_RHO2 or more is fitted out of
# each half with the cell's own (least squares): 159 and 97 Hz there; without such a PSS the
# estimate is the plain one, bit for bit.
PSS_CFO_OTHER_LAGS = 8
PSS_CFO_OTHER_MIN_RHO2 = 0.05


def pss_cfo_hz(y: np.ndarray, start: int, nid2: int, scs_khz: int) -> float:
    """CFO from the phase between the two halves of the PSS correlation, another
    N_ID2's PSS in the window fitted out where it stands out (PSS_CFO_OTHER_MIN_RHO2).

    Unambiguous over +-1 SCS. ``start`` is the first sample of the PSS symbol's
    useful part in the SSB-rate signal ``y``.
    """
    seg = y[start : start + SSB_FFT_SIZE]
    if seg.size < SSB_FFT_SIZE:
        return 0.0
    reps = pss_replicas()
    p = reps[nid2]
    h = SSB_FFT_SIZE // 2
    cols = _other_pss_in(y, start, nid2)
    if cols:
        a = np.stack([p] + cols, axis=1).astype(np.complex128)
        s = seg.astype(np.complex128)
        c1 = complex(np.linalg.lstsq(a[:h], s[:h], rcond=None)[0][0])
        c2 = complex(np.linalg.lstsq(a[h:], s[h:], rcond=None)[0][0])
    else:
        c1 = complex(np.vdot(p[:h], seg[:h]))
        c2 = complex(np.vdot(p[h:], seg[h:]))
    c = c2 * c1.conjugate()
    return math.atan2(c.imag, c.real) / (2 * np.pi * h / ssb_rate_hz(scs_khz))


@functools.lru_cache(maxsize=1)
def _pss_replica_energies() -> tuple[float, float, float]:
    """|pss_replicas()[i]|^2 of each row (float32 sums: ~1), computed once."""
    return tuple(float(np.vdot(r, r).real) for r in pss_replicas())


def _other_pss_in(y: np.ndarray, start: int, nid2: int) -> list[np.ndarray]:
    """The other N_ID2s' PSS replicas as they lie in the window y[start : start +
    SSB_FFT_SIZE] (each at its best lag within +-PSS_CFO_OTHER_LAGS, zero-padded),
    those whose normalised correlation there is PSS_CFO_OTHER_MIN_RHO2 or more."""
    n, lags = SSB_FFT_SIZE, PSS_CFO_OTHER_LAGS
    if start < lags or start + n + lags > y.size:
        return []
    reps = pss_replicas()
    seg = y[start : start + n]
    e_seg = float(np.vdot(seg, seg).real)
    if e_seg <= 0.0:
        return []
    w = y[start - lags : start + n + lags]
    out = []
    for o in range(3):
        if o == nid2:
            continue
        # (2 lags + 1,): sum_m w[k + m] conj(rep[m]); np.correlate, not a matmul of a sliding-window
        # view (no BLAS on the overlapping rows: 7 us against 1.3 us, of every tracked SSB)
        c = np.abs(np.correlate(w, reps[o], "valid"))
        k = int(np.argmax(c))
        if float(c[k]) ** 2 / (e_seg * _pss_replica_energies()[o]) < PSS_CFO_OTHER_MIN_RHO2:
            continue
        d = k - lags  # the other PSS starts d samples into the window
        q = np.zeros(n, np.complex64)
        if d >= 0:
            q[d:] = reps[o][: n - d]
        else:
            q[: n + d] = reps[o][-d:]
        out.append(q)
    return out


def derotate(y: np.ndarray, cfo_hz: float, rate_hz: float, start_sample: int = 0) -> np.ndarray:
    """y * exp(-j 2 pi cfo (n + start) / rate), complex64."""
    if cfo_hz == 0.0:
        return np.asarray(y, dtype=np.complex64)
    return np.asarray(y, dtype=np.complex64) * _phasor(y.size, 2 * np.pi * cfo_hz / rate_hz, start_sample)


# ---------------------------------------------------------------------------
# SSB grid and identification
# ---------------------------------------------------------------------------
_SSB_K = np.arange(nr.SSB_N_SUBCARRIERS) - nr.SSB_CENTER_SUBCARRIER  # -120..119
_SSB_BINS = _SSB_K % SSB_FFT_SIZE  # their FFT bins (numpy order)
_GRID_FIRST = SSB_CP - FFT_BACKOFF  # first FFT window of the SSB, samples after its start
_GRID_SPAN = _GRID_FIRST + (nr.SSB_N_SYMBOLS - 1) * SSB_SYMBOL_LEN + SSB_FFT_SIZE  # samples the grid reads


_GRID_OFFS = (np.arange(nr.SSB_N_SYMBOLS) * SSB_SYMBOL_LEN)[:, None] + np.arange(SSB_FFT_SIZE)[None, :]  # (4, 256)
_GRID_OFFS.setflags(write=False)


def ssb_grid_at(y: np.ndarray, start: float) -> np.ndarray:
    """The 4 x 240 RE grid of an SSB whose first symbol's CP starts at sample
    ``start`` (may be fractional) of the SSB-rate signal ``y``.

    The FFT window starts FFT_BACKOFF samples before the end of each CP; the
    fractional part of ``start`` and the back-off are removed as a linear phase.

    Returns
    -------
    complex64, shape (4, 240)
    """
    return ssb_grids_at(np.asarray(y).reshape(1, -1), np.array([float(start)]))[0]


def _ssb_rate_windows(ys: np.ndarray, starts: np.ndarray,
                      symbols: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The FFT windows of :func:`ssb_grids_at`: complex64 (N, len(symbols), SSB_FFT_SIZE), each
    SSB's symbols SSB_SYMBOL_LEN apart from FFT_BACKOFF before the end of its first CP (whole
    samples), and each start's fractional part float64 (N,). ValueError where a window
    reaches outside its row."""
    starts = np.asarray(starts, dtype=np.float64)
    i0 = np.floor(starts)
    a = i0.astype(np.intp) + _GRID_FIRST
    if ys.shape[0] and (a.min() < 0 or int(a.max()) - _GRID_FIRST + _GRID_SPAN > ys.shape[1]):
        raise ValueError("SSB window outside the signal")
    ys = np.ascontiguousarray(ys)
    offs = _GRID_OFFS if symbols is None else _GRID_OFFS[list(symbols)]
    win = np.take(ys.reshape(-1), (a + np.arange(ys.shape[0]) * ys.shape[1])[:, None, None] + offs)
    return win, starts - i0


def ssb_grids_at(ys: np.ndarray, starts: np.ndarray, symbols: tuple[int, ...] | None = None,
                 offgrid_leak: np.ndarray | None = None) -> np.ndarray:
    """:func:`ssb_grid_at` of N SSBs at once (one batched FFT; each row's grid
    is the one ``ssb_grid_at`` gives alone, bit for bit).

    Parameters
    ----------
    ys : complex64, shape (N, n) -- SSB-rate signals
    starts : float, shape (N,) -- CP start of each SSB's first symbol in its row
    symbols : the SSB symbols (0..3) to compute, in this order (default: all four)
    offgrid_leak : complex64 (N, 130), optional -- with all four symbols: filled as
        :func:`ssb_grids_input_rate`'s (from the 256-point FFT, 7 bins on each side
        of the SSB); the grids returned keep it

    Returns
    -------
    complex64, shape (N, 4, 240) (N, len(symbols), 240 with ``symbols``)
    """
    win, frac = _ssb_rate_windows(ys, starts, symbols)
    F = _fft(win, 2, True)
    Y = F[:, :, _SSB_BINS]
    # window started (backoff + frac) samples before the useful part: undo the linear phase
    # (and the unitary FFT scale); exp(1j w (k0 + k)) as in _expj_lin
    w = 2 * np.pi * (FFT_BACKOFF - frac) / SSB_FFT_SIZE
    ramp = (_expj(w[:, None] * (int(_SSB_K[0]) + np.arange(_SSB_K.size))[None, :])
            * (1 / np.sqrt(SSB_FFT_SIZE))).astype(np.complex64)
    Y *= ramp[:, None, :]
    if offgrid_leak is not None:
        if symbols is not None:
            raise ValueError("offgrid_leak needs all four symbols")
        _offgrid_into(offgrid_leak, F, np.full(len(F), _SSB_BINS[0]), ramp, ramp)
    return Y.astype(np.complex64, copy=False)


def input_rate_fft_size(fs_hz: float, scs_khz: int) -> int | None:
    """The OFDM symbol's FFT size at the input rate, fs / SCS, when it is a
    whole number (30.72, 23.04, 19.5 Msps...; TS 38.211 §5.3.1): None otherwise
    (25 Msps at 30 kHz), where :func:`ssb_grids_input_rate` does not apply."""
    n = fs_hz / (scs_khz * 1e3)
    k = int(round(n))
    return k if k >= SSB_FFT_SIZE and abs(n - k) < 1e-6 else None


_NULL_K = tuple(np.flatnonzero(nr.NULL_RE_MASK[l]) for l in NULL_RE_SYMBOLS)  # symbols 0 and 2: 113 + 17
_N_NULL = tuple(k.size for k in _NULL_K)


# Traffic half a subcarrier off the SSB's grid. TS 38.211 §7.4.3.1 gives k_SSB (the SSB's
# subcarrier offset from its common resource block) in 15 kHz units for SS/PBCH block type A
# (FR1): with 30 kHz subcarriers, an odd k_SSB sets the SSB 15 kHz -- half a subcarrier -- off the
# carrier's other subcarriers, which are then not orthogonal to it. Only the common RBs that
# overlap the SSB are left empty in its symbols, so the cell's traffic can come 1.5 subcarriers
# from its edge, and every traffic RE leaks into the SSB's REs as sin(pi d) / (pi d) of its
# amplitude at a distance d (0.045 of its power at 1.5, falling as 1 / d^2): clean cells at 35-40
# dB SNR with traffic at the SSB's level on 90 % of the other RBs read their PSS-symbol null REs
# -21 to -29 dB under the SSB (12 cells, k_SSB = 1..23 odd), and 2 of 84 SSBs were called jammed.
# Outside the SSB's 240 subcarriers a symbol's FFT holds such traffic on half-bins (and nothing
# of the SSB's own REs, orthogonal there), so a least-squares fit of half-bin sources to the
# OFFGRID_BINS FFT bins on each side predicts their leakage into the null REs
# (:func:`_offgrid_plan`); it is taken out where that leaves at most OFFGRID_ACCEPT of the null
# REs' energy: on those cells -37 to -39 dB (the noise -40 dB). A signal on the SSB's grid (the
# cell's usual traffic, noise, every jammer of the library over a clean or a loaded cell) leaves
# 0.98-1.64 of it: nothing is taken out there (the `detect`, `loaded`, `beams`, `rates` and
# `cotimed` benches: not one SSB; `realjam`: 4 of 672, the same verdicts). At 0.25 instead, a
# k_SSB-odd site's SSBs were fitted or not as their symbols' traffic came near the SSB or not (17
# of 25 calibration SSBs of one site): its baseline a mixture of both, and a spoofer over such
# sites, calibrated, detected on 34 of 41 SSBs (38 without the fit, 36 at 0.7).
OFFGRID_BINS = 128
OFFGRID_ACCEPT = 0.7
OFFGRID_SCREEN = 0.85  # ... first tried on the 4 outermost null REs on each side of the PSS
_EDGE_K = np.r_[0:4, 236:240]  # those subcarriers
_EDGE_ROWS = np.r_[0:4, 109:113]  # their rows among the 130 null REs (symbol 0's 113 first)


@functools.lru_cache(maxsize=8)
def _offgrid_plan(n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The half-bin leakage predictor of an n-point symbol FFT (n >= 256).

    Returns ``(u, R)``: ``u`` int (2 W,), the bins outside the SSB read, as
    subcarrier indices relative to SSB subcarrier 0 (mod n; W = OFFGRID_BINS or
    less where n is small); ``R`` (130, 2 W), rows in the order of the
    null REs of symbols NULL_RE_SYMBOLS (``nr.NULL_RE_MASK``), so that ``F[u] @
    R.T`` is the leakage into those null REs of the half-bin sources that best
    explain a symbol's unnormalised FFT ``F`` on the bins ``u`` (complex64). None
    where no bin lies outside the SSB."""
    w = min(OFFGRID_BINS, (n - nr.SSB_N_SUBCARRIERS) // 2 - 1)
    if w < 1:
        return None
    n_sc = nr.SSB_N_SUBCARRIERS
    u = np.r_[np.arange(n_sc, n_sc + w), np.arange(n - w, n)]  # integer bins beside the SSB
    v = np.r_[np.arange(n_sc, n_sc + w), np.arange(n - w - 1, n - 1)] + 0.5  # half-bins 1.5+ from it

    def dirichlet(x: np.ndarray) -> np.ndarray:  # bin u's share of a unit source x bins off it
        return np.exp(1j * np.pi * x * (n - 1) / n) * np.sin(np.pi * x) / (n * np.sin(np.pi * x / n))

    k_null = np.concatenate(_NULL_K)  # (130,)
    d = dirichlet(v[None, :] - u[:, None])  # (2W bins, 2W half-bins), square
    b = dirichlet(v[None, :] - k_null[:, None])  # (130, 2W)
    # r = b d^-1: d is well conditioned (condition number 4-11 for n = 512-2048), so one LU
    # solve (~5 ms at W = 128) gives pinv's values to ~1e-15 (pinv's SVD: 55-70 ms, paid by the
    # first SSB a stream tracks)
    try:
        r = np.linalg.solve(d.T, b.T).T
    except np.linalg.LinAlgError:
        r = b @ np.linalg.pinv(d)
    r = np.ascontiguousarray(r, dtype=np.complex64)
    r.setflags(write=False)
    return u, r


def offgrid_leakage(F: np.ndarray, k0: np.ndarray) -> np.ndarray:
    """The leakage of half-bin traffic into the null REs of SSB symbols 0 and 2,
    where taking it out removes most of their energy (see OFFGRID_BINS).

    Parameters
    ----------
    F : complex64 (N, 4, n) -- each SSB symbol's unnormalised n-point FFT, the SSB's
        subcarriers on whole bins (subcarrier k on bin (k0 + k) mod n)
    k0 : int (N,) -- each row's bin of SSB subcarrier 0

    Returns
    -------
    complex64 (N, 130): the leakage to subtract from the null REs of symbols 0
    and 2 (``nr.NULL_RE_MASK`` order, F's units); rows where the fit leaves over
    OFFGRID_ACCEPT of their energy are zero.
    """
    m, _, n = F.shape
    out = np.zeros((m, N_NULL_RES), dtype=np.complex64)
    plan = _offgrid_plan(n)
    if plan is None or m == 0:
        return out
    u, r = plan
    k0 = np.asarray(k0, dtype=np.intp).reshape(m, 1)
    bins_out = (k0 + u) % n  # (m, 2W)
    l0, l2 = NULL_RE_SYMBOLS
    # first on the PSS symbol's outermost null REs, which such traffic reaches most: those
    # whose fit leaves more than OFFGRID_SCREEN of their energy are left at once (the fit
    # costs ~30 us per SSB over all 130)
    rows = np.arange(m)[:, None]
    flat, base0 = F.reshape(-1), (rows * F.shape[1] + l0) * n  # (flat takes: F[rows, l0, bins], faster)
    f0 = np.take(flat, base0 + bins_out)
    ye = np.take(flat, base0 + (k0 + _EDGE_K) % n)
    re = ye - f0 @ r[_EDGE_ROWS].T
    cand = np.flatnonzero(_energy(re) <= OFFGRID_SCREEN * _energy(ye))
    if cand.size == 0:
        return out
    rows, k0c = cand[:, None], k0[cand]
    n0 = _N_NULL[0]
    leak = np.concatenate([f0[cand] @ r[:n0].T, F[rows, l2, bins_out[cand]] @ r[n0:].T], axis=1)
    y = np.concatenate([F[rows, l, (k0c + k) % n] for l, k in zip(NULL_RE_SYMBOLS, _NULL_K)], axis=1)
    ok = _energy(y - leak) <= OFFGRID_ACCEPT * _energy(y)
    out[cand[ok]] = leak[ok]
    return out


def _offgrid_into(out: np.ndarray, F: np.ndarray, k0: np.ndarray, ph0: np.ndarray, ph2: np.ndarray) -> None:
    """``out`` complex64 (N, 130) := :func:`offgrid_leakage` of F, k0 in a grid's units:
    each null RE's leakage times that grid's per-subcarrier factor of symbol 0 (``ph0``)
    or 2 (``ph2``), complex64 (N, 240) each."""
    leak = offgrid_leakage(F, k0)
    n0 = _N_NULL[0]
    out[:, :n0] = leak[:, :n0] * ph0[:, _NULL_K[0]]
    out[:, n0:] = leak[:, n0:] * ph2[:, _NULL_K[1]]


def _energy(y: np.ndarray) -> np.ndarray:
    """Row sums of |y|^2 of complex64 (m, k): float64 (m,)."""
    return (np.einsum("ij,ij->i", y.real, y.real, dtype=np.float64)
            + np.einsum("ij,ij->i", y.imag, y.imag, dtype=np.float64))


def null_re_power_at(ys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``null_re_power(ssb_grids_at(ys, starts, NULL_RE_SYMBOLS))`` (to float32 rounding)
    without the grids: the linear phase :func:`ssb_grids_at` turns each RE by has
    unit modulus, so the null REs' power is that of their FFT bins over the FFT size.

    ys complex64 (N, n) SSB-rate signals, starts float (N,) as for ssb_grids_at;
    returns float64 (N,)."""
    win, _ = _ssb_rate_windows(ys, starts, NULL_RE_SYMBOLS)
    g = _fft(win, 2, True)[:, :, _SSB_BINS].reshape(len(ys), -1)[:, _NULL_MASK_02.ravel()]
    return (g.real.astype(np.float64) ** 2 + g.imag.astype(np.float64) ** 2).mean(axis=1) / SSB_FFT_SIZE


def ssb_grids_input_rate(xs: np.ndarray, starts: np.ndarray, fs_hz: float, scs_khz: int,
                         center_hz: np.ndarray, offgrid_leak: np.ndarray | None = None) -> np.ndarray:
    """:func:`ssb_grids_at`'s grids taken at the input rate: each SSB symbol's
    FFT window of fs / SCS samples (:func:`input_rate_fft_size`) straight from
    the recording, its 240 subcarriers picked from the full band.

    The SSB-rate signal is one filtering of a window several symbols long, whose
    brick-wall band edge smears the symbol boundaries of whatever is just outside
    the SSB's band -- the cell's traffic on the RBs beside it -- into the SSB's
    REs (a cell at 60 dB SNR with 90 % of its other RBs loaded at the SSB's level:
    null REs -36 dB under the SSB, its outer 8 subcarriers -30 dB; traffic
    20 dB over the SSB, as a beam-swept cell's weak SSB beams see it: -18 and
    -11 dB, which the detector took for a jammer). A symbol's own FFT at the
    input rate keeps every other subcarrier of the carrier orthogonal to the
    SSB's (TS 38.211 §5.3.1): the same cell, -55 dB with the traffic 20 dB over
    the SSB (23.04 Msps, 30 kHz; what is left comes from the CFO, read on the
    PSS at the SSB rate, 20-50 Hz off under such traffic).

    Parameters
    ----------
    xs : complex64 (N, L) -- input-rate windows; row i's sample 0 is sample 0 of
        the SSB-rate signal ``starts[i]`` refers to
    starts : float (N,) -- CP start of each SSB's first symbol in SSB-rate samples
    center_hz : float (N,) -- each window's SSB centre (offset + CFO) taken to DC
    offgrid_leak : complex64 (N, 130), optional -- filled (in place) with the leakage
        of signals half a subcarrier off the SSB's grid into the null REs of its
        symbols 0 and 2, in the grids' units, where it stands out (OFFGRID_BINS,
        :func:`offgrid_leakage`; zero elsewhere): for
        :func:`subtract_null_leakage`. The grids returned keep it.

    Returns
    -------
    complex64 (N, 4, 240): the grids of :func:`ssb_grids_at` (the same phase
    reference, per symbol, and the same units: a unitary 256-point FFT of the
    SSB-rate signal)
    """
    n = input_rate_fft_size(fs_hz, scs_khz)
    if n is None:
        raise ValueError(f"fs / SCS = {fs_hz / (scs_khz * 1e3):g} is not a whole FFT size")
    m, length = xs.shape
    r = n / SSB_FFT_SIZE  # input samples per SSB-rate sample
    starts = np.asarray(starts, dtype=np.float64)
    i0 = np.floor(starts)
    # ssb_grids_at's reference: its window at i0 + _GRID_FIRST, turned by (FFT_BACKOFF - frac)
    ref = (i0 + SSB_CP - (starts - i0))[:, None] + (np.arange(nr.SSB_N_SYMBOLS) * SSB_SYMBOL_LEN)[None, :]
    ref_in = ref * r  # (N, 4), input samples
    a = np.floor(ref_in - FFT_BACKOFF * r).astype(np.intp)  # each window inside its CP, as at the SSB rate
    if m and (a.min() < 0 or int(a.max()) + n > length):
        raise ValueError("SSB window outside the signal")
    rows = np.arange(m)[:, None]
    win = np.lib.stride_tricks.sliding_window_view(xs, n, axis=1)[rows, a]  # (N, 4, n), a copy
    # the SSB centre c to DC, in phase with the window's sample 0 (the SSB-rate rotation's origin):
    # x[a + j] exp(-2 pi i c (a + j) / fs) = exp(-2 pi i c a / fs) x[a + j] exp(-2 pi i k_c j / n)
    # exp(-2 pi i c_rest j / fs), c = k_c fs / n + c_rest: the whole bins k_c move the bins read,
    # the rest turns the samples, the first factor each symbol
    c = np.asarray(center_hz, dtype=np.float64).reshape(m)
    k_c = np.round(c * n / fs_hz)
    win *= _expj_lin_rows(-2 * np.pi * (c - k_c * fs_hz / n) / fs_hz, n).astype(np.complex64)[:, None, :]
    bins = (_SSB_K[None, :] + k_c.astype(np.intp)[:, None]) % n  # (N, 240)
    F = _fft(win, 2, True)
    # (one flat take: the same values as F[rows, symbols, bins], without the broadcast index)
    Y = np.take(F.reshape(-1), bins[:, None, :] + ((np.arange(m) * nr.SSB_N_SYMBOLS)[:, None, None]
                                                   + np.arange(nr.SSB_N_SYMBOLS)[None, :, None]) * n)
    # referenced to ref_in (d samples after the window's start), each symbol's phase, and the
    # SSB rate's units
    d = ref_in - a
    theta = (2 * np.pi / n) * d  # (N, 4): exp(1j theta k), k = -120..119, as 15 x 16 products
    hi = _expj(theta[:, :, None] * (float(_SSB_K[0]) + 16.0 * np.arange(15))[None, None, :])
    lo = _expj(theta[:, :, None] * np.arange(16.0)[None, None, :])
    hi *= (_expj(-2 * np.pi * c[:, None] * a / fs_hz) * (np.sqrt(SSB_FFT_SIZE) / n))[:, :, None]
    ph = (hi[:, :, :, None] * lo[:, :, None, :]).reshape(m, nr.SSB_N_SYMBOLS, _SSB_K.size).astype(np.complex64)
    Y *= ph
    if offgrid_leak is not None:  # traffic half a subcarrier off the SSB's grid (OFFGRID_BINS)
        _offgrid_into(offgrid_leak, F, bins[:, 0], ph[:, NULL_RE_SYMBOLS[0]], ph[:, NULL_RE_SYMBOLS[1]])
    return Y


def subtract_null_leakage(grids: np.ndarray, leak: np.ndarray) -> None:
    """grids complex64 (N, 4, 240) less ``leak`` complex64 (N, 130) on the null REs of
    symbols NULL_RE_SYMBOLS (:func:`ssb_grids_input_rate`'s ``offgrid_leak``), in place."""
    n0 = _N_NULL[0]
    grids[:, NULL_RE_SYMBOLS[0], _NULL_K[0]] -= leak[:, :n0]
    grids[:, NULL_RE_SYMBOLS[1], _NULL_K[1]] -= leak[:, n0:]


@functools.lru_cache(maxsize=16)
def _smooth_plan(n: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    half = width // 2
    i = np.arange(n)
    lo = np.maximum(i - half, 0)
    hi = np.minimum(i - half + width, n)
    cnt = (hi - lo).astype(np.float64)
    for v in (lo, hi, cnt):
        v.setflags(write=False)
    return lo, hi, cnt


def smooth_freq(h: np.ndarray, width: int, zero_edges: bool = False) -> np.ndarray:
    """Centred moving average along the last axis (same length), vectorised over
    any leading axes with a cumulative sum: edge-normalised (the mean of the
    entries the window covers), summed in complex64, complex64 out; with
    ``zero_edges``, zeros beyond the ends (each sum over ``width``:
    scipy.signal.convolve's "same" output with a box of ``width``, odd), summed
    and returned in complex128.
    """
    if width <= 1:
        return h.astype(np.complex128) if zero_edges else h
    n = h.shape[-1]
    lo, hi, cnt = _smooth_plan(n, width)
    c = np.zeros(h.shape[:-1] + (n + 1,), np.complex128)
    c[..., 1:] = np.cumsum(h, axis=-1, dtype=np.complex128 if zero_edges else None)
    if zero_edges:
        return (c[..., hi] - c[..., lo]) / width
    return ((c[..., hi] - c[..., lo]) / cnt).astype(np.complex64)


def phase_slope(h: np.ndarray, step: int = 1) -> float:
    """Linear phase per subcarrier of a channel estimate (rad / subcarrier)."""
    c = np.vdot(h[:-step], h[step:])
    return float(np.angle(c) / step)


@dataclass(frozen=True)
class CellId:
    pci: int
    nid1: int
    nid2: int
    sss_metric: float  # normalised |correlation| of the best N_ID1, 0..1
    sss_margin: float  # best / second-best metric
    ibar: int
    dmrs_metric: float  # normalised, 0..1
    dmrs_margin: float


_PSS_SL = slice(int(PSS_K[0]), int(PSS_K[-1]) + 1)  # PSS_K as a slice (contiguous)
_PSS_K_F64 = np.arange(_PSS_SL.start, _PSS_SL.stop, dtype=np.float64)  # its subcarriers, as the ramps take them
_PSS_K_F64.setflags(write=False)
_ARANGE_240 = np.arange(nr.SSB_N_SUBCARRIERS)


class _Deramped:
    """An SSB grid with the timing slope measured on the PSS removed, evaluated
    lazily: only the REs the SSS / DMRS matches read are de-ramped.

    ``ramp`` (240,) complex64, ``h0s`` (127,) the smoothed PSS channel, ``g2``
    (127,) the SSS symbol in the PSS band; :meth:`at` gives any other REs.
    """

    __slots__ = ("grid", "ramp", "h0s", "g2")

    def __init__(self, grid: np.ndarray, nid2: int):
        p = nr.pss(nid2)
        self.grid = grid
        h0 = grid[0, _PSS_SL] * p
        self.ramp = _expj_lin(-phase_slope(h0), 0, nr.SSB_N_SUBCARRIERS).astype(np.complex64)
        r = self.ramp[_PSS_SL]
        self.h0s = smooth_freq(grid[0, _PSS_SL] * r * p, 5)
        self.g2 = grid[2, _PSS_SL] * r

    def at(self, l: np.ndarray, k: np.ndarray) -> np.ndarray:
        return self.grid[l, k] * self.ramp[k]

    def sss_z(self) -> tuple[np.ndarray, float]:
        """(z, norm): the SSS REs equalised with the PSS channel, and the
        normalisation that makes a perfect match 1."""
        z = self.g2 * np.conj(self.h0s)  # (127,)
        norm = np.sqrt(np.sum(np.abs(self.g2) ** 2) * np.sum(np.abs(self.h0s) ** 2)) + 1e-30
        return z, norm


def _deramp(grid: np.ndarray, nid2: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove the timing slope measured on the PSS; return (grid, smoothed PSS channel)."""
    d = _Deramped(grid, nid2)
    return grid * d.ramp[None, :], d.h0s


@functools.lru_cache(maxsize=3)
def _sss_rows(nid2: int) -> np.ndarray:
    """The 336 SSS sequences of one N_ID2, (336, 127) float32, contiguous."""
    t = np.ascontiguousarray(nr.sss_table()[nid2::3], dtype=np.float32)
    t.setflags(write=False)
    return t


def _sss_from(d: _Deramped, nid2: int) -> np.ndarray:
    z, norm = d.sss_z()
    # real matrix times a (127, 2) matrix: no complex cast of the table, and a product
    # small enough that BLAS keeps it on one thread
    zz = np.empty((z.size, 2), np.float32)
    zz[:, 0] = z.real
    zz[:, 1] = z.imag
    c = _sss_rows(nid2) @ zz
    return np.hypot(c[:, 0], c[:, 1]) / norm


SSS_GROUP_SC = 8  # subcarriers per group of the grouped SSS matches (about a cell's coherence bandwidth)


@functools.lru_cache(maxsize=1)
def sss_groups() -> np.ndarray:
    """All 1008 SSS sequences (TS 38.211 §7.4.2.3), zero-padded to 128 and cut
    in 16 groups of SSS_GROUP_SC subcarriers: float64 (1008, 16, 8), read-only."""
    t = sss_rx_groups(nr.sss_table()).real.copy()
    t.setflags(write=False)
    return t


def sss_rx_groups(y: np.ndarray) -> np.ndarray:
    """The 127 SSS REs of each row of ``y`` (m, 127) zero-padded to 128 and cut
    as :func:`sss_groups`: complex128 (m, 16, 8)."""
    y = np.asarray(y)
    out = np.zeros((y.shape[0], 128), np.complex128)
    out[:, : nr.SSS_LENGTH] = y
    return out.reshape(-1, 128 // SSS_GROUP_SC, SSS_GROUP_SC)


def sss_group_energy(rx_groups: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """Grouped SSS match: received SSS REs ``rx_groups`` complex (m, 16, 8)
    (:func:`sss_rx_groups`) against sequences ``seqs`` (p, 16, 8) (rows of
    :func:`sss_groups`), each group's sum over its subcarriers taken coherently
    and the groups' |sum|^2 added: float64 (m, p)."""
    c = np.einsum("mgk,pgk->mpg", rx_groups, seqs)
    return np.sum(c.real * c.real + c.imag * c.imag, axis=2)


def sss_metrics(grid: np.ndarray, nid2: int) -> np.ndarray:
    """Non-coherent SSS match of all 336 N_ID1 for one N_ID2, shape (336,).

    Real gNBs put an arbitrary phase between the PSS and SSS symbols, so the SSS
    is matched through |sum_k Y_sss[k] H_pss*[k] d_sss[k]| with H_pss the
    (smoothed) channel seen on the PSS; normalised to 1 for a perfect match.
    """
    return _sss_from(_Deramped(grid, nid2), nid2)


def _fit_out(y: np.ndarray, own: np.ndarray | None, others: list[np.ndarray]) -> np.ndarray:
    """``y`` (127,) less the part of it that the sequences ``others`` (each (127,),
    +-1) carry, their gains fitted by least squares in each group of SSS_GROUP_SC
    subcarriers together with that of ``own`` (None: not fitted): complex128 (127,)."""
    g = SSS_GROUP_SC
    n_grp = -(-nr.PSS_LENGTH // g)
    pad = n_grp * g - nr.PSS_LENGTH
    cols = ([own] if own is not None else []) + others
    A = np.stack([np.concatenate([np.asarray(c, np.float64), np.zeros(pad)]) for c in cols], axis=1)
    A = A.reshape(n_grp, g, len(cols))  # (groups, subcarriers, sequences)
    yg = np.concatenate([y.astype(np.complex128), np.zeros(pad)]).reshape(n_grp, g)
    h = np.einsum("gcs,gs->gc", np.linalg.pinv(A), yg)  # (groups, sequences): each one's gain
    k = 1 if own is not None else 0
    fit = np.einsum("gsc,gc->gs", A[:, :, k:], h[:, k:])
    return (yg - fit).ravel()[: nr.PSS_LENGTH]


def cancel_cell_sync(grid: np.ndarray, own_nid2: int, other_nid2s, other_pcis=()) -> np.ndarray:
    """An SSB grid with the PSS (and SSS) of other co-timed cells taken out: a
    new complex64 (4, 240).

    Cells whose SSBs overlap (a synchronised TDD network; co-sited sectors) put
    their PSS on symbol 0 and their SSS on symbol 2, subcarriers 56..182 (TS
    38.211 Table 7.4.3.1-1). Within each group of SSS_GROUP_SC subcarriers
    (about a coherence bandwidth) the channels are taken flat. On symbol 0 the
    PSS of every N_ID2 in ``other_nid2s`` (§7.4.2.2.1) is fitted jointly with
    the own one (``own_nid2``; least squares, one gain per sequence and group:
    co-timed cells of one N_ID2 share a gain) and subtracted; on symbol 2 the
    SSS (§7.4.2.3.1) of each cell in ``other_pcis`` is fitted (jointly, the
    own SSS being unknown: each takes with it about 1/SSS_GROUP_SC of the own
    SSS's energy per group) and subtracted. Each other cell's phase between its
    PSS and SSS (arbitrary on real gNBs), its own CFO and timing are in the fits."""
    others = sorted({int(n) for n in other_nid2s} - {int(own_nid2)})
    out = np.array(grid, dtype=np.complex64, copy=True)
    if others:
        out[0, _PSS_SL] = _fit_out(out[0, _PSS_SL], nr.pss(own_nid2), [nr.pss(n) for n in others])
    pcis = sorted({int(p) for p in other_pcis})
    if any(p % 3 == own_nid2 % 3 for p in pcis):
        raise ValueError(f"other_pcis={pcis}: a cell of the own N_ID2 {own_nid2}")
    if pcis:
        out[2, _PSS_SL] = _fit_out(out[2, _PSS_SL], None, [nr.sss(p) for p in pcis])
    return out


def identify(grid: np.ndarray, nid2: int, nid1: int | None = None, sss: np.ndarray | None = None) -> CellId:
    """Cell identity at one SSB: N_ID1 from the SSS (or the given one, decided
    over several SSBs) and ī_SSB from the PBCH-DMRS.

    Parameters
    ----------
    grid : complex64, shape (4, 240)
    sss : the (336,) SSS metrics whose best and second-best give the margin
        (default: this SSB's own)
    """
    d = _Deramped(grid, nid2)
    m = _sss_from(d, nid2) if sss is None else sss
    order = np.argsort(m)
    if nid1 is None:
        nid1 = int(order[-1])
    second = m[order[-2]] if order[-1] == nid1 else m[order[-1]]
    pci = 3 * nid1 + nid2
    scores, _ = _dmrs_scores(d, pci)
    srt = np.sort(scores)
    ibar = int(np.argmax(scores))
    z, norm = d.sss_z()
    return CellId(
        pci=pci,
        nid1=nid1,
        nid2=nid2,
        sss_metric=float(abs(np.dot(nr.sss(pci), z)) / norm),
        sss_margin=float(m[nid1] / max(second, 1e-30)),
        ibar=ibar,
        dmrs_metric=float(scores[ibar]),
        dmrs_margin=float(srt[-1] / max(srt[-2], 1e-30)),
    )


def gscn_candidates_hz(center_freq_hz: float, sample_rate_hz: float, scs_khz: int,
                       span_subcarriers: int = nr.SSB_N_SUBCARRIERS) -> np.ndarray:
    """SSB centre frequencies on the synchronization raster (TS 38.104 §5.4.3.1)
    whose SSB fits inside the captured band -- with ``span_subcarriers``, the
    middle that many subcarriers of it (e.g. the PSS's 127) -- as offsets from
    the capture centre, sorted by distance from the centre.

    Raster: 0-3000 MHz: N * 1200 kHz + M * 50 kHz, M in {1, 3, 5};
    3000-24250 MHz: 3000 MHz + N * 1.44 MHz.
    """
    half_ssb = span_subcarriers / 2 * scs_khz * 1e3
    usable = sample_rate_hz / 2 - half_ssb
    if usable < 0:
        return np.zeros(0)
    lo, hi = center_freq_hz - usable, center_freq_hz + usable
    pts = []
    if lo < 3000e6:
        n = np.arange(math.floor(lo / 1.2e6), math.ceil(min(hi, 3000e6) / 1.2e6) + 1)
        for m_hz in (50e3, 150e3, 250e3):
            pts.append(n * 1.2e6 + m_hz)
    if hi >= 3000e6:
        n = np.arange(max(0, math.floor((lo - 3000e6) / 1.44e6)), math.ceil((hi - 3000e6) / 1.44e6) + 1)
        pts.append(3000e6 + n * 1.44e6)
    f = np.concatenate(pts) if pts else np.zeros(0)
    f = f[(f >= lo) & (f <= hi)]
    off = f - center_freq_hz
    return off[np.argsort(np.abs(off), kind="stable")]


# The part of a recording's band where its SSBs are scored: +-USABLE_BAND_FRACTION x fs / 2.
# A receiver's anti-alias filter is flat over the middle of the band and rolls off towards
# +-fs / 2, where it also folds the band beyond the other edge onto it: an SSB reaching into
# that edge has its outer subcarriers attenuated and overlaid by what lies past the other
# edge (traffic, the noise beyond the filter), which its residual reads as interference. Clean
# cells resampled from 30.72 Msps to 19.5 and 25 Msps (scipy's polyphase filter), 38 SSBs
# per point: none called jammed with the SSB's edge at 0.84, 0.90 and 0.94 of fs / 2, 6 at
# 0.97. Not lower: at the SSB's own rate (7.68 Msps at 30 kHz SCS, 3.84 at 15 kHz) the SSB
# fills 0.9375 of the band, centred. A front end that rolls off earlier than that filter (some
# SDRs are rated for 80-90 % of their sample rate) is set with ReceiverConfig.usable_band.
USABLE_BAND_FRACTION = 0.95


def ssb_in_band(ssb_offset_hz: float, sample_rate_hz: float, scs_khz: int,
                usable_hz: float | None = None) -> bool:
    """Whether an SSB centred ``ssb_offset_hz`` from the capture centre lies
    wholly inside the captured band: its 240 subcarriers within +-fs / 2, or
    within +-``usable_hz`` when given (the part of the band the receiver's
    filter passes flat: USABLE_BAND_FRACTION)."""
    half = sample_rate_hz / 2 if usable_hz is None else min(float(usable_hz), sample_rate_hz / 2)
    return abs(ssb_offset_hz) + nr.SSB_N_SUBCARRIERS / 2 * scs_khz * 1e3 <= half


BLIND_WINDOWS_PER_CHUNK = 128  # symbol windows per FFT batch of the blind search (bounds its memory)


@functools.lru_cache(maxsize=8)
def _blind_plan(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What every window of n samples of the blind search uses: the spectra (3, n)
    of the three PSS differential sequences c(j) = d(j) d(j+1), j = 0..125 (d the
    BPSK PSS of each N_ID2, TS 38.211 §7.4.2.2), zero-padded to n, conjugated
    (corr = ifft(fft(Z) * plan) is sum_j Z[k + j] c(j)); the conjugated real
    spectrum of 126 ones (the sliding sum of |Z|^2); and the half-bin shift
    exp(-j pi m / n), complex64 (n,). Read-only."""
    c = np.zeros((3, n), np.complex64)
    for nid2 in range(3):
        d = nr.pss(nid2).real
        c[nid2, : nr.PSS_LENGTH - 1] = d[:-1] * d[1:]
    plan = np.conj(sfft.fft(c, axis=1, workers=1)).astype(np.complex64)
    taps_f = np.conj(sfft.rfft(np.r_[np.ones(nr.PSS_LENGTH - 1), np.zeros(n - nr.PSS_LENGTH + 1)], workers=1))
    half = np.exp(-1j * np.pi * np.arange(n) / n).astype(np.complex64)
    for arr in (plan, taps_f, half):
        arr.setflags(write=False)
    return plan, taps_f, half


def blind_ssb_offsets_hz(x: np.ndarray, fs_hz: float, scs_khz: int, n_best: int = 4) -> list[float]:
    """Where in the captured band an SSB may be, without a raster to say where:
    the SSB centre frequencies (Hz from the capture centre) of the ``n_best``
    strongest PSS-like spectra, best first, for a cell search to try.

    The band is cut into windows of one OFDM symbol (n = fs / SCS samples) every
    n/2 samples, each taken to the frequency domain, and its subcarriers
    correlated *differentially* with each PSS: Z[k] = Y[k] Y*[k+1] against
    c(j) = d(j) d(j+1) over the 126 adjacent pairs of the 127 PSS subcarriers
    (TS 38.211 §7.4.2.2 / Table 7.4.3.1-1, k = 56..182 of the SSB). A window
    that holds the PSS symbol off its start by t samples multiplies Y[k] by
    exp(j 2 pi k t / n), which leaves |sum Z c| unchanged: no timing search is
    needed, one FFT per half symbol of signal, and every subcarrier shift is
    scored at once by one more FFT per N_ID2. A frequency error of half a
    subcarrier blurs the PSS over two bins; a second grid of windows shifted by
    half a bin covers it. The metric per shift is |sum Z c| / sqrt(126 sum
    |Z|^2): 1 for a clean PSS, ~0.09 for noise and for energy in a few bins
    (a tone or spur, which a sum |Z| normalisation would score 1); its maximum
    over windows, N_ID2 and the two grids ranks the shifts, and shifts within 3
    subcarriers of a better one are dropped. (Shifts of 43 or 86 subcarriers
    from a PSS match part of another N_ID2's sequence, TS 38.211 §7.4.2.2: a
    cell search sorts those out.)

    Parameters
    ----------
    x : complex64 (n_samples,)
    fs_hz : sample rate
    scs_khz : SSB subcarrier spacing (15 or 30)

    Returns
    -------
    list of float offsets (SSB centre, subcarrier 120, minus capture centre, Hz),
    at most ``n_best``; empty when the block is shorter than two symbols or the
    rate cannot hold the SSB.
    """
    return run_steps(blind_ssb_offsets_steps(x, fs_hz, scs_khz, n_best))


def run_steps(steps):
    """Run a step generator (:func:`blind_ssb_offsets_steps`,
    :func:`detector.receiver.acquire_steps`) to its end; its return value."""
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        return stop.value


def blind_ssb_offsets_steps(x: np.ndarray, fs_hz: float, scs_khz: int, n_best: int = 4):
    """:func:`blind_ssb_offsets_hz` as a generator that yields between chunks of
    BLIND_WINDOWS_PER_CHUNK windows (a live cell search spreads it over time)
    and returns its offsets (``StopIteration.value``)."""
    n = int(round(fs_hz / (scs_khz * 1e3)))
    if n < SSB_FFT_SIZE * 240 // 256 or x.size < 2 * n:
        return []  # too short, or a rate that cannot hold the SSB
    n_win = (x.size - n) // (n // 2) + 1
    best = np.zeros(2 * n, np.float32)
    for w0 in range(0, n_win, BLIND_WINDOWS_PER_CHUNK):
        _blind_pss_metric(x, n, w0, min(n_win, w0 + BLIND_WINDOWS_PER_CHUNK), best)
        yield
    return _blind_offsets_from_metric(best, fs_hz, scs_khz, n_best)


def _blind_pss_metric(x: np.ndarray, n: int, w0: int, w1: int, best: np.ndarray) -> None:
    """Windows [w0, w1) of :func:`blind_ssb_offsets_hz` (n samples each, n/2 apart):
    ``best``, float32 (2 n,) (the whole-bin grid's shifts, then the half-bin
    grid's), takes the maximum of itself and their metric."""
    hop = n // 2
    x = np.ascontiguousarray(x[w0 * hop: (w1 - 1) * hop + n], dtype=np.complex64)
    frames = np.lib.stride_tricks.as_strided(x, shape=(w1 - w0, n), strides=(hop * 8, 8))
    plan, taps_f, half = _blind_plan(n)
    for g, fr in enumerate((frames, frames * half)):
        y = sfft.fft(fr, axis=1, workers=1)
        z = y * np.conj(np.roll(y, -1, axis=1))  # Z[k] = Y[k] Y*[k+1]
        az2 = z.real ** 2 + z.imag ** 2
        # sqrt(126 sum_j |Z[k + j]|^2), j = 0..125 (circular): 126 equal |Z| (a PSS) give
        # 1; energy in a few bins (a tone, a spur, a narrowband signal) ~1/sqrt(126)
        den = sfft.irfft(sfft.rfft(az2, axis=1, workers=1) * taps_f, n, axis=1, workers=1)
        den = np.sqrt(np.maximum(den * (nr.PSS_LENGTH - 1), 1e-30 + 1e-6 * den.max(initial=0.0)))
        zf = sfft.fft(z, axis=1, workers=1)
        seg = best[g * n:(g + 1) * n]
        for nid2 in range(3):
            corr = np.abs(sfft.ifft(zf * plan[nid2], axis=1, workers=1))
            np.maximum(seg, (corr / den).max(axis=0).astype(np.float32), out=seg)


def _blind_offsets_from_metric(best: np.ndarray, fs_hz: float, scs_khz: int, n_best: int) -> list[float]:
    """The SSB centre offsets (Hz) of the ``n_best`` best shifts of a
    :func:`_blind_pss_metric`, best first, none within 3 subcarriers of a better
    one, each with its SSB inside the captured band."""
    scs_hz = scs_khz * 1e3
    n = best.size // 2
    bin_hz = fs_hz / n
    usable_hz = fs_hz / 2 - 120 * scs_hz
    out: list[float] = []
    for i in np.argsort(-best, kind="stable")[: 64 * max(n_best, 1)]:
        g, k = divmod(int(i), n)
        # k is the bin of d(0), SSB subcarrier 56: the SSB centre (k = 120) is 64 bins up
        f = ((k + 64 + 0.5 * g) % n) * bin_hz
        f = f - n * bin_hz if f >= fs_hz / 2 else f
        if abs(f) > usable_hz + 0.5 * bin_hz or any(abs(f - t) < 3 * scs_hz for t in out):
            continue
        out.append(float(f))
        if len(out) >= n_best:
            break
    return out


@functools.lru_cache(maxsize=1024)
def _dmrs_refs(pci: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PBCH-DMRS REs of symbols 1 and 3 inside the PSS band (k = 56..182), and
    their reference values for the 8 ī_SSB: (l, k, refs (8, n))."""
    dl, dk = nr.ssb_re_indices(pci)["dmrs"]
    sel = ((dl == 1) | (dl == 3)) & (dk >= PSS_K[0]) & (dk <= PSS_K[-1])
    refs = np.stack([nr.pbch_dmrs(pci, ib)[sel] for ib in range(8)])
    return dl[sel], dk[sel], refs


@functools.lru_cache(maxsize=1024)
def _dmrs_plan(pci: int) -> tuple:
    """Per DMRS symbol (1, 3): (l, k, k - 56, conj refs (8, n) complex64, n)."""
    l, k, refs = _dmrs_refs(pci)
    out = []
    for sym in (1, 3):
        rows = l == sym
        cr = np.ascontiguousarray(np.conj(refs[:, rows])).astype(np.complex64)
        out.append((l[rows], k[rows], k[rows] - int(PSS_K[0]), cr, int(rows.sum())))
    return tuple(out)


def _dmrs_scores(d: _Deramped, pci: int) -> tuple[np.ndarray, float]:
    """Normalised PBCH-DMRS match of the 8 ī_SSB hypotheses (0..1 each).

    The DMRS of symbols 1 and 3 inside the PSS band are equalised with the PSS
    channel estimate (so a frequency-selective channel does not decorrelate
    them) and summed coherently per symbol; the two symbols' magnitudes are
    added (each symbol may carry its own phase on real gNBs).
    """
    num = np.zeros(8)
    den = 0.0
    for l, k, kh, cr, n in _dmrs_plan(pci):
        z = d.at(l, k) * np.conj(d.h0s[kh])  # (n,)
        num += np.abs((cr * z[None, :]).sum(axis=1))
        den += np.sqrt(n * np.sum(np.abs(z) ** 2))
    return num / (den + 1e-30), float(den)


@functools.lru_cache(maxsize=64)
def _track_plan(pci: int) -> tuple:
    """What :func:`track_identities` needs of one cell: PSS, SSS (as complex64),
    the PBCH-DMRS REs of symbols 1 and 3 in the PSS band (rows, columns, index
    into the PSS band), the conjugate references of the 8 ī_SSB on each symbol
    ((8, n1), (8, n3)) and the REs per symbol."""
    (l1, k1, kh1, cr1, n1), (l3, k3, kh3, cr3, n3) = _dmrs_plan(pci)
    out = (nr.pss(pci % 3), np.ascontiguousarray(nr.sss(pci), dtype=np.complex64),
           np.concatenate([l1, l3]), np.concatenate([k1, k3]), np.concatenate([kh1, kh3]), cr1, cr3, n1, n3)
    for a in out:
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    return out


def _row_sums(x: np.ndarray) -> np.ndarray:
    """Sums along the last axis in double precision, as running sums: one
    order of addition for every row, whatever the batch around it (numpy's
    and BLAS's reductions may order them by the array's shape and alignment)."""
    x = x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)
    return np.cumsum(x, axis=-1)[..., -1]


def track_identity(grid: np.ndarray, pci: int, ibar: int | None = None) -> tuple[int, float, float]:
    """(ī_SSB, SSS match, DMRS match) of a known cell at one SSB, with one
    de-ramp: ī_SSB from the PBCH-DMRS when ``ibar`` is None, else the given one.

    The same metrics as :func:`identify` (:class:`_Deramped`, :func:`_dmrs_scores`);
    :func:`track_identities` of one SSB."""
    ib, sss_m, dmrs_m = track_identities(np.asarray(grid).reshape(1, 4, 240), [pci], [-1 if ibar is None else ibar])
    return int(ib[0]), float(sss_m[0]), float(dmrs_m[0])


# A tracked SSB's PBCH-DMRS names another SSB index than its slot's only when its best match
# is this many times the runner-up's (track_identities' ``priors``). Measured on the daemon
# bench's loops (partial-band noise 8 dB over the cell from the first sample, seeds 1-2): the
# PSS that tracking still finds under the jammer (peaks 0.15-0.27) comes with DMRS matches of
# 0.08-0.37 for every index, the best at most 1.54x the runner-up (at most 2.9x the slot's
# own), and before this rule the records of 16 of the 40 slots of seed 2's loop named a wrong
# index; clean SSBs (simulated, 15.36 Msps, 8 SSBs, 6 recordings of 100 ms each): the best is
# always the slot's own, 2.03x the runner-up or more in 95 % at 0 dB SNR (1.42x at -3 dB), 2.6x
# at 5 dB, 4x at 20 dB.
DMRS_OVERRIDE_RATIO = 2.0


def track_identities(grids: np.ndarray, pcis, ibars, priors=None,
                     l_max=8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`track_identity` of N SSBs, vectorised over the SSBs of each cell
    (this runs for every tracked SSB); each SSB's values do not depend on the
    others of the batch (no BLAS products, running sums: see :func:`_row_sums`).

    Parameters
    ----------
    grids : complex64, shape (N, 4, 240)
    pcis : int, shape (N,) -- the known cell of each SSB
    ibars : int, shape (N,) -- the given ī_SSB, or -1: decide it from the PBCH-DMRS
    priors : int, shape (N,), optional -- where ``ibars`` is -1, the ī_SSB the SSB's
        position in the burst says (a tracked slot's), or -1 for none. The decision
        keeps to the ī_SSB of the prior's SSB index (ī_SSB mod L_max: with L_max = 4
        the half-frame bit, ī_SSB's third bit, TS 38.211 §7.4.1.4.1, is still decided)
        unless another index matches DMRS_OVERRIDE_RATIO times better: a jammer
        leaves every index's match at the noise's level, and the position is right.
    l_max : int or int array (N,) -- L_max of each SSB's cell (4 or 8; used with ``priors``)

    Returns
    -------
    (ī_SSB int64 (N,), SSS match float64 (N,), DMRS match float64 (N,))
    """
    grids = np.asarray(grids, dtype=np.complex64)
    pcis = np.asarray(pcis, dtype=np.int64).reshape(-1)
    ibars = np.asarray(ibars, dtype=np.int64).reshape(-1)
    priors = np.full(ibars.shape, -1, np.int64) if priors is None else np.asarray(priors, np.int64).reshape(-1)
    l_maxes = np.broadcast_to(np.asarray(l_max, np.int64), ibars.shape)
    n = grids.shape[0]
    ib_out = np.empty(n, np.int64)
    sss_out = np.empty(n)
    dmrs_out = np.empty(n)
    p0 = int(pcis[0]) if n else 0
    groups = [(p0, slice(None))] if n and (pcis == p0).all() else \
        [(int(c), np.flatnonzero(pcis == c)) for c in np.unique(pcis)]
    for pci, rows in groups:
        p, sss, dl, dk, dkh, cr1, cr3, n1, n3 = _track_plan(pci)
        g = grids[rows]
        k = g.shape[0]
        h0 = cmul(g[:, 0, _PSS_SL], p)  # (k, 127)
        # phase step per subcarrier (timing slope): h0[:-1]^H h0[1:] per SSB
        c = _row_sums(cmul(np.conj(h0[:, :-1]), h0[:, 1:]))
        # (the ramp over the PSS band alone: every RE read below lies in it)
        r = _expj(-np.arctan2(c.imag, c.real)[:, None] * _PSS_K_F64[None, :]).astype(np.complex64)  # (k, 127)
        h0s = smooth_freq(cmul(h0, r), 5)  # smoothed PSS channel (de-ramped)
        h0c = np.conj(h0s)
        g2 = cmul(g[:, 2, _PSS_SL], r)
        z = cmul(g2, h0c)
        gh = np.stack([g2, h0s], axis=1)  # (k, 2, 127)
        e2 = _row_sums(gh.real * gh.real + gh.imag * gh.imag)
        norm = np.sqrt(e2[:, 0] * e2[:, 1]) + 1e-30
        sss_m = np.abs(_row_sums(cmul(z, sss))) / norm
        # PBCH-DMRS of symbols 1 and 3, equalised with the PSS channel; per symbol |sum|
        zd = cmul(cmul(g[:, dl, dk], r[:, dkh]), h0c[:, dkh])  # (k, n1 + n3)
        e = zd.real * zd.real + zd.imag * zd.imag
        if n1 == n3:  # (the DMRS of both symbols in the PSS band: the same count)
            a = np.abs(_row_sums(cmul(zd.reshape(k, 2, 1, n1), np.stack([cr1, cr3])))).sum(axis=1)
            e13 = _row_sums(e.reshape(k, 2, n1))
            den = np.sqrt(n1 * e13[:, 0]) + np.sqrt(n3 * e13[:, 1])
        else:
            a = np.abs(_row_sums(cmul(zd[:, None, :n1], cr1))) + np.abs(_row_sums(cmul(zd[:, None, n1:], cr3)))
            den = np.sqrt(n1 * _row_sums(e[:, :n1])) + np.sqrt(n3 * _row_sums(e[:, n1:]))
        scores = a / (den + 1e-30)[:, None]  # (k, 8)
        best = np.argmax(scores, axis=1)
        prior = priors[rows]
        if (prior >= 0).any():
            lm = l_maxes[rows]
            family = (np.arange(8)[None, :] % lm[:, None]) == (prior % lm)[:, None]
            best_family = np.argmax(np.where(family, scores, -1.0), axis=1)
            top2 = np.partition(scores, 6, axis=1)[:, 6:]  # (k, 2): the runner-up, the best
            keep = top2[:, 1] < DMRS_OVERRIDE_RATIO * top2[:, 0]
            best = np.where((prior >= 0) & keep, best_family, best)
        ib = np.where(ibars[rows] >= 0, ibars[rows], best)
        ib_out[rows] = ib
        sss_out[rows] = sss_m
        dmrs_out[rows] = scores[np.arange(k), ib]
    return ib_out, sss_out, dmrs_out


def best_ibar(grid: np.ndarray, pci: int) -> int:
    """ī_SSB (0..7) from the PBCH-DMRS (see :func:`_dmrs_scores`)."""
    scores, _ = _dmrs_scores(_Deramped(grid, pci % 3), pci)
    return int(np.argmax(scores))


# ---------------------------------------------------------------------------
# Coarse PSS search over many centre frequencies (acquisition)
# ---------------------------------------------------------------------------
PSS_RATE_FFT = 128  # the PSS's 127 subcarriers fit a 128-point FFT at 128 x SCS


@functools.lru_cache(maxsize=16)
def _pss_half_rate_spectra(n: int) -> np.ndarray:
    """conj FFT (size n) of the unit-energy PSS replicas at 128 x SCS, (3, n)."""
    rep = np.zeros((3, n), dtype=np.complex64)
    k = PSS_K - nr.SSB_CENTER_SUBCARRIER  # -64..62
    for nid2 in range(3):
        f = np.zeros(PSS_RATE_FFT, dtype=np.complex64)
        f[k % PSS_RATE_FFT] = nr.pss(nid2)
        t = np.fft.ifft(f)
        rep[nid2, :PSS_RATE_FFT] = t / np.linalg.norm(t)
    return np.conj(sfft.fft(rep, axis=1, workers=1)).astype(np.complex64)


@functools.lru_cache(maxsize=4)
def _coarse_plan(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather offsets (numpy order, from the centre bin) of the m bins at 128 x SCS,
    and the (4, m) filter bank: the PSS-band mask (-64..62 +- 1 subcarriers) and
    the mask times the three conjugate replica spectra."""
    off = sfft.ifftshift(np.arange(-(m // 2), m - m // 2)).astype(np.intp)
    f = sfft.fftfreq(m, 1.0 / PSS_RATE_FFT)
    mask = (~((f < -65) | (f > 63))).astype(np.float32)
    bank = np.empty((4, m), np.complex64)
    bank[0] = mask
    bank[1:] = _pss_half_rate_spectra(m) * mask
    off.setflags(write=False)
    bank.setflags(write=False)
    return off, bank


def coarse_pss_search(X: np.ndarray, fs_hz: float, n_out: int, center_hz: float, n_valid_in: int) -> tuple[float, int, int]:
    """Best normalised PSS correlation at one centre frequency, computed from a
    block spectrum at half the SSB rate (PSS band only).

    Parameters
    ----------
    X : block spectrum from :func:`band_spectrum` at the SSB rate (``n_out`` output bins)

    Returns
    -------
    (rho2 max, N_ID2, lag at the SSB rate)
    """
    n_in = X.shape[0]
    m = n_out // 2  # half the SSB rate
    n_valid = min(m, int(n_valid_in * m / n_in))
    n_lags = n_valid - PSS_RATE_FFT + 1
    if n_lags <= 0:
        return 0.0, 0, 0
    k0 = int(round(center_hz / (fs_hz / n_in)))
    off, bank = _coarse_plan(m)
    Y = excise_tones(np.take(X, off + k0, mode="wrap"), bank[0].real)  # numpy order, m bins at 128 x SCS
    t = sfft.ifft(bank * Y, axis=1, workers=1, overwrite_x=True)  # [PSS-band signal, 3 correlations]
    yp = t[0, :n_valid]
    e = np.empty(n_valid + 1)
    e[0] = 0.0
    np.cumsum(yp.real.astype(np.float64) ** 2 + yp.imag.astype(np.float64) ** 2, out=e[1:])
    energy = e[PSS_RATE_FFT:] - e[:-PSS_RATE_FFT]
    corr = t[1:, :n_lags]
    rho2 = (corr.real ** 2 + corr.imag ** 2) / np.maximum(energy[:n_lags], max(float(energy.max()) * 1e-9, 1e-30)).astype(np.float32)
    pe = path_energy(rho2, (PATH_WINDOW + 1) // 2)  # half rate: half the lags
    i = np.unravel_index(int(np.argmax(pe)), pe.shape)
    return float(pe[i]), int(i[0]), int(i[1]) * 2


PATH_WINDOW = 9  # lags (SSB-rate samples, ~1.2 us at 30 kHz) of multipath energy combined


PSS_IC_FLOOR = 0.1  # least share of a window's energy left to a PSS once the others' are taken out


def pss_rho2_ic(rho2: np.ndarray) -> np.ndarray:
    """rho2 of each N_ID2 with the energy the other two replicas explain taken
    out of the normalisation: rho2_i / max(1 - sum_{j != i} rho2_j,
    PSS_IC_FLOOR). rho2 float32 (3, n) from :func:`pss_correlate` (the three
    N_ID2 in order); same shape out.

    The three PSS sequences are nearly orthogonal (TS 38.211 §7.4.2.2: cyclic
    shifts 0, 43 and 86 of one m-sequence), so a loud PSS of another N_ID2 in
    the window -- a PSS-only spoofer or a strong co-timed cell -- adds its
    energy to the denominator of a cell's rho2 and nothing to its correlation:
    a fake PSS 9 dB over the cell's takes the cell's rho2 from ~1 to ~0.12,
    under every detection threshold, and the cell is not found at all. Taken
    out, the cell's PSS reads as if alone. Noise alone moves by ~2/127; the
    floor keeps a strong cell's cross-correlation with the other replicas
    (~1/127 of its energy) from being magnified more than 10 times."""
    r = np.asarray(rho2, dtype=np.float32)
    others = r.sum(axis=0, keepdims=True) - r
    return (r / np.maximum(1.0 - others, PSS_IC_FLOOR)).astype(np.float32)


def path_energy(rho2: np.ndarray, width: int = PATH_WINDOW) -> np.ndarray:
    """Sum of rho2 over the ``width`` lags starting at each lag (RAKE-like).

    Multipath spreads the PSS's energy over several lags; detection on the
    summed energy does not lose the cell in a frequency-selective channel.
    Shape preserved (the last lags sum fewer terms).
    """
    rho2 = np.asarray(rho2, dtype=np.float32)
    n = rho2.shape[-1]
    out = rho2.copy()
    for j in range(1, min(width, n)):
        out[..., : n - j] += rho2[..., j:]
    return out


def first_path(rho2_row: np.ndarray, start: int, width: int = PATH_WINDOW, fraction: float = 0.5) -> int:
    """Earliest lag in [start, start + width) whose rho2 reaches ``fraction`` of
    the window's maximum: the timing of the first strong path."""
    w = rho2_row[start : start + width]
    return start + int(np.flatnonzero(w >= fraction * w.max())[0])


ISI_PATH_FLOOR = 0.1  # lags under this fraction of the peak's rho2 are not counted as paths (sidelobes, noise)


TIMING_MAX_SHIFT = max(MISTIMED_CELL_TAPS)  # the SSB's timing this many samples before its strongest path at most


def least_isi_timing(rho2_row: np.ndarray, n: int, before: int = TIMING_MAX_SHIFT, after: int = SSB_CP,
                     cp: int = SSB_CP, backoff: int = FFT_BACKOFF) -> int:
    """The SSB timing (a lag of ``rho2_row``) whose FFT windows catch the least of
    the neighbouring symbols through the channel's paths, among the lags from
    ``before`` samples before the strongest path ``n`` up to ``n`` (at most
    TIMING_MAX_SHIFT: the strongest path stays among the serving PSS's taps that
    the mistimed-cell search fits, MISTIMED_CELL_TAPS).

    With the windows timed on lag t (they start ``backoff`` samples before the
    end of each CP), a path at lag p < t - backoff brings t - backoff - p samples
    of the next symbol into each window, one at p > t + cp - backoff that many of
    the symbol before. The paths are the lags of ``rho2_row`` (float, the PSS
    correlation: each path's power, smeared by the correlation's main lobe) from
    ``n - before - backoff`` to ``n + after`` at ISI_PATH_FLOOR of rho2[n] or
    more (a PSS further off is another cell's: a co-channel cell a CP early or
    late is the mistimed-cell search's, EARLY_CELL_LAGS); each leaked sample is weighted
    by its path's rho2. The cost's minimum nearest to n is taken: a channel of
    one path keeps its timing on it, one whose strongest path comes after a
    strong earlier one is timed earlier (the strongest path then in the CP).
    Returns the lag (int)."""
    lo = max(n - before - backoff, 0)
    floor = ISI_PATH_FLOOR * float(rho2_row[n])
    if n - backoff <= lo or max(rho2_row[lo : n - backoff].tolist()) < floor:  # (a few lags: no numpy reduction)
        return int(n)  # no path that timing on n lets leak (the usual case): later paths only lose
    hi = min(n + after + 1, len(rho2_row))
    p = np.arange(lo, hi)
    w = np.asarray(rho2_row[lo:hi], dtype=np.float64)
    w = np.where(w >= floor, w, 0.0)
    t = np.arange(max(n - before, 0), n + 1)[:, None]  # candidate timings (k, 1)
    leak = np.maximum(t - backoff - p[None, :], 0) + np.maximum(p[None, :] - (t + cp - backoff), 0)
    cost = leak @ w  # (k,)
    best = np.flatnonzero(cost <= cost.min() * (1 + 1e-9) + 1e-12)
    return int(t[best[-1], 0])  # the latest of the minima: nearest to the strongest path
