"""Jammer waveform library for SS/PBCH-block (SSB) jamming scenarios.

Every generator is a pure function that returns an *unscaled* jammer
waveform; the scenario simulator scales it to the requested SJNR by measuring
the jammer-only waveform's per-RE power inside the SSB band over each SSB's
symbols. Generators therefore only guarantee a nominal power and the right
spectral / temporal shape:

**Power convention** -- the returned waveform has mean power
``mean(|w|^2) = 1`` over the samples where the jammer is ON (all samples for
continuous jammers; the gate's ON samples for pulsed, reactive and spoofer
jammers). Noise jammers are normalised on the realised samples (exactly 1);
tone and chirp jammers have unit (or ``1/K`` per tone) amplitude by
construction.

Common signature::

    make_<type>(n_samples, sample_rate_hz, rng, *, ssb_center_hz,
                ssb_bandwidth_hz, **params) -> (waveform, params_used)

* ``waveform``: ``np.complex64``, shape ``(n_samples,)``.
* ``ssb_center_hz``: offset of the SSB centre from the capture centre (Hz).
* ``ssb_bandwidth_hz``: SSB bandwidth, 240 subcarriers x SCS (e.g. 7.2e6 at
  30 kHz). The SSB band ``ssb_center_hz +- ssb_bandwidth_hz/2`` must lie inside
  ``+-sample_rate_hz/2``. The SSB subcarrier spacing is taken as
  ``ssb_bandwidth_hz / 240`` where a type needs it.
* Parameters not given are drawn with ``rng`` from the ranges documented per
  type. ``params_used`` is JSON-serialisable and records every parameter
  (given or drawn) plus ``"type"``, ``"narrowband"`` (bool: power in discrete
  lines / a narrow instantaneous band rather than spread over the SSB band)
  and ``"temporal"`` (``"continuous"``, ``"pulsed"`` or
  ``"ssb_synchronous"``).

The registry :data:`JAMMERS` maps the type names to the generators and
:func:`make_jammer` dispatches by name.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import scipy.fft as _fft

from .channel import (
    _as_waveform,
    _check_int,
    _check_real,
    _check_rng,
    _check_sample_rate,
    _tone,
    complex_noise,
    apply_cfo,
    fractional_delay,
)

__all__ = [
    "JAMMERS",
    "make_jammer",
    "make_barrage",
    "make_ssb_band_noise",
    "make_partial_band_noise",
    "make_cw",
    "make_multi_tone",
    "make_sweep",
    "make_pulsed_noise",
    "make_reactive",
    "make_spoofer",
    "ssb_symbol_gate",
]

#: Number of subcarriers of an SS/PBCH block (TS 38.211 §7.4.3.1).
SSB_N_SUBCARRIERS = 240

#: Maximum |offset| of CW / multi-tone frequencies from the SSB centre, as a
#: fraction of the SSB bandwidth (keeps the tones off the band edges).
TONE_SPAN_FRACTION = 0.45


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _check_common(n_samples: Any, sample_rate_hz: Any, rng: Any, ssb_center_hz: Any,
                  ssb_bandwidth_hz: Any) -> tuple[int, float, float, float]:
    n = _check_int("n_samples", n_samples, 1)
    fs = _check_sample_rate(sample_rate_hz)
    _check_rng(rng)
    bw = _check_real("ssb_bandwidth_hz", ssb_bandwidth_hz, 0.0, fs, lo_open=True)
    lim = fs / 2.0 - bw / 2.0
    fc = _check_real("ssb_center_hz", ssb_center_hz, -lim, lim)
    return n, fs, fc, bw


def _check_band_in_nyquist(name: str, value: float, center_hz: float, bandwidth_hz: float, fs: float) -> None:
    lo, hi = center_hz - bandwidth_hz / 2.0, center_hz + bandwidth_hz / 2.0
    if lo < -fs / 2.0 * (1 + 1e-12) or hi > fs / 2.0 * (1 + 1e-12):
        raise ValueError(
            f"{name}={value!r} puts the band [{lo:g}, {hi:g}] Hz outside the capture band "
            f"[{-fs / 2:g}, {fs / 2:g}] Hz")


def _mean_power(w: np.ndarray) -> float:
    if w.size == 0:
        return 0.0
    re = w.real.astype(np.float64)
    im = w.imag.astype(np.float64)
    return float(np.mean(re * re + im * im))


def _normalise(w: np.ndarray, on: np.ndarray | None = None) -> np.ndarray:
    """Scale so that the mean power over ``on`` (or all samples) is 1."""
    p = _mean_power(w if on is None else w[on])
    if p > 0.0:
        w = w * np.float32(1.0 / math.sqrt(p))
    return w.astype(np.complex64, copy=False)


def _band_noise(n: int, fs: float, center_hz: float, bandwidth_hz: float,
                rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise confined by an FFT brick-wall mask to
    ``center_hz +- bandwidth_hz/2`` (flat in band, circular over the block),
    normalised to mean power exactly 1. complex64, shape (n,)."""
    w = complex_noise(n, 1.0, rng)
    if bandwidth_hz >= fs:
        return _normalise(w)
    spec = _fft.fft(w)
    f = _fft.fftfreq(n, d=1.0 / fs)
    mask = np.abs(f - center_hz) <= bandwidth_hz / 2.0
    if not mask.any():  # narrower than one bin: keep the nearest bin
        mask[int(np.argmin(np.abs(f - center_hz)))] = True
    spec[~mask] = 0.0
    return _normalise(_fft.ifft(spec))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _base_params(kind: str, fc: float, bw: float, *, narrowband: bool, temporal: str) -> dict:
    return {"type": kind, "narrowband": narrowband, "temporal": temporal,
            "ssb_center_hz": fc, "ssb_bandwidth_hz": bw}


# --------------------------------------------------------------------------
# 1. barrage
# --------------------------------------------------------------------------
def make_barrage(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                 ssb_center_hz: float, ssb_bandwidth_hz: float,
                 bandwidth_hz: float | None = None, center_hz: float = 0.0) -> tuple[np.ndarray, dict]:
    """Barrage jammer: white Gaussian noise over (most of) the capture band.

    Parameters
    ----------
    n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz
        See the module docstring.
    bandwidth_hz : float or None
        Occupied bandwidth in Hz, ``(0, sample_rate_hz]``; default
        ``0.9 * sample_rate_hz`` (not drawn). FFT brick-wall mask, flat in band.
    center_hz : float
        Centre of the noise band relative to the capture centre (Hz), default 0;
        the band must fit inside +-sample_rate_hz/2.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power 1 (continuous).
    params_used : dict
        ``type="barrage"``, ``narrowband=False``, ``temporal="continuous"``,
        ``bandwidth_hz``, ``center_hz``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    b = 0.9 * fs if bandwidth_hz is None else _check_real("bandwidth_hz", bandwidth_hz, 0.0, fs, lo_open=True)
    c = _check_real("center_hz", center_hz, -fs / 2.0, fs / 2.0)
    _check_band_in_nyquist("center_hz", c, c, b, fs)
    w = _band_noise(n, fs, c, b, rng)
    p = _base_params("barrage", fc, bw, narrowband=False, temporal="continuous")
    p.update(bandwidth_hz=b, center_hz=c)
    return w, p


# --------------------------------------------------------------------------
# 2. SSB-band noise
# --------------------------------------------------------------------------
def make_ssb_band_noise(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                        ssb_center_hz: float, ssb_bandwidth_hz: float,
                        margin_hz: float | None = None) -> tuple[np.ndarray, dict]:
    """Noise band-limited to the SSB band (matched-band noise jammer).

    Flat (FFT brick-wall mask) over ``ssb_center_hz +- (ssb_bandwidth_hz/2 +
    margin_hz)``.

    Parameters
    ----------
    margin_hz : float or None
        Extra bandwidth on each side of the SSB band in Hz,
        ``[0, ssb_bandwidth_hz/2]``; default drawn ``U(0, 0.02) *
        ssb_bandwidth_hz`` (so >= 96 % of the power is inside the SSB band),
        limited to what fits inside the capture band.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power 1 (continuous).
    params_used : dict
        ``type="ssb_band_noise"``, ``narrowband=False``,
        ``temporal="continuous"``, ``margin_hz``, ``bandwidth_hz``, ``center_hz``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    room = fs / 2.0 - (abs(fc) + bw / 2.0)
    if margin_hz is None:
        m = min(float(rng.uniform(0.0, 0.02)) * bw, room)
    else:
        m = _check_real("margin_hz", margin_hz, 0.0, bw / 2.0)
        _check_band_in_nyquist("margin_hz", m, fc, bw + 2.0 * m, fs)
    b = bw + 2.0 * m
    w = _band_noise(n, fs, fc, b, rng)
    p = _base_params("ssb_band_noise", fc, bw, narrowband=False, temporal="continuous")
    p.update(margin_hz=m, bandwidth_hz=b, center_hz=fc)
    return w, p


# --------------------------------------------------------------------------
# 3. partial-band noise
# --------------------------------------------------------------------------
def make_partial_band_noise(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                            ssb_center_hz: float, ssb_bandwidth_hz: float,
                            band_fraction: float | None = None,
                            offset_hz: float | None = None) -> tuple[np.ndarray, dict]:
    """Noise over a fraction of the SSB band.

    Parameters
    ----------
    band_fraction : float or None
        Jammed bandwidth as a fraction of ``ssb_bandwidth_hz``, ``[0.01, 1]``;
        default drawn ``U(0.1, 0.6)``.
    offset_hz : float or None
        Centre of the jammed band relative to ``ssb_center_hz`` (Hz). Default
        drawn uniformly so the jammed band lies entirely inside the SSB band:
        ``U(-(1 - f)/2, (1 - f)/2) * ssb_bandwidth_hz``. A given value must
        make the band overlap the SSB band (``|offset_hz| < (1 + f)/2 *
        ssb_bandwidth_hz``) and fit inside the capture band.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power 1 (continuous).
    params_used : dict
        ``type="partial_band_noise"``, ``narrowband=False``,
        ``temporal="continuous"``, ``band_fraction``, ``offset_hz``,
        ``bandwidth_hz``, ``center_hz`` (absolute centre of the jammed band).
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    frac = (float(rng.uniform(0.1, 0.6)) if band_fraction is None
            else _check_real("band_fraction", band_fraction, 0.01, 1.0))
    b = frac * bw
    if offset_hz is None:
        half = (1.0 - frac) / 2.0 * bw
        off = float(rng.uniform(-half, half))
    else:
        lim = (1.0 + frac) / 2.0 * bw
        off = _check_real("offset_hz", offset_hz, -lim, lim, lo_open=True, hi_open=True)
        _check_band_in_nyquist("offset_hz", off, fc + off, b, fs)
    w = _band_noise(n, fs, fc + off, b, rng)
    p = _base_params("partial_band_noise", fc, bw, narrowband=False, temporal="continuous")
    p.update(band_fraction=frac, offset_hz=off, bandwidth_hz=b, center_hz=fc + off)
    return w, p


# --------------------------------------------------------------------------
# 4. CW and 5. multi-tone
# --------------------------------------------------------------------------
def make_cw(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
            ssb_center_hz: float, ssb_bandwidth_hz: float,
            tone_offset_hz: float | None = None, phase_rad: float | None = None) -> tuple[np.ndarray, dict]:
    """Continuous-wave (single-tone) jammer inside the SSB band.

    ``w[n] = exp(j(2 pi (ssb_center_hz + tone_offset_hz) n / fs + phase_rad))``.

    Parameters
    ----------
    tone_offset_hz : float or None
        Tone frequency relative to ``ssb_center_hz`` (Hz), within
        ``+-ssb_bandwidth_hz/2``; default drawn ``U(-0.45, 0.45) *
        ssb_bandwidth_hz``.
    phase_rad : float or None
        Initial phase, default drawn ``U(0, 2 pi)``.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), unit modulus (power 1).
    params_used : dict
        ``type="cw"``, ``narrowband=True``, ``temporal="continuous"``,
        ``tone_offset_hz``, ``freq_hz`` (absolute, relative to the capture
        centre), ``phase_rad``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    if tone_offset_hz is None:
        off = float(rng.uniform(-TONE_SPAN_FRACTION, TONE_SPAN_FRACTION)) * bw
    else:
        off = _check_real("tone_offset_hz", tone_offset_hz, -bw / 2.0, bw / 2.0)
    ph = (float(rng.uniform(0.0, 2.0 * np.pi)) if phase_rad is None
          else _check_real("phase_rad", phase_rad, -1e6, 1e6))
    w = _tone(n, (fc + off) / fs, 0, ph).astype(np.complex64)
    p = _base_params("cw", fc, bw, narrowband=True, temporal="continuous")
    p.update(tone_offset_hz=off, freq_hz=fc + off, phase_rad=ph)
    return w, p


def make_multi_tone(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                    ssb_center_hz: float, ssb_bandwidth_hz: float,
                    n_tones: int | None = None,
                    tone_offsets_hz: list[float] | None = None,
                    phases_rad: list[float] | None = None) -> tuple[np.ndarray, dict]:
    """Multi-tone jammer: K equal-power tones inside the SSB band.

    ``w[n] = sum_k K^-1/2 exp(j(2 pi (ssb_center_hz + f_k) n / fs + phi_k))``.

    Parameters
    ----------
    n_tones : int or None
        Number of tones K, ``[2, 16]``; default drawn uniformly from 2..16.
        Ignored (taken from the list) when ``tone_offsets_hz`` is given.
    tone_offsets_hz : list of float or None
        Tone frequencies relative to ``ssb_center_hz`` (Hz), each within
        ``+-ssb_bandwidth_hz/2``, 2..16 of them. Default: K distinct points of
        the SSB subcarrier grid (spacing SCS = ssb_bandwidth_hz/240) within
        ``+-0.45 * ssb_bandwidth_hz``, drawn without replacement, plus one
        common offset ``U(-0.5, 0.5) * SCS``. Distinct grid points keep the
        tones >= 1 SCS apart so the cross terms average out (mean power ~1).
    phases_rad : list of float or None
        Initial phases (one per tone), default drawn ``U(0, 2 pi)``.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power ~1 (each tone 1/K).
    params_used : dict
        ``type="multi_tone"``, ``narrowband=True``, ``temporal="continuous"``,
        ``n_tones``, ``tone_offsets_hz`` (list), ``phases_rad`` (list).
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    if tone_offsets_hz is None:
        k = int(rng.integers(2, 17)) if n_tones is None else _check_int("n_tones", n_tones, 2, 16)
        scs = bw / SSB_N_SUBCARRIERS
        kmax = int(math.floor(TONE_SPAN_FRACTION * SSB_N_SUBCARRIERS))
        grid = rng.choice(2 * kmax + 1, size=k, replace=False) - kmax
        common = float(rng.uniform(-0.5, 0.5))
        offs = [float((g + common) * scs) for g in np.sort(grid)]
    else:
        arr = np.atleast_1d(np.asarray(tone_offsets_hz, dtype=np.float64))
        if arr.ndim != 1 or not 2 <= arr.size <= 16:
            raise ValueError(f"tone_offsets_hz must list 2..16 frequencies, got {arr.size}")
        k = int(arr.size)
        offs = [_check_real(f"tone_offsets_hz[{i}]", v, -bw / 2.0, bw / 2.0) for i, v in enumerate(arr)]
    if phases_rad is None:
        phs = [float(v) for v in rng.uniform(0.0, 2.0 * np.pi, k)]
    else:
        arr = np.atleast_1d(np.asarray(phases_rad, dtype=np.float64))
        if arr.shape != (k,):
            raise ValueError(f"phases_rad must have {k} entries (one per tone), got {arr.size}")
        phs = [_check_real(f"phases_rad[{i}]", v, -1e6, 1e6) for i, v in enumerate(arr)]
    acc = np.zeros(n, dtype=np.complex128)
    for off, ph in zip(offs, phs):
        acc += _tone(n, (fc + off) / fs, 0, ph)
    w = (acc / math.sqrt(k)).astype(np.complex64)
    p = _base_params("multi_tone", fc, bw, narrowband=True, temporal="continuous")
    p.update(n_tones=k, tone_offsets_hz=offs, phases_rad=phs)
    return w, p


# --------------------------------------------------------------------------
# 6. sweep
# --------------------------------------------------------------------------
def make_sweep(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
               ssb_center_hz: float, ssb_bandwidth_hz: float,
               period_s: float | None = None, margin_hz: float | None = None,
               direction: str | None = None, start_fraction: float | None = None,
               phase_rad: float | None = None) -> tuple[np.ndarray, dict]:
    """Swept (linear-chirp, sawtooth) jammer across the SSB band.

    The instantaneous frequency ramps linearly over ``ssb_center_hz +-
    (ssb_bandwidth_hz/2 + margin_hz)`` once per ``period_s`` and jumps back
    (sawtooth); the phase is the exact integral of the frequency, hence
    continuous, including at the jumps. Unit modulus.

    Parameters
    ----------
    period_s : float or None
        Sweep period in seconds, ``[1e-6, 1]``; default drawn log-uniformly in
        ``[10e-6, 1e-3]``.
    margin_hz : float or None
        Sweep extension beyond each SSB band edge (Hz), ``[0, ssb_bandwidth_hz]``;
        default drawn ``U(0, 0.1) * ssb_bandwidth_hz``, limited to what fits
        inside the capture band.
    direction : {"up", "down"} or None
        Sweep direction; default drawn with equal probability.
    start_fraction : float or None
        Position in the sweep period at sample 0, ``[0, 1)``; default drawn
        ``U(0, 1)``.
    phase_rad : float or None
        Initial phase, default drawn ``U(0, 2 pi)``.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), unit modulus (power 1).
    params_used : dict
        ``type="sweep"``, ``narrowband=False`` (instantaneously narrow but
        spread over the SSB band on average), ``temporal="continuous"``,
        ``period_s``, ``margin_hz``, ``sweep_bandwidth_hz``, ``direction``,
        ``start_fraction``, ``phase_rad``, ``sweep_rate_hz_per_s``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    period = (_log_uniform(rng, 10e-6, 1e-3) if period_s is None
              else _check_real("period_s", period_s, 1e-6, 1.0))
    room = fs / 2.0 - (abs(fc) + bw / 2.0)
    if margin_hz is None:
        m = min(float(rng.uniform(0.0, 0.1)) * bw, room)
    else:
        m = _check_real("margin_hz", margin_hz, 0.0, bw)
        _check_band_in_nyquist("margin_hz", m, fc, bw + 2.0 * m, fs)
    if direction is None:
        direction = "up" if rng.uniform() < 0.5 else "down"
    elif direction not in ("up", "down"):
        raise ValueError(f"direction={direction!r} is not one of ['down', 'up']")
    start = (float(rng.uniform(0.0, 1.0)) if start_fraction is None
             else _check_real("start_fraction", start_fraction, 0.0, 1.0, hi_open=True))
    ph = (float(rng.uniform(0.0, 2.0 * np.pi)) if phase_rad is None
          else _check_real("phase_rad", phase_rad, -1e6, 1e6))
    b = bw + 2.0 * m
    sign = 1.0 if direction == "up" else -1.0
    f_start = fc - sign * b / 2.0  # frequency at the start of each period

    def cycles(u: np.ndarray) -> np.ndarray:
        # integral_0^u f(s) ds for the sawtooth f(s) = f_start + sign*b*frac(s/T)
        k = np.floor(u / period)
        tau = u - k * period
        return f_start * u + sign * b * (k * (period / 2.0) + tau * tau / (2.0 * period))

    t0 = start * period
    u = np.arange(n, dtype=np.float64) / fs + t0
    cyc = cycles(u) - cycles(np.array([t0]))[0]
    cyc -= np.floor(cyc)
    w = np.exp(1j * (2.0 * np.pi * cyc + ph)).astype(np.complex64)
    p = _base_params("sweep", fc, bw, narrowband=False, temporal="continuous")
    p.update(period_s=period, margin_hz=m, sweep_bandwidth_hz=b, direction=direction,
             start_fraction=start, phase_rad=ph, sweep_rate_hz_per_s=sign * b / period)
    return w, p


# --------------------------------------------------------------------------
# 7. pulsed noise
# --------------------------------------------------------------------------
def make_pulsed_noise(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                      ssb_center_hz: float, ssb_bandwidth_hz: float,
                      duty_cycle: float | None = None, period_s: float | None = None,
                      pattern_offset_s: float | None = None,
                      band: str | None = None) -> tuple[np.ndarray, dict]:
    """Pulsed noise jammer: noise gated by a periodic on/off pattern.

    Sample n is ON when ``(n / fs + pattern_offset_s) mod period_s <
    duty_cycle * period_s`` (rectangular gate; OFF samples are exactly 0).

    Parameters
    ----------
    duty_cycle : float or None
        ON fraction, ``[0.01, 1]``; default drawn ``U(0.1, 0.5)``.
    period_s : float or None
        Pattern period in seconds, ``[1e-6, 1]``; default drawn log-uniformly
        in ``[0.1e-3, 5e-3]``.
    pattern_offset_s : float or None
        Pattern phase (s), ``[0, period_s)``; default drawn ``U(0, period_s)``.
    band : {"ssb", "wideband"} or None
        ``"ssb"``: noise flat over exactly the SSB band; ``"wideband"``: over
        ``0.9 * sample_rate_hz`` centred at 0 Hz. Default drawn with equal
        probability.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power 1 over the ON samples
        (all-zero if no ON sample falls in the capture).
    params_used : dict
        ``type="pulsed_noise"``, ``narrowband=False``, ``temporal="pulsed"``,
        ``duty_cycle``, ``period_s``, ``pattern_offset_s``, ``band``,
        ``bandwidth_hz``, ``center_hz``, ``on_fraction`` (measured ON fraction
        of this capture).
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    duty = (float(rng.uniform(0.1, 0.5)) if duty_cycle is None
            else _check_real("duty_cycle", duty_cycle, 0.01, 1.0))
    period = (_log_uniform(rng, 0.1e-3, 5e-3) if period_s is None
              else _check_real("period_s", period_s, 1e-6, 1.0))
    offset = (float(rng.uniform(0.0, period)) if pattern_offset_s is None
              else _check_real("pattern_offset_s", pattern_offset_s, 0.0, period, hi_open=True))
    if band is None:
        band = "ssb" if rng.uniform() < 0.5 else "wideband"
    elif band not in ("ssb", "wideband"):
        raise ValueError(f"band={band!r} is not one of ['ssb', 'wideband']")
    center, b = (fc, bw) if band == "ssb" else (0.0, 0.9 * fs)
    t = np.arange(n, dtype=np.float64) / fs + offset
    on = np.mod(t, period) < duty * period
    w = _band_noise(n, fs, center, b, rng)
    w = np.where(on, w, np.complex64(0)).astype(np.complex64)
    w = _normalise(w, on)
    p = _base_params("pulsed_noise", fc, bw, narrowband=False, temporal="pulsed")
    p.update(duty_cycle=duty, period_s=period, pattern_offset_s=offset, band=band,
             bandwidth_hz=b, center_hz=center, on_fraction=float(np.count_nonzero(on)) / n)
    return w, p


# --------------------------------------------------------------------------
# 8. reactive
# --------------------------------------------------------------------------
def make_reactive(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                  ssb_center_hz: float, ssb_bandwidth_hz: float, ssb_mask: Any,
                  reaction_delay_s: float | None = None,
                  hang_s: float | None = None) -> tuple[np.ndarray, dict]:
    """Reactive (SSB-synchronous) jammer: SSB-band noise on air only while SSBs are.

    For every run ``[a, b)`` of True samples in ``ssb_mask`` the jammer is ON
    over ``[a + d, b + d + h)`` with ``d = round(reaction_delay_s * fs)`` (it
    detects the SSB and reacts late, and detects its end just as late) and
    ``h = round(hang_s * fs)`` (hold time); overlapping intervals merge and
    the gate is cut at the end of the capture. The noise is flat over exactly
    the SSB band.

    Parameters
    ----------
    ssb_mask : array_like of bool, shape (n_samples,)
        True during the SSBs' 4 OFDM symbols (provided by the simulator).
    reaction_delay_s : float or None
        Reaction latency (s), ``[0, 1e-3]``; default drawn ``U(0, 2e-6)``.
    hang_s : float or None
        Hold time after the (delayed) SSB end (s), ``[0, 1e-3]``; default drawn
        ``U(0, 5e-6)``.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power 1 over the ON samples
        (all-zero when the gate is empty).
    params_used : dict
        ``type="reactive"``, ``narrowband=False``,
        ``temporal="ssb_synchronous"``, ``reaction_delay_s``, ``hang_s``,
        ``reaction_delay_samples``, ``hang_samples``, ``bandwidth_hz``,
        ``center_hz``, ``on_fraction``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    mask = np.asarray(ssb_mask)
    if mask.shape != (n,) or mask.dtype != np.bool_:
        raise ValueError(f"ssb_mask must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
    d_s = (float(rng.uniform(0.0, 2e-6)) if reaction_delay_s is None
           else _check_real("reaction_delay_s", reaction_delay_s, 0.0, 1e-3))
    h_s = (float(rng.uniform(0.0, 5e-6)) if hang_s is None
           else _check_real("hang_s", hang_s, 0.0, 1e-3))
    d = int(round(d_s * fs))
    h = int(round(h_s * fs))
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    events = np.zeros(n + 1, dtype=np.int64)
    np.add.at(events, np.minimum(starts + d, n), 1)
    np.add.at(events, np.minimum(ends + d + h, n), -1)
    on = np.cumsum(events[:n]) > 0
    w = _band_noise(n, fs, fc, bw, rng)
    w = np.where(on, w, np.complex64(0)).astype(np.complex64)
    w = _normalise(w, on)
    p = _base_params("reactive", fc, bw, narrowband=False, temporal="ssb_synchronous")
    p.update(reaction_delay_s=d_s, hang_s=h_s, reaction_delay_samples=d, hang_samples=h,
             bandwidth_hz=bw, center_hz=fc, on_fraction=float(np.count_nonzero(on)) / n)
    return w, p


# --------------------------------------------------------------------------
# 9. spoofer
# --------------------------------------------------------------------------
def make_spoofer(n_samples: int, sample_rate_hz: float, rng: np.random.Generator, *,
                 ssb_center_hz: float, ssb_bandwidth_hz: float, template: Any,
                 mode: str | None = None, offset_samples: float | None = None,
                 cfo_hz: float | None = None) -> tuple[np.ndarray, dict]:
    """Protocol-aware spoofer: a fake PSS / SSB transmission aligned with the real SSBs.

    The simulator builds ``template`` according to ``mode`` -- ``"pss"``: the
    PSS of another PCI only; ``"ssb"``: complete fake SS/PBCH blocks
    (PSS + SSS + PBCH + DM-RS) of another PCI -- OFDM-modulated and placed at
    the real SSB times, zero elsewhere. This generator normalises it to mean
    power 1 over its ON samples (``|template|^2 > 1e-12 max|template|^2``),
    then delays it by ``offset_samples`` (band-limited fractional delay, see
    :func:`signals.channel.fractional_delay`) and applies ``cfo_hz``.

    Parameters
    ----------
    template : array_like of complex, shape (n_samples,)
        Fake synchronisation waveform (coerced to complex64), not all zero.
    mode : {"pss", "ssb"}
        Required: must say how ``template`` was built (recorded for labels).
    offset_samples : float or None
        Timing offset (delay) in samples, ``[0, 64]``; default drawn
        ``U(0, 2)``.
    cfo_hz : float or None
        Carrier-frequency offset in Hz, ``|cfo_hz| <= sample_rate_hz/2``;
        default drawn ``U(-500, 500)``.

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,), mean power ~1 over the template's ON
        samples.
    params_used : dict
        ``type="spoofer"``, ``narrowband=False``,
        ``temporal="ssb_synchronous"``, ``mode``, ``offset_samples``,
        ``cfo_hz``, ``on_fraction``.
    """
    n, fs, fc, bw = _check_common(n_samples, sample_rate_hz, rng, ssb_center_hz, ssb_bandwidth_hz)
    if mode not in ("pss", "ssb"):
        raise ValueError(f"mode={mode!r} is required and must be one of ['pss', 'ssb'] "
                         "(it must match how the simulator built the template)")
    tpl = _as_waveform(template, "template")
    if tpl.shape != (n,):
        raise ValueError(f"template must have shape ({n},), got {tpl.shape}")
    if not np.all(np.isfinite(tpl)):
        raise ValueError("template must be finite")
    mag2 = tpl.real.astype(np.float64) ** 2 + tpl.imag.astype(np.float64) ** 2
    peak = float(mag2.max())
    if peak <= 0.0:
        raise ValueError("template has no non-zero samples")
    on = mag2 > 1e-12 * peak
    off = (float(rng.uniform(0.0, 2.0)) if offset_samples is None
           else _check_real("offset_samples", offset_samples, 0.0, 64.0))
    cfo = (float(rng.uniform(-500.0, 500.0)) if cfo_hz is None
           else _check_real("cfo_hz", cfo_hz, -fs / 2.0, fs / 2.0))
    w = _normalise(tpl, on)
    if off > 0.0:
        w = fractional_delay(w, off)
    if cfo != 0.0:
        w = apply_cfo(w, cfo, fs)
    p = _base_params("spoofer", fc, bw, narrowband=False, temporal="ssb_synchronous")
    p.update(mode=mode, offset_samples=off, cfo_hz=cfo, on_fraction=float(np.count_nonzero(on)) / n)
    return w.astype(np.complex64, copy=False), p


# --------------------------------------------------------------------------
# protocol-aware gating (for probes outside the drawn library)
# --------------------------------------------------------------------------
def ssb_symbol_gate(n_samples: int, ssb_starts, symbols, sample_rate_hz: float, scs_khz: int) -> np.ndarray:
    """Where a protocol-aware jammer that knows the cell's SSB timing transmits:
    on the given OFDM symbols (0..3: PSS, PBCH, SSS + PBCH, PBCH; TS 38.211
    Table 7.4.3.1-1) of each SSB, CP included.

    Every SSB symbol has the normal (short) CP: the candidate SSB symbols of
    TS 38.213 §4.1 (Cases A-C) never hold symbol 0 or 7·2^µ of a half subframe, the
    ones with the longer CP (TS 38.211 §5.3.1). A symbol is then
    round(fs / SCS) · (1 + 144/2048) samples long.

    Parameters
    ----------
    n_samples : length of the capture
    ssb_starts : int array_like (K,) -- sample where each SSB's first CP starts
    symbols : int array_like -- the SSB symbols gated on
    sample_rate_hz, scs_khz : the capture's rate and the SSB's subcarrier spacing

    Returns
    -------
    bool, shape (n_samples,)
    """
    n_fft = int(round(float(sample_rate_hz) / (int(scs_khz) * 1e3)))
    sym = n_fft + int(round(n_fft * 144 / 2048))
    first = (np.asarray(ssb_starts, np.int64)[:, None] + np.asarray(symbols, np.int64)[None, :] * sym).ravel()
    edges = np.zeros(int(n_samples) + 1, np.int64)
    np.add.at(edges, np.clip(first, 0, n_samples), 1)
    np.add.at(edges, np.clip(first + sym, 0, n_samples), -1)
    return np.cumsum(edges[:-1]) > 0


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------
#: Jammer type name -> generator.
JAMMERS: dict[str, Callable[..., tuple[np.ndarray, dict]]] = {
    "barrage": make_barrage,
    "ssb_band_noise": make_ssb_band_noise,
    "partial_band_noise": make_partial_band_noise,
    "cw": make_cw,
    "multi_tone": make_multi_tone,
    "sweep": make_sweep,
    "pulsed_noise": make_pulsed_noise,
    "reactive": make_reactive,
    "spoofer": make_spoofer,
}


def make_jammer(kind: str, n_samples: int, sample_rate_hz: float, rng: np.random.Generator,
                **kw: Any) -> tuple[np.ndarray, dict]:
    """Generate a jammer waveform of type ``kind`` (dispatch via :data:`JAMMERS`).

    Parameters
    ----------
    kind : str
        One of ``JAMMERS`` (barrage, ssb_band_noise, partial_band_noise, cw,
        multi_tone, sweep, pulsed_noise, reactive, spoofer).
    n_samples, sample_rate_hz, rng
        See the module docstring.
    **kw
        ``ssb_center_hz``, ``ssb_bandwidth_hz`` and the type's own parameters
        (``ssb_mask`` for reactive; ``template`` and ``mode`` for spoofer).

    Returns
    -------
    waveform : numpy.ndarray
        complex64, shape (n_samples,).
    params_used : dict
        See the generator.
    """
    if kind not in JAMMERS:
        raise ValueError(f"kind={kind!r} is not a known jammer type; known kinds: {sorted(JAMMERS)}")
    return JAMMERS[kind](n_samples, sample_rate_hz, rng, **kw)
