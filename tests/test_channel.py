"""Tests for signals.channel (noise, CFO, delays, TR 38.901 TDL, ADC)."""

import json
from pathlib import Path

import numpy as np
import pytest

from signals import channel as ch

FS = 30.72e6


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- noise / CFO
def test_complex_noise_power_dtype_and_circularity():
    n = ch.complex_noise(100_000, 2.5, rng(1))
    assert n.dtype == np.complex64 and n.shape == (100_000,)
    p = np.mean(np.abs(n.astype(np.complex128)) ** 2)
    assert abs(p / 2.5 - 1) < 0.03
    # I and Q each carry half the power
    assert abs(np.var(n.real) / np.var(n.imag) - 1) < 0.05


def test_awgn_measured_power_within_3_percent():
    x = np.zeros(100_000, dtype=np.complex64)
    y = ch.awgn(x, 0.37, rng(2))
    assert y.dtype == np.complex64
    assert abs(np.mean(np.abs(y.astype(np.complex128)) ** 2) / 0.37 - 1) < 0.03
    # adds to (does not replace) the signal
    x2 = np.full(100_000, 3 + 4j, dtype=np.complex64)
    y2 = ch.awgn(x2, 0.37, rng(2))
    np.testing.assert_allclose(y2 - x2, y, atol=1e-5)


def test_awgn_per_re_power_with_unitary_fft():
    nfft = 1024
    y = ch.awgn(np.zeros(nfft * 200, np.complex64), 0.5, rng(3)).reshape(200, nfft)
    re = np.fft.fft(y, axis=1, norm="ortho")
    assert abs(np.mean(np.abs(re) ** 2) / 0.5 - 1) < 0.03


def test_apply_cfo_moves_fft_peak_by_right_bin():
    n = 4096
    x = np.exp(2j * np.pi * 100 * np.arange(n) / n).astype(np.complex64)  # bin 100
    cfo = 37 * FS / n  # 37 bins
    y = ch.apply_cfo(x, cfo, FS)
    assert y.dtype == np.complex64
    assert int(np.argmax(np.abs(np.fft.fft(y)))) == 137
    y_neg = ch.apply_cfo(x, -cfo, FS)
    assert int(np.argmax(np.abs(np.fft.fft(y_neg)))) == 63


def test_apply_cfo_start_sample_continuity():
    x = np.ones(2000, np.complex64)
    full = ch.apply_cfo(x, 12_345.6, FS)
    part = ch.apply_cfo(x[1000:], 12_345.6, FS, start_sample=1000)
    np.testing.assert_allclose(part, full[1000:], atol=1e-6)


def test_apply_gain_db():
    x = np.ones(10, np.complex64)
    np.testing.assert_allclose(np.abs(ch.apply_gain_db(x, 20.0)), 10.0, rtol=1e-6)
    assert ch.apply_gain_db(x, -6.0).dtype == np.complex64


# ---------------------------------------------------------------- delays
def test_fractional_delay_integer_is_exact():
    x = (rng(4).standard_normal(1000) + 1j * rng(5).standard_normal(1000)).astype(np.complex64)
    y = ch.fractional_delay(x, 7)
    assert y.dtype == np.complex64 and y.shape == x.shape
    assert np.all(y[:7] == 0)
    assert np.array_equal(y[7:], x[:-7])
    assert np.array_equal(ch.fractional_delay(x, 0.0), x)


def test_fractional_delay_half_sample_matches_analytic_phase():
    n = np.arange(4096)
    for f in (0.01, 0.1, 0.3):  # cycles/sample
        x = np.exp(2j * np.pi * f * n)
        y = ch.fractional_delay(x, 10.5)
        ref = np.exp(2j * np.pi * f * (n - 10.5))
        core = slice(100, -100)  # away from the block edges
        assert np.max(np.abs(y[core] - ref[core])) < 1e-3
        # phase lag of exactly 2*pi*f*0.5 beyond the integer part
        lag = np.angle(np.mean(y[core] * np.conj(np.roll(x, 10)[core])))
        assert abs(lag + 2 * np.pi * f * 0.5) < 1e-3


def test_apply_multipath_identity_and_two_taps():
    x = (rng(6).standard_normal(5000) + 1j * rng(7).standard_normal(5000)).astype(np.complex64)
    y = ch.apply_multipath(x, FS, [0.0], [1.0])
    assert np.array_equal(y, x)
    # two integer-sample taps = shift-and-add
    d = 5 / FS
    y2 = ch.apply_multipath(x, FS, [0.0, d], [1.0, 0.5j])
    ref = x.astype(np.complex128).copy()
    ref[5:] += 0.5j * x[:-5]
    np.testing.assert_allclose(y2, ref, atol=1e-5)
    # a fractional tap equals the fractional_delay of the same amount
    y3 = ch.apply_multipath(x, FS, [3.3 / FS], [0.7])
    np.testing.assert_allclose(y3, 0.7 * ch.fractional_delay(x, 3.3), atol=1e-5)


# ---------------------------------------------------------------- TDL
EXPECTED_TAPS = {"TDL-A": 23, "TDL-B": 23, "TDL-C": 24, "TDL-D": 13, "TDL-E": 14}


def test_tdl_json_names_the_tables_and_is_consistent():
    path = Path(ch.__file__).parent / "data" / "tdl_38901.json"
    d = json.loads(path.read_text())
    assert "38.901" in d["source"]
    for k, prof in d["profiles"].items():
        assert prof["table"].startswith("Table 7.7.2-")
        n = len(prof["tap"])
        assert len(prof["normalized_delay"]) == len(prof["power_db"]) == len(prof["fading"]) == n
        assert max(prof["tap"]) == EXPECTED_TAPS[k]
    # LOS tap split rows: K1 = P_LOS - P_Rayleigh (13.3 dB TDL-D, 22 dB TDL-E)
    for k, kdb in (("TDL-D", 13.3), ("TDL-E", 22.0)):
        p = d["profiles"][k]["power_db"]
        assert d["profiles"][k]["fading"][:2] == ["LOS path", "Rayleigh"]
        assert abs((p[0] - p[1]) - kdb) < 1e-9
        assert d["profiles"][k]["k_factor_db"] == kdb


@pytest.mark.parametrize("profile", list(EXPECTED_TAPS))
def test_tdl_profile_tables(profile):
    prof = ch.tdl_profile(profile, 1e-6)
    assert prof["delays_s"].shape == (EXPECTED_TAPS[profile],)
    assert prof["delays_s"][0] == 0.0
    assert abs(prof["powers"].sum() - 1) < 1e-12
    # the tables are normalised to unit RMS delay spread (TR 38.901 §7.7.3)
    p, t = prof["powers"], prof["delays_s"] / 1e-6  # normalised delays
    mean = np.sum(p * t)
    rms = np.sqrt(np.sum(p * t * t) - mean**2)
    assert abs(rms - 1) < 0.01
    # delays scale with the delay spread
    np.testing.assert_allclose(ch.tdl_profile(profile, 300e-9)["delays_s"], 300e-9 * t)
    if profile in ("TDL-D", "TDL-E"):
        k = 10 * np.log10(prof["los_powers"][0] / (p[0] - prof["los_powers"][0]))
        assert abs(k - {"TDL-D": 13.3, "TDL-E": 22.0}[profile]) < 1e-9
    else:
        assert not np.any(prof["los_powers"])


def test_tdl_known_values():
    a = ch.tdl_profile("TDL-A", 100e-9)
    np.testing.assert_allclose(a["delays_s"][[1, 22]], [0.3819 * 100e-9, 9.6586 * 100e-9])
    # strongest TDL-A tap is the 0 dB one at 0.3819 (tap 2)
    assert int(np.argmax(a["powers"])) == 1
    e = ch.tdl_profile("e", 1e-6)  # short names accepted
    assert abs(e["delays_s"][-1] - 20.6519e-6) < 1e-15


def test_tdl_taps_statistics_and_k_factor():
    r = rng(8)
    draws = np.array([ch.tdl_taps("TDL-C", 300e-9, r)[1] for _ in range(2000)])
    assert draws.shape == (2000, 24)
    total = np.mean(np.sum(np.abs(draws) ** 2, axis=1))
    assert abs(total - 1) < 0.05
    np.testing.assert_allclose(np.mean(np.abs(draws) ** 2, axis=0), ch.tdl_profile("TDL-C", 1e-6)["powers"],
                               rtol=0.15)
    # Rician first tap of TDL-D: |g0| concentrated (K = 13.3 dB) -> small amplitude spread
    g0 = np.array([ch.tdl_taps("TDL-D", 100e-9, r)[1][0] for _ in range(2000)])
    k_lin = 10 ** 1.33
    # for a Rician variable, var|g|^2 / (E|g|^2)^2 = (1 + 2K) / (1 + K)^2
    ratio = np.var(np.abs(g0) ** 2) / np.mean(np.abs(g0) ** 2) ** 2
    assert abs(ratio - (1 + 2 * k_lin) / (1 + k_lin) ** 2) < 0.03
    # k_factor_db overrides; total power still 1
    prof = ch.tdl_profile("TDL-D", 100e-9, k_factor_db=0.0)
    assert abs(prof["los_powers"][0] - (prof["powers"][0] - prof["los_powers"][0])) < 1e-12
    assert abs(prof["powers"].sum() - 1) < 1e-12


def test_tdl_channel_static_matches_taps_and_deterministic():
    x = (rng(9).standard_normal(3000) + 1j * rng(10).standard_normal(3000)).astype(np.complex64)
    y, info = ch.tdl_channel(x, FS, "TDL-B", 100e-9, rng(11))
    d, g = ch.tdl_taps("TDL-B", 100e-9, rng(11))
    np.testing.assert_allclose(y, ch.apply_multipath(x, FS, d, g), atol=1e-6)
    y_again, _ = ch.tdl_channel(x, FS, "TDL-B", 100e-9, rng(11))
    assert np.array_equal(y, y_again)
    assert set(info) >= {"profile", "delay_spread_s", "delays_s", "powers", "doppler_hz"}
    json.dumps(info)
    assert info["profile"] == "TDL-B" and len(info["delays_s"]) == 23


def test_tdl_channel_doppler_spectrum_and_power():
    fs, fd, n = 10e3, 50.0, 10_000  # 1 s, 1 Hz resolution
    x = np.ones(n, np.complex64)
    powers, inside = [], []
    r = rng(12)
    for _ in range(8):
        y, info = ch.tdl_channel(x, fs, "TDL-A", 0.0, r, doppler_hz=fd)
        assert y.dtype == np.complex64 and y.shape == (n,) and np.all(np.isfinite(y))
        spec = np.abs(np.fft.fft(y)) ** 2
        f = np.fft.fftfreq(n, 1 / fs)
        inside.append(spec[np.abs(f) <= fd + 2].sum() / spec.sum())
        powers.append(np.mean(np.abs(y) ** 2))
    assert min(inside) > 0.99  # Doppler spectrum confined to +-f_D
    assert 0.6 < np.mean(powers) < 1.4  # unit average power (8 realisations)
    # the gain really varies in time
    assert np.std(np.abs(y)) > 0.1


def test_tdl_channel_los_doppler_line():
    fs, fd, n = 10e3, 200.0, 10_000
    y, _ = ch.tdl_channel(np.ones(n, np.complex64), fs, "TDL-E", 0.0, rng(13), doppler_hz=fd)
    spec = np.abs(np.fft.fft(y)) ** 2
    f = np.fft.fftfreq(n, 1 / fs)
    assert abs(f[np.argmax(spec)] - 0.7 * fd) <= 1.0  # specular line at 0.7 f_D


# ---------------------------------------------------------------- ADC
@pytest.mark.parametrize("dt", ["ci16_le", "ci8", "cu8"])
def test_quantize_gaussian_no_clip_and_half_lsb(dt):
    x = ch.complex_noise(100_000, 1e-3, rng(14))
    y, g, nclip = ch.quantize(x, dt, full_scale_backoff_db=12.0)
    assert y.dtype == np.complex64 and y.shape == x.shape
    assert nclip == 0
    fs = ch.ADC_DATATYPES[dt]["full_scale"]
    assert abs(np.sqrt(np.mean(np.abs(x * g) ** 2)) / (fs * 10 ** (-12 / 20)) - 1) < 1e-3
    err = (y.astype(np.complex128) - x) * g  # in LSB
    assert np.max(np.abs(err.real)) <= 0.5 + 1e-2
    assert np.max(np.abs(err.imag)) <= 0.5 + 1e-2
    # quantisation noise power ~ LSB^2/6 (ci8/cu8 have enough LSBs at 12 dB backoff)
    qn = ch.quantization_noise_power(dt, g)
    assert abs(np.mean(np.abs(y.astype(np.complex128) - x) ** 2) / qn - 1) < 0.1


def test_quantize_levels_are_integers_and_clipping_counted():
    x = ch.complex_noise(50_000, 1.0, rng(15))
    y, g, nclip = ch.quantize(x, "ci8", full_scale_backoff_db=0.0)
    assert nclip > 0.05 * 2 * x.size  # ~16 % of components clip at 0 dB backoff
    lv = y.astype(np.complex128) * g
    np.testing.assert_allclose(lv.real, np.round(lv.real), atol=1e-3)
    assert lv.real.max() <= 127 + 1e-3 and lv.real.min() >= -128 - 1e-3
    # cu8 levels sit on half-integers (stored byte = value + 127.5)
    y8, g8, _ = ch.quantize(x, "cu8", full_scale_backoff_db=0.0)
    stored = y8.astype(np.complex128).real * g8 + 127.5
    np.testing.assert_allclose(stored, np.round(stored), atol=1e-3)
    assert stored.min() >= -1e-3 and stored.max() <= 255 + 1e-3
    # explicit gain is used as given
    _, g2, _ = ch.quantize(x, "ci16_le", gain=123.0)
    assert g2 == 123.0


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ch.awgn(np.zeros(4), -1.0, rng()), "power"),
        (lambda: ch.complex_noise(-1, 1.0, rng()), "n_samples"),
        (lambda: ch.apply_cfo(np.zeros(4), 1e9, FS), "cfo_hz"),
        (lambda: ch.apply_cfo(np.zeros(4), 1.0, 0.0), "sample_rate_hz"),
        (lambda: ch.fractional_delay(np.zeros(4), -0.5), "delay_samples"),
        (lambda: ch.fractional_delay(np.zeros((2, 2)), 1.0), "x"),
        (lambda: ch.apply_multipath(np.zeros(4), FS, [0.0, 1e-6], [1.0]), "gains"),
        (lambda: ch.apply_multipath(np.zeros(4), FS, [-1e-6], [1.0]), "delays_s"),
        (lambda: ch.tdl_taps("TDL-F", 1e-7, rng()), "profile"),
        (lambda: ch.tdl_taps("TDL-A", -1e-7, rng()), "delay_spread_s"),
        (lambda: ch.tdl_taps("TDL-A", 1e-7, rng(), k_factor_db=10.0), "k_factor_db"),
        (lambda: ch.tdl_taps("TDL-A", 1e-7, 42), "rng"),
        (lambda: ch.tdl_channel(np.zeros(4), FS, "TDL-A", 1e-7, rng(), doppler_hz=-5.0), "doppler_hz"),
        (lambda: ch.quantize(np.zeros(4), "ci12"), "datatype"),
        (lambda: ch.quantize(np.ones(4), "ci8", gain=0.0), "gain"),
        (lambda: ch.quantize(np.ones(4), "ci8", full_scale_backoff_db=float("nan")), "full_scale_backoff_db"),
        (lambda: ch.quantization_noise_power("ci8", -1.0), "gain"),
        (lambda: ch.apply_gain_db(np.zeros(4), float("inf")), "gain_db"),
    ],
)
def test_bad_arguments_raise_value_error_naming_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_phase_noise_keeps_power_and_leaks_into_other_subcarriers():
    fs, n = 30.72e6, 1024
    tone = np.exp(2j * np.pi * 5 * np.arange(n * 200) / n).astype(np.complex64)  # on bin 5 of every symbol
    clean = ch.phase_noise(tone, 0.0, fs, np.random.default_rng(0))
    assert np.array_equal(clean, tone)
    ici = []
    for lw in (1.0, 10.0):
        y = ch.phase_noise(tone, lw, fs, np.random.default_rng(1))
        assert y.dtype == np.complex64 and y.shape == tone.shape
        assert np.allclose(np.abs(y), 1.0, atol=1e-5)  # a pure phase: power unchanged
        p = np.abs(np.fft.fft(y.reshape(200, n), axis=1)) ** 2
        ici.append(1.0 - p[:, 5].sum() / p.sum())
    # the leakage grows about linearly with the linewidth (Wiener phase: ~ pi lw / scs)
    assert 0 < ici[0] < ici[1]
    assert 4.0 < ici[1] / ici[0] < 25.0


def test_iq_imbalance_image_power_and_frequency():
    n = 4096
    x = np.exp(2j * np.pi * 300 * np.arange(n) / n).astype(np.complex64)  # a tone at +300 bins
    y = ch.iq_imbalance(x, -30.0, np.random.default_rng(2))
    p = np.abs(np.fft.fft(y)) ** 2
    assert np.argmax(p) == 300
    image_db = 10 * np.log10(p[n - 300] / p[300])  # the mirror at -300 bins
    assert abs(image_db - (-30.0)) < 0.1
    with pytest.raises(ValueError, match="image_db"):
        ch.iq_imbalance(x, 5.0, np.random.default_rng(2))
