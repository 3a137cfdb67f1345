"""Propagation and receiver-front-end impairments for complex baseband waveforms.

All functions are pure: they never modify their inputs, keep no state between
calls and draw randomness only from the ``rng`` (:class:`numpy.random.Generator`)
they are given.

Conventions
-----------
* Complex waveforms are 1-D ``np.complex64`` arrays of shape ``(n_samples,)``;
  inputs are coerced with ``np.asarray(x, dtype=np.complex64)``. Internal
  arithmetic that needs it (phases, filter kernels) is done in float64.
* Power is the mean of ``|x|**2`` per complex sample (linear, not dB).
* Bad arguments raise :class:`ValueError` naming the parameter, its value and
  the allowed range.

Contents
--------
complex_noise, awgn
    Circularly-symmetric complex white Gaussian noise.
apply_cfo, apply_gain_db
    Carrier-frequency offset and gain.
fractional_delay, apply_multipath
    Band-limited (windowed-sinc) delays and static tapped-delay-line channels.
tdl_profile, tdl_taps, tdl_channel
    3GPP TR 38.901 §7.7.2 TDL-A..E models (tables in ``data/tdl_38901.json``),
    with optional Jakes (sum-of-sinusoids) time variation.
quantize, quantization_noise_power
    Receiver gain + ADC model for ``ci16_le``, ``ci8`` and ``cu8`` captures.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal as _sps

from . import nr

__all__ = [
    "complex_noise",
    "awgn",
    "apply_cfo",
    "apply_gain_db",
    "fractional_delay",
    "apply_multipath",
    "TDL_PROFILES",
    "tdl_profile",
    "tdl_taps",
    "tdl_channel",
    "ADC_DATATYPES",
    "quantize",
    "quantization_noise_power",
]

#: Half-length (samples) of the Kaiser-windowed sinc used for fractional delays.
SINC_HALF_LENGTH = 32
#: Kaiser window shape parameter of the fractional-delay sinc.
SINC_KAISER_BETA = 8.0

#: TDL profile names accepted by :func:`tdl_taps` (TR 38.901 Tables 7.7.2-1..-5).
TDL_PROFILES = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E")

#: Doppler of the specular (LOS) component of TDL-D/E tap 1, as a fraction of
#: the maximum Doppler f_D (TR 38.901 §7.7.2: "a peak at the Doppler shift
#: f_S = 0.7 f_D").
LOS_DOPPLER_FRACTION = 0.7

#: Number of sinusoids per Rayleigh tap in the Jakes sum-of-sinusoids model.
JAKES_N_SINUSOIDS = 20

#: ADC sample formats: full-scale amplitude per I/Q component, integer range,
#: and the offset of the zero level (rtl-sdr ``cu8`` stores v + 127.5).
ADC_DATATYPES: dict[str, dict[str, float]] = {
    "ci16_le": {"full_scale": 32767.0, "lo": -32768.0, "hi": 32767.0, "offset": 0.0},
    "ci8": {"full_scale": 127.0, "lo": -128.0, "hi": 127.0, "offset": 0.0},
    "cu8": {"full_scale": 127.5, "lo": 0.0, "hi": 255.0, "offset": 127.5},
}

_TDL_JSON = Path(__file__).resolve().parent / "data" / "tdl_38901.json"


# --------------------------------------------------------------------------
# argument checking helpers (shared with signals.jammers)
# --------------------------------------------------------------------------
def _as_waveform(x: Any, name: str = "x") -> np.ndarray:
    """Coerce to a 1-D complex64 array or raise ValueError."""
    arr = np.asarray(x, dtype=np.complex64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of shape (n_samples,), got shape {arr.shape}")
    return arr


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _check_real(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``float(value)`` if finite and inside the range, else raise ValueError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    rng_s = f"{'(' if lo_open or lo is None else '['}{lo_s}, {hi_s}{')' if hi_open or hi is None else ']'}"
    ok = math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v < hi if hi_open else v <= hi
    if not ok:
        raise ValueError(f"{name}={value!r} is outside the allowed range {rng_s}")
    return v


def _check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name}={v} is outside the allowed range [{lo_s}, {hi_s}]")
    return v


def _check_sample_rate(sample_rate_hz: Any) -> float:
    return _check_real("sample_rate_hz", sample_rate_hz, 0.0, None, lo_open=True)


# --------------------------------------------------------------------------
# noise, CFO, gain
# --------------------------------------------------------------------------
def complex_noise(n_samples: int, power: float, rng: np.random.Generator) -> np.ndarray:
    """Circularly-symmetric complex white Gaussian noise.

    Parameters
    ----------
    n_samples : int
        Number of samples, >= 0.
    power : float
        Per-sample complex variance ``E|n|^2`` (linear), >= 0. Each of I and Q
        has variance ``power / 2``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    n = _check_int("n_samples", n_samples, 0)
    p = _check_real("power", power, 0.0)
    _check_rng(rng)
    iq = rng.standard_normal((2, n))
    iq *= math.sqrt(p / 2.0)
    out = np.empty(n, dtype=np.complex64)
    out.real = iq[0]
    out.imag = iq[1]
    return out


def awgn(x: Any, noise_power: float, rng: np.random.Generator) -> np.ndarray:
    """Add complex white Gaussian noise.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform (coerced to complex64).
    noise_power : float
        Per-sample noise variance ``E|n|^2`` (linear, same units as ``|x|^2``),
        >= 0. Because the noise is white, an OFDM demodulator with a *unitary*
        FFT (``norm="ortho"``) sees the same power ``noise_power`` per resource
        element; with the unnormalised FFT of size N it sees ``N * noise_power``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``x + n``, ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    return (xx + complex_noise(xx.size, noise_power, rng)).astype(np.complex64, copy=False)


def apply_cfo(x: Any, cfo_hz: float, sample_rate_hz: float, start_sample: int = 0) -> np.ndarray:
    """Apply a carrier-frequency offset.

    ``y[n] = x[n] * exp(j 2 pi cfo_hz (n + start_sample) / sample_rate_hz)``.
    The phase is computed in float64 (reduced modulo one cycle before the
    exponential, so long captures keep full precision) and the result is cast
    to complex64.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    cfo_hz : float
        Frequency offset in Hz, ``|cfo_hz| <= sample_rate_hz / 2``.
    sample_rate_hz : float
        Sample rate in Hz, > 0.
    start_sample : int, optional
        Index of ``x[0]`` on the global time axis (for phase continuity when a
        capture is processed in blocks). Default 0.

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    fs = _check_sample_rate(sample_rate_hz)
    cfo = _check_real("cfo_hz", cfo_hz, -fs / 2.0, fs / 2.0)
    start = _check_int("start_sample", start_sample)
    if cfo == 0.0:
        return xx.copy()
    rot = _tone(xx.size, cfo / fs, start)
    return (xx * rot).astype(np.complex64, copy=False)


def _tone(n_samples: int, freq_cycles_per_sample: float, start_sample: int = 0,
          phase_rad: float = 0.0) -> np.ndarray:
    """complex128 ``exp(j(2 pi f (n + start) + phase))`` with float64 phase reduction."""
    n = np.arange(n_samples, dtype=np.float64) + float(start_sample)
    cycles = n * freq_cycles_per_sample
    cycles -= np.floor(cycles)
    phase = 2.0 * np.pi * cycles
    phase += phase_rad
    return nr.expj(phase)


def phase_noise(x: Any, linewidth_hz: float, sample_rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Oscillator phase noise as a Wiener process (free-running oscillator).

    ``y[n] = x[n] exp(j phi[n])`` with ``phi[n] - phi[n-1] ~ N(0, 2 pi
    linewidth_hz / sample_rate_hz)``: a Lorentzian spectrum of 3 dB width
    ``linewidth_hz``. Over one OFDM symbol it gives a common phase rotation and
    inter-carrier leakage of about ``pi linewidth_hz / scs_hz`` of each
    subcarrier's power.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    linewidth_hz : float
        3 dB linewidth, >= 0 (0 returns a copy).
    sample_rate_hz : float
        Sample rate in Hz, > 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    fs = _check_sample_rate(sample_rate_hz)
    beta = _check_real("linewidth_hz", linewidth_hz, 0.0, fs)
    _check_rng(rng)
    if beta == 0.0 or xx.size == 0:
        return xx.copy()
    phi = np.cumsum(rng.standard_normal(xx.size) * math.sqrt(2.0 * math.pi * beta / fs))
    return (xx * nr.expj(phi)).astype(np.complex64, copy=False)


def iq_imbalance(x: Any, image_db: float, rng: np.random.Generator) -> np.ndarray:
    """Receiver IQ imbalance as its image: ``y = x + e conj(x)``.

    The mirror image of the band (frequency f lands on -f) with power
    ``image_db`` relative to the signal (``|e|^2 = 10^(image_db / 10)``, the
    image rejection ratio negated) and a random phase.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    image_db : float
        Image power relative to the signal, dB, in [-120, 0].
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    g = _check_real("image_db", image_db, -120.0, 0.0)
    _check_rng(rng)
    e = 10.0 ** (g / 20.0) * np.exp(2j * np.pi * rng.random())
    return (xx + np.complex64(e) * np.conj(xx)).astype(np.complex64, copy=False)


def apply_gain_db(x: Any, gain_db: float) -> np.ndarray:
    """Scale a waveform by ``gain_db`` (amplitude factor ``10**(gain_db/20)``).

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    gain_db : float
        Power gain in dB, finite, within [-300, 300].

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    g = _check_real("gain_db", gain_db, -300.0, 300.0)
    return (xx * np.float32(10.0 ** (g / 20.0))).astype(np.complex64, copy=False)


# --------------------------------------------------------------------------
# delays and static multipath
# --------------------------------------------------------------------------
def _sinc_kernel(delays_samples: np.ndarray, gains: np.ndarray, half_length: int) -> tuple[np.ndarray, int]:
    """Composite band-limited impulse response of a set of (fractional) delays.

    Returns ``(h, first)`` with ``h`` complex128 such that ``h[k]`` is the
    response at integer lag ``first + k``. Integer delays give exact unit
    impulses; fractional ones a Kaiser-windowed sinc of half-length
    ``half_length`` centred on the delay.
    """
    d_int = np.floor(delays_samples).astype(np.int64)
    frac = delays_samples - d_int
    fractional = frac > 1e-9
    # fractional parts within 1e-9 of the next integer round up exactly
    up = frac > 1.0 - 1e-9
    d_int = np.where(up, d_int + 1, d_int)
    fractional &= ~up
    lo = int(d_int.min()) - (half_length if fractional.any() else 0)
    hi = int(d_int.max()) + (half_length + 1 if fractional.any() else 0)
    lags = np.arange(lo, hi + 1, dtype=np.float64)
    h = np.zeros(lags.size, dtype=np.complex128)
    for d, di, is_frac, g in zip(delays_samples, d_int, fractional, gains):
        if not is_frac:
            h[int(di) - lo] += g
            continue
        t = lags - d
        inside = np.abs(t) <= half_length
        w = np.zeros_like(t)
        w[inside] = np.i0(SINC_KAISER_BETA * np.sqrt(1.0 - (t[inside] / half_length) ** 2)) / np.i0(SINC_KAISER_BETA)
        h += g * (np.sinc(t) * w)
    return h, lo


def _apply_kernel(x: np.ndarray, h: np.ndarray, first: int) -> np.ndarray:
    """``y[n] = sum_k h[k] x[n - first - k]`` for ``n in [0, len(x))`` (zeros outside x)."""
    n = x.size
    if n == 0:
        return np.zeros(0, dtype=np.complex64)
    nz = np.flatnonzero(h)
    if nz.size <= 4:  # a few exact impulses: shift-and-add (exact, no FFT rounding)
        y = np.zeros(n, dtype=np.complex128)
        for k in nz:
            lag = first + int(k)
            if lag >= n or lag <= -n:
                continue
            if lag >= 0:
                y[lag:] += h[k] * x[: n - lag]
            else:
                y[: n + lag] += h[k] * x[-lag:]
        return y.astype(np.complex64)
    # single-precision overlap-add FFT convolution: c[m] = sum_k h[k] x[m - k]
    # (rounding ~1e-7 relative, at the level of the complex64 output)
    c = _sps.oaconvolve(x, h.astype(np.complex64))
    # y[n] = c[n - first]
    y = np.zeros(n, dtype=np.complex64)
    start = -first  # index into c for n = 0
    n0 = max(0, -start)
    n1 = min(n, c.size - start)
    if n1 > n0:
        y[n0:n1] = c[start + n0: start + n1]
    return y


def fractional_delay(x: Any, delay_samples: float) -> np.ndarray:
    """Delay a waveform by a possibly fractional number of samples.

    The integer part is an exact shift (zeros enter at the start, samples
    fall off the end: the output has the input's length). A fractional part is
    applied with a Kaiser-windowed sinc interpolator (half-length
    :data:`SINC_HALF_LENGTH` = 32 samples, beta = 8), i.e. the ideal
    band-limited delay to within about -75 dB (relative amplitude error) for
    signals occupying up to 90 % of the sample rate (-90 dB up to 50 %). Being band-limited, a fractional delay has
    sinc pre-ringing in the ``SINC_HALF_LENGTH`` samples before the delayed
    onset.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    delay_samples : float
        Delay in samples, ``0 <= delay_samples <= 1e9``.

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``.
    """
    xx = _as_waveform(x)
    d = _check_real("delay_samples", delay_samples, 0.0, 1e9)
    h, first = _sinc_kernel(np.array([d]), np.array([1.0 + 0j]), SINC_HALF_LENGTH)
    return _apply_kernel(xx, h, first)


def apply_multipath(x: Any, sample_rate_hz: float, delays_s: Any, gains: Any) -> np.ndarray:
    """Static (block-fading) tapped-delay-line channel.

    ``y = sum_i gains[i] * fractional_delay(x, delays_s[i] * sample_rate_hz)``,
    computed as one FFT (overlap-add) convolution with the composite
    band-limited impulse response (integer-sample delays are exact impulses,
    fractional ones Kaiser-windowed sincs, see :func:`fractional_delay`).
    When every delay is an integer number of samples and there are at most
    four taps the result is computed by exact shift-and-add.

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    sample_rate_hz : float
        Sample rate in Hz, > 0.
    delays_s : array_like of float, shape (n_taps,)
        Tap delays in seconds, each in ``[0, 1e-3]``.
    gains : array_like of complex, shape (n_taps,)
        Complex tap gains (linear amplitude).

    Returns
    -------
    numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)`` (same length as ``x``; the
        channel's tail beyond the last input sample is discarded).
    """
    xx = _as_waveform(x)
    fs = _check_sample_rate(sample_rate_hz)
    d = np.atleast_1d(np.asarray(delays_s, dtype=np.float64))
    g = np.atleast_1d(np.asarray(gains, dtype=np.complex128))
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"delays_s must be a non-empty 1-D array, got shape {d.shape}")
    if g.shape != d.shape:
        raise ValueError(f"gains must have the same shape as delays_s {d.shape}, got {g.shape}")
    if not np.all(np.isfinite(d)) or d.min() < 0.0 or d.max() > 1e-3:
        raise ValueError(f"delays_s={d.tolist()} has values outside the allowed range [0, 1e-3] s")
    if not np.all(np.isfinite(g)):
        raise ValueError("gains must be finite")
    h, first = _sinc_kernel(d * fs, g, SINC_HALF_LENGTH)
    return _apply_kernel(xx, h, first)


# --------------------------------------------------------------------------
# TR 38.901 TDL models
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _load_tdl_tables() -> dict:
    with open(_TDL_JSON, "r", encoding="utf-8") as fh:
        return json.load(fh)


def _normalise_profile_name(profile: Any) -> str:
    if not isinstance(profile, str):
        raise ValueError(f"profile must be one of {list(TDL_PROFILES)}, got {profile!r}")
    p = profile.strip().upper().replace("_", "-")
    if len(p) == 1:
        p = "TDL-" + p
    elif p.startswith("TDL") and not p.startswith("TDL-"):
        p = "TDL-" + p[3:]
    if p not in TDL_PROFILES:
        raise ValueError(f"profile={profile!r} is not one of {list(TDL_PROFILES)}")
    return p


def tdl_profile(profile: str, delay_spread_s: float, *, k_factor_db: float | None = None) -> dict:
    """Normalised power-delay profile of a TR 38.901 TDL model (deterministic).

    Reads TR 38.901 §7.7.2 Tables 7.7.2-1 (TDL-A) .. 7.7.2-5 (TDL-E) from
    ``signals/data/tdl_38901.json`` and

    * scales the normalised delays: ``tau = tau_model * delay_spread_s``
      (§7.7.3, eq. 7.7-1);
    * merges the two rows of tap 1 of TDL-D/E (specular "LOS path" + Rayleigh)
      into one Rician tap; with ``k_factor_db`` given, the LOS row's power is
      changed to ``P_Rayleigh,1 + k_factor_db`` (§7.7.6 K-factor scaling;
      the delays are *not* re-scaled);
    * normalises the total average power to 1.

    Parameters
    ----------
    profile : str
        ``"TDL-A"`` .. ``"TDL-E"`` (also accepts ``"A"``, ``"tdl_c"``, ...).
    delay_spread_s : float
        Desired RMS delay spread in seconds, ``0 <= delay_spread_s <= 10e-6``
        (Table 7.7.3-1 lists 10 ns .. 1000 ns as typical).
    k_factor_db : float or None, optional
        Desired K-factor of tap 1 for TDL-D/E, in ``[-30, 40]`` dB. ``None``
        keeps the table value (13.3 dB for TDL-D, 22 dB for TDL-E). Must be
        ``None`` for the NLOS profiles TDL-A/B/C.

    Returns
    -------
    dict
        ``profile`` (str), ``table`` (str), ``delays_s`` (float64, shape
        (n_taps,)), ``powers`` (float64, (n_taps,), average power of each tap,
        summing to 1), ``los_powers`` (float64, (n_taps,), power of the
        specular part of each tap, zero except tap 0 of TDL-D/E),
        ``k_factor_db`` (float or None).
    """
    name = _normalise_profile_name(profile)
    ds = _check_real("delay_spread_s", delay_spread_s, 0.0, 10e-6)
    tab = _load_tdl_tables()["profiles"][name]
    taps = np.asarray(tab["tap"], dtype=np.int64)
    tau = np.asarray(tab["normalized_delay"], dtype=np.float64)
    p_db = np.asarray(tab["power_db"], dtype=np.float64)
    is_los = np.array([f == "LOS path" for f in tab["fading"]])
    k_db = tab["k_factor_db"]
    if k_factor_db is not None:
        if not tab["los"]:
            raise ValueError(
                f"k_factor_db={k_factor_db!r} is only allowed for the LOS profiles TDL-D/TDL-E, not {name}")
        k_db = _check_real("k_factor_db", k_factor_db, -30.0, 40.0)
        # first LOS row and the Rayleigh row of the same tap
        i_los = int(np.flatnonzero(is_los)[0])
        i_ray = int(np.flatnonzero((taps == taps[i_los]) & ~is_los)[0])
        p_db = p_db.copy()
        p_db[i_los] = p_db[i_ray] + k_db
    p_lin = 10.0 ** (p_db / 10.0)
    p_lin /= p_lin.sum()
    n_taps = int(taps.max())
    powers = np.zeros(n_taps)
    los_powers = np.zeros(n_taps)
    delays = np.zeros(n_taps)
    np.add.at(powers, taps - 1, p_lin)
    np.add.at(los_powers, taps[is_los] - 1, p_lin[is_los])
    delays[taps - 1] = tau  # rows of the same tap share one delay
    return {
        "profile": name,
        "table": tab["table"],
        "delays_s": delays * ds,
        "powers": powers,
        "los_powers": los_powers,
        "k_factor_db": None if k_db is None else float(k_db),
    }


def tdl_taps(profile: str, delay_spread_s: float, rng: np.random.Generator, *,
             k_factor_db: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one static realisation of a TR 38.901 §7.7.2 TDL channel.

    Tap powers/delays come from :func:`tdl_profile` (Tables 7.7.2-1..-5,
    delays scaled per §7.7.3, total average power 1). Each tap gain is
    ``sqrt(P_los) exp(j phi) + CN(0, P - P_los)`` with ``phi ~ U[0, 2 pi)``:
    Rayleigh for every tap of TDL-A/B/C and taps 2.. of TDL-D/E, Rician with
    the table's K-factor (13.3 dB for TDL-D, 22 dB for TDL-E, or
    ``k_factor_db``) for tap 1 of TDL-D/E.

    Parameters
    ----------
    profile : str
        ``"TDL-A"`` .. ``"TDL-E"``.
    delay_spread_s : float
        Desired RMS delay spread in seconds, ``[0, 10e-6]``.
    rng : numpy.random.Generator
        Source of randomness.
    k_factor_db : float or None, optional
        See :func:`tdl_profile`.

    Returns
    -------
    delays_s : numpy.ndarray
        float64, shape (n_taps,), tap delays in seconds (tap 1 at 0 s).
        n_taps = 23, 23, 24, 13, 14 for TDL-A..E.
    gains : numpy.ndarray
        complex128, shape (n_taps,), complex amplitude gains with
        ``E[sum |gains|^2] = 1``.
    """
    prof = tdl_profile(profile, delay_spread_s, k_factor_db=k_factor_db)
    _check_rng(rng)
    p, p_los = prof["powers"], prof["los_powers"]
    n = p.size
    iq = rng.standard_normal((2, n))
    los_phase = rng.uniform(0.0, 2.0 * np.pi, n)
    scat = np.sqrt(np.maximum(p - p_los, 0.0) / 2.0) * (iq[0] + 1j * iq[1])
    gains = scat + np.sqrt(p_los) * np.exp(1j * los_phase)
    return prof["delays_s"].copy(), gains


def _jakes_gains_coarse(powers: np.ndarray, los_powers: np.ndarray, n_samples: int, sample_rate_hz: float,
                        doppler_hz: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Time-varying tap gains on a coarse grid.

    Returns ``(g, step)``: complex128 ``g`` of shape (n_taps, n_coarse) holding
    the gains at samples ``0, step, 2 step, ...`` (covering ``n_samples``).
    Rayleigh part of tap i: ``sqrt(P_i/M) sum_m exp(j(2 pi f_D cos(a_m) t + phi_m))``
    with M = JAKES_N_SINUSOIDS, stratified random arrival angles
    ``a_m = 2 pi (m + u_m)/M`` and random phases (Jakes spectrum). Specular
    part: ``sqrt(P_los) exp(j(2 pi 0.7 f_D t + phi_0))`` (TR 38.901 §7.7.2).
    The grid has >= 500 points per Doppler period, so linear interpolation
    between grid points has relative error < 3e-5.
    """
    n_taps = powers.size
    m = JAKES_N_SINUSOIDS
    u = rng.uniform(0.0, 1.0, (n_taps, m))
    alpha = 2.0 * np.pi * (np.arange(m)[None, :] + u) / m
    phi = rng.uniform(0.0, 2.0 * np.pi, (n_taps, m))
    phi_los = rng.uniform(0.0, 2.0 * np.pi, n_taps)
    step = int(max(1, min(n_samples, math.floor(sample_rate_hz / (doppler_hz * 500.0)))))
    n_coarse = (n_samples - 1) // step + 2
    t_coarse = np.arange(n_coarse, dtype=np.float64) * (step / sample_rate_hz)
    g = np.zeros((n_taps, n_coarse), dtype=np.complex128)
    for i in range(n_taps):
        p_scat = max(powers[i] - los_powers[i], 0.0)
        if p_scat > 0.0:
            for k in range(m):
                cyc = doppler_hz * np.cos(alpha[i, k]) * t_coarse
                g[i] += np.exp(1j * (2.0 * np.pi * (cyc - np.floor(cyc)) + phi[i, k]))
            g[i] *= math.sqrt(p_scat / m)
        if los_powers[i] > 0.0:
            cyc = LOS_DOPPLER_FRACTION * doppler_hz * t_coarse
            g[i] += math.sqrt(los_powers[i]) * np.exp(1j * (2.0 * np.pi * (cyc - np.floor(cyc)) + phi_los[i]))
    return g, step


def _interp_gain(g_coarse: np.ndarray, step: int, n_samples: int) -> np.ndarray:
    """Linear interpolation of one tap's coarse gain to every sample (complex64)."""
    if step == 1:
        return g_coarse[:n_samples].astype(np.complex64)
    n_fine = np.arange(n_samples, dtype=np.float64)
    n_grid = np.arange(g_coarse.size, dtype=np.float64) * step
    out = np.empty(n_samples, dtype=np.complex64)
    out.real = np.interp(n_fine, n_grid, g_coarse.real)
    out.imag = np.interp(n_fine, n_grid, g_coarse.imag)
    return out


def tdl_channel(x: Any, sample_rate_hz: float, profile: str, delay_spread_s: float,
                rng: np.random.Generator, doppler_hz: float = 0.0) -> tuple[np.ndarray, dict]:
    """Pass a waveform through a TR 38.901 §7.7.2 TDL channel.

    With ``doppler_hz == 0`` the channel is static over the block: exactly
    ``apply_multipath(x, sample_rate_hz, *tdl_taps(profile, delay_spread_s, rng))``
    (same random draws). With ``doppler_hz > 0`` every tap gain varies in time
    (``y[n] = sum_i g_i[n] x(nT - tau_i)``): Rayleigh parts follow a
    sum-of-sinusoids Jakes model (20 sinusoids per tap, classical Doppler
    spectrum with maximum Doppler ``doppler_hz``); the LOS part of tap 1 of
    TDL-D/E rotates at ``0.7 * doppler_hz`` (§7.7.2).

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform.
    sample_rate_hz : float
        Sample rate in Hz, > 0.
    profile : str
        ``"TDL-A"`` .. ``"TDL-E"``.
    delay_spread_s : float
        RMS delay spread in seconds, ``[0, 10e-6]``.
    rng : numpy.random.Generator
        Source of randomness.
    doppler_hz : float, optional
        Maximum Doppler shift in Hz, ``[0, sample_rate_hz / 2)``. Default 0.

    Returns
    -------
    y : numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``; average channel power gain 1.
    info : dict
        JSON-serialisable: ``profile`` (str), ``table`` (str),
        ``delay_spread_s`` (float), ``delays_s`` (list of float),
        ``powers`` (list of float, average tap powers summing to 1),
        ``k_factor_db`` (float or None), ``doppler_hz`` (float).
    """
    xx = _as_waveform(x)
    fs = _check_sample_rate(sample_rate_hz)
    fd = _check_real("doppler_hz", doppler_hz, 0.0, fs / 2.0, hi_open=True)
    prof = tdl_profile(profile, delay_spread_s)
    _check_rng(rng)
    info = {
        "profile": prof["profile"],
        "table": prof["table"],
        "delay_spread_s": float(delay_spread_s),
        "delays_s": [float(v) for v in prof["delays_s"]],
        "powers": [float(v) for v in prof["powers"]],
        "k_factor_db": prof["k_factor_db"],
        "doppler_hz": fd,
    }
    if fd == 0.0:
        delays, gains = tdl_taps(profile, delay_spread_s, rng)
        return apply_multipath(xx, fs, delays, gains), info
    if xx.size == 0:
        return xx.copy(), info
    g, step = _jakes_gains_coarse(prof["powers"], prof["los_powers"], xx.size, fs, fd, rng)
    y = np.zeros(xx.size, dtype=np.complex64)
    for i, d in enumerate(prof["delays_s"]):
        y += _interp_gain(g[i], step, xx.size) * fractional_delay(xx, d * fs)
    return y, info


# --------------------------------------------------------------------------
# receiver gain + ADC
# --------------------------------------------------------------------------
def _check_datatype(datatype: Any) -> dict[str, float]:
    if datatype not in ADC_DATATYPES:
        raise ValueError(f"datatype={datatype!r} is not one of {sorted(ADC_DATATYPES)}")
    return ADC_DATATYPES[datatype]


def quantize(x: Any, datatype: str, full_scale_backoff_db: float = 12.0,
             gain: float | None = None) -> tuple[np.ndarray, float, int]:
    """Receiver gain + ADC: scale, round to integers per I/Q, clip.

    The waveform is multiplied by a linear amplitude ``gain`` chosen (unless
    given) so that its complex RMS sits ``full_scale_backoff_db`` below the
    format's full scale, i.e. ``rms(gain * x) = FS * 10**(-backoff/20)`` with
    FS = 32767 (``ci16_le``), 127 (``ci8``) or 127.5 (``cu8``, rtl-sdr style:
    stored byte = value + 127.5). I and Q are then rounded to the nearest
    level (1 LSB apart) and clipped to the integer range of the format
    ([-32768, 32767], [-128, 127], [0, 255] stored). At the default 12 dB
    backoff the per-component RMS of a Gaussian signal is FS/5.6, so clipping
    is rare (~1e-8 per component).

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Complex baseband waveform (any scale).
    datatype : {"ci16_le", "ci8", "cu8"}
        ADC sample format.
    full_scale_backoff_db : float, optional
        RMS backoff from full scale in dB, ``[-30, 100]``; default 12. Ignored
        when ``gain`` is given.
    gain : float or None, optional
        Linear amplitude gain (> 0) to use instead of the automatic one.

    Returns
    -------
    y : numpy.ndarray
        ``np.complex64``, shape ``(n_samples,)``: the quantised waveform divided
        by ``gain``, i.e. in the units of ``x`` (``y - x`` is the quantisation
        and clipping error).
    gain : float
        The linear amplitude gain applied (raw ADC value = ``y * gain``, plus
        127.5 per component for ``cu8``). For an all-zero ``x`` without
        ``gain`` it is 1.0.
    n_clipped : int
        Number of clipped I or Q components (0 .. 2 * n_samples).
    """
    xx = _as_waveform(x)
    spec = _check_datatype(datatype)
    if not np.all(np.isfinite(xx)):
        raise ValueError("x must be finite (no NaN/inf samples) to be quantised")
    if gain is None:
        b = _check_real("full_scale_backoff_db", full_scale_backoff_db, -30.0, 100.0)
        rms = float(np.sqrt(np.mean(np.abs(xx.astype(np.complex128)) ** 2))) if xx.size else 0.0
        g = spec["full_scale"] * 10.0 ** (-b / 20.0) / rms if rms > 0.0 else 1.0
    else:
        g = _check_real("gain", gain, 0.0, None, lo_open=True)
    off = spec["offset"]
    iq = np.stack([xx.real.astype(np.float64), xx.imag.astype(np.float64)]) * g + off
    levels = np.round(iq)
    n_clipped = int(np.count_nonzero((levels < spec["lo"]) | (levels > spec["hi"])))
    np.clip(levels, spec["lo"], spec["hi"], out=levels)
    levels -= off
    y = np.empty(xx.size, dtype=np.complex64)
    y.real = levels[0] / g
    y.imag = levels[1] / g
    return y, float(g), n_clipped


def quantization_noise_power(datatype: str, gain: float) -> float:
    """Per-sample complex quantisation-noise power in the units of the input.

    A uniform quantiser with step Delta = 1 (integer LSB) has error variance
    Delta^2/12 per component, Delta^2/6 per complex sample; referred back to
    the input of :func:`quantize` (divided by ``gain**2``) this is
    ``1 / (6 gain^2)``. Clipping is not included.

    Parameters
    ----------
    datatype : {"ci16_le", "ci8", "cu8"}
        ADC sample format (all have a 1-LSB step).
    gain : float
        Linear amplitude gain returned by :func:`quantize`, > 0.

    Returns
    -------
    float
        Noise power (linear, same units as ``|x|^2``).
    """
    _check_datatype(datatype)
    g = _check_real("gain", gain, 0.0, None, lo_open=True)
    return 1.0 / (6.0 * g * g)
