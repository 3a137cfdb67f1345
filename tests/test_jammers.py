"""Tests for signals.jammers."""

import json

import numpy as np
import pytest

from signals import jammers as jm

FS = 30.72e6
N = 61_440  # 2 ms at 30.72 Msps
SSB_FC = -6.3e6
SSB_BW = 7.2e6  # 240 x 30 kHz
COMMON = dict(ssb_center_hz=SSB_FC, ssb_bandwidth_hz=SSB_BW)


def rng(seed=0):
    return np.random.default_rng(seed)


def ssb_mask(n=N):
    """Two 4-symbol SSB bursts (~143 us each at 30 kHz SCS)."""
    m = np.zeros(n, dtype=bool)
    m[3000:7392] = True
    m[40000:44392] = True
    return m


def spoof_template(n=N, seed=99):
    r = rng(seed)
    t = np.zeros(n, dtype=np.complex64)
    for a, b in ((3000, 7392), (40000, 44392)):
        t[a:b] = 3.0 * (r.standard_normal(b - a) + 1j * r.standard_normal(b - a))
    return t


def extra_kwargs(kind):
    if kind == "reactive":
        return {"ssb_mask": ssb_mask()}
    if kind == "spoofer":
        return {"template": spoof_template(), "mode": "ssb"}
    return {}


def band_power_fraction(w, lo_hz, hi_hz, fs=FS):
    spec = np.abs(np.fft.fft(w.astype(np.complex128))) ** 2
    f = np.fft.fftfreq(w.size, 1 / fs)
    return spec[(f >= lo_hz) & (f <= hi_hz)].sum() / spec.sum()


SSB_LO, SSB_HI = SSB_FC - SSB_BW / 2, SSB_FC + SSB_BW / 2


def test_registry_names():
    assert set(jm.JAMMERS) == {"barrage", "ssb_band_noise", "partial_band_noise", "cw", "multi_tone",
                               "sweep", "pulsed_noise", "reactive", "spoofer"}


@pytest.mark.parametrize("kind", sorted(jm.JAMMERS))
def test_every_type_basic_contract(kind):
    for seed in (1, 2, 3):
        w, p = jm.make_jammer(kind, N, FS, rng(seed), **COMMON, **extra_kwargs(kind))
        assert w.dtype == np.complex64 and w.shape == (N,)
        assert np.all(np.isfinite(w))
        assert p["type"] == kind
        assert isinstance(p["narrowband"], bool)
        assert p["temporal"] in ("continuous", "pulsed", "ssb_synchronous")
        json.dumps(p)  # JSON-serialisable
        if kind == "spoofer":
            on = spoof_template() != 0
        elif p["temporal"] == "continuous":
            on = np.ones(N, dtype=bool)
        else:
            on = w != 0
        assert on.any()
        pw = np.mean(np.abs(w[on].astype(np.complex128)) ** 2)
        assert abs(pw - 1) < 0.1, (kind, seed, pw)


@pytest.mark.parametrize("kind", sorted(jm.JAMMERS))
def test_determinism(kind):
    w1, p1 = jm.make_jammer(kind, N, FS, rng(7), **COMMON, **extra_kwargs(kind))
    w2, p2 = jm.make_jammer(kind, N, FS, rng(7), **COMMON, **extra_kwargs(kind))
    assert np.array_equal(w1, w2) and p1 == p2
    w3, _ = jm.make_jammer(kind, N, FS, rng(8), **COMMON, **extra_kwargs(kind))
    assert not np.array_equal(w1, w3)


def test_ssb_band_noise_inside_offset_ssb_band():
    for seed in range(3):
        w, p = jm.make_ssb_band_noise(N, FS, rng(seed), **COMMON)
        assert band_power_fraction(w, SSB_LO, SSB_HI) >= 0.95
        assert 0 <= p["margin_hz"] <= 0.02 * SSB_BW
        # flat inside: the two halves of the SSB band carry equal power
        lo = band_power_fraction(w, SSB_LO, SSB_FC)
        hi = band_power_fraction(w, SSB_FC, SSB_HI)
        assert abs(lo / hi - 1) < 0.1


def test_barrage_flat_across_band():
    w, p = jm.make_barrage(N, FS, rng(3), **COMMON)
    assert p["bandwidth_hz"] == pytest.approx(0.9 * FS)
    edges = np.linspace(-0.44 * FS, 0.44 * FS, 12)
    fr = np.array([band_power_fraction(w, a, b) for a, b in zip(edges[:-1], edges[1:])])
    assert np.max(np.abs(fr / fr.mean() - 1)) < 0.1
    assert band_power_fraction(w, -0.45 * FS, 0.45 * FS) > 0.999
    # custom bandwidth
    w2, _ = jm.make_barrage(N, FS, rng(3), **COMMON, bandwidth_hz=10e6, center_hz=2e6)
    assert band_power_fraction(w2, -3e6, 7e6) > 0.999


def test_partial_band_noise_fraction_and_position():
    for seed in range(5):
        w, p = jm.make_partial_band_noise(N, FS, rng(seed), **COMMON)
        assert 0.1 <= p["band_fraction"] <= 0.6
        lo, hi = p["center_hz"] - p["bandwidth_hz"] / 2, p["center_hz"] + p["bandwidth_hz"] / 2
        assert SSB_LO - 1 <= lo and hi <= SSB_HI + 1
        assert band_power_fraction(w, lo - 1e3, hi + 1e3) > 0.99
        # occupies only that fraction of the SSB band
        assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.99


def test_cw_and_multitone_inside_ssb_band():
    w, p = jm.make_cw(N, FS, rng(4), **COMMON)
    assert np.allclose(np.abs(w), 1.0, atol=1e-5)
    spec = np.abs(np.fft.fft(w)) ** 2
    f = np.fft.fftfreq(N, 1 / FS)
    assert abs(f[np.argmax(spec)] - (SSB_FC + p["tone_offset_hz"])) <= FS / N
    assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.99
    w, p = jm.make_cw(N, FS, rng(4), **COMMON, tone_offset_hz=1e6, phase_rad=0.5)
    assert np.angle(w[0]) == pytest.approx(0.5, abs=1e-6)
    for seed in range(5):
        w, p = jm.make_multi_tone(N, FS, rng(seed), **COMMON)
        assert 2 <= p["n_tones"] <= 16 and len(p["tone_offsets_hz"]) == p["n_tones"]
        assert all(abs(o) <= 0.46 * SSB_BW for o in p["tone_offsets_hz"])
        assert np.min(np.diff(p["tone_offsets_hz"])) >= SSB_BW / 240 * 0.999
        assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.99
        # K spectral lines: the K strongest 3-bin groups hold almost all power
        spec = np.abs(np.fft.fft(w.astype(np.complex128))) ** 2
        f = np.fft.fftfreq(N, 1 / FS)
        near = np.zeros(N, dtype=bool)
        for o in p["tone_offsets_hz"]:
            near |= np.abs(f - (SSB_FC + o)) <= 2 * FS / N
        assert spec[near].sum() / spec.sum() > 0.9


def test_sweep_covers_ssb_band_and_is_phase_continuous():
    # B * T / 2 = 364.68 cycles per period: not an integer, so a wrong phase
    # accumulation at the resets would show up as phase jumps
    w, p = jm.make_sweep(N, FS, rng(5), **COMMON, period_s=101.3e-6, margin_hz=0.0, direction="up")
    assert np.allclose(np.abs(w), 1.0, atol=1e-5)
    inst = np.angle(w[1:] * np.conj(w[:-1])) * FS / (2 * np.pi)  # instantaneous frequency
    # phase continuous: the per-sample phase step is always the instantaneous
    # frequency, which stays inside the swept band (no jumps beyond it)
    assert inst.min() >= SSB_LO - 1e3 and inst.max() <= SSB_HI + 1e3
    assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.95
    # spread over the band: each quarter of the band gets ~1/4 of the power
    q = np.linspace(SSB_LO, SSB_HI, 5)
    fr = [band_power_fraction(w, a, b) for a, b in zip(q[:-1], q[1:])]
    assert max(fr) < 0.35 and min(fr) > 0.15
    # sawtooth with the requested period: the frequency resets every 101.3 us
    resets = np.flatnonzero(np.diff(inst) < -0.5 * SSB_BW)
    assert len(resets) >= 18
    assert np.allclose(np.diff(resets), 101.3e-6 * FS, atol=2)
    # down sweep decreases
    wd, _ = jm.make_sweep(N, FS, rng(5), **COMMON, period_s=100e-6, direction="down")
    instd = np.angle(wd[1:] * np.conj(wd[:-1]))
    assert np.median(np.diff(instd)) < 0


def test_sweep_default_period_range():
    for seed in range(10):
        _, p = jm.make_sweep(N, FS, rng(seed), **COMMON)
        assert 10e-6 <= p["period_s"] <= 1e-3
        assert 0 <= p["margin_hz"] <= 0.1 * SSB_BW


def test_pulsed_duty_cycle():
    n = int(FS * 20e-3)
    for duty, period in ((0.1, 1e-3), (0.3, 0.5e-3), (0.5, 2e-3)):
        w, p = jm.make_pulsed_noise(n, FS, rng(6), **COMMON, duty_cycle=duty, period_s=period, band="ssb")
        on = w != 0
        assert abs(on.mean() / duty - 1) < 0.05
        assert abs(p["on_fraction"] - on.mean()) < 1e-12
        assert abs(np.mean(np.abs(w[on]) ** 2) - 1) < 0.01
        assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.95
        # ON stretches last duty * period
        edges = np.diff(on.astype(np.int8))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if ends[0] < starts[0]:
            ends = ends[1:]
        lengths = ends[: len(starts)] - starts[: len(ends)]
        assert np.allclose(lengths, duty * period * FS, atol=2)
    for seed in range(10):
        _, p = jm.make_pulsed_noise(N, FS, rng(seed), **COMMON)
        assert 0.1 <= p["duty_cycle"] <= 0.5 and 0.1e-3 <= p["period_s"] <= 5e-3
        assert p["band"] in ("ssb", "wideband")


def test_reactive_inside_delayed_mask():
    mask = ssb_mask()
    w, p = jm.make_reactive(N, FS, rng(9), **COMMON, ssb_mask=mask, hang_s=0.0)
    d = p["reaction_delay_samples"]
    assert 0 <= p["reaction_delay_s"] <= 2e-6
    delayed = np.roll(mask, d)
    e = np.abs(w.astype(np.complex128)) ** 2
    assert e[delayed].sum() / e.sum() >= 0.99
    assert np.all(w[:3000 + d] == 0)
    # with hang: inside the delayed-and-extended mask, and ON exactly there
    w, p = jm.make_reactive(N, FS, rng(10), **COMMON, ssb_mask=mask, reaction_delay_s=1e-6, hang_s=4e-6)
    d, h = p["reaction_delay_samples"], p["hang_samples"]
    assert (d, h) == (round(1e-6 * FS), round(4e-6 * FS))
    gate = np.zeros(N, dtype=bool)
    for a, b in ((3000, 7392), (40000, 44392)):
        gate[a + d:b + d + h] = True
    assert np.array_equal(w != 0, gate)
    assert band_power_fraction(w, SSB_LO, SSB_HI) > 0.9  # gating spreads a little
    for seed in range(10):
        _, p = jm.make_reactive(N, FS, rng(seed), **COMMON, ssb_mask=mask)
        assert 0 <= p["reaction_delay_s"] <= 2e-6 and 0 <= p["hang_s"] <= 5e-6


def test_spoofer_correlates_with_template():
    tpl = spoof_template()
    w, p = jm.make_spoofer(N, FS, rng(11), **COMMON, template=tpl, mode="pss", offset_samples=0.0, cfo_hz=0.0)
    rho = np.vdot(tpl.astype(np.complex128), w) / (np.linalg.norm(tpl) * np.linalg.norm(w))
    assert abs(rho) > 0.95
    assert p["mode"] == "pss" and p["temporal"] == "ssb_synchronous"
    # default draws: small offset and CFO, still strongly correlated
    w2, p2 = jm.make_spoofer(N, FS, rng(12), **COMMON, template=tpl, mode="ssb")
    assert 0 <= p2["offset_samples"] <= 2 and abs(p2["cfo_hz"]) <= 500
    # integer offset: exact shift of the normalised template
    w3, _ = jm.make_spoofer(N, FS, rng(13), **COMMON, template=tpl, mode="ssb", offset_samples=3, cfo_hz=0.0)
    np.testing.assert_allclose(w3[3:], w[:-3], atol=1e-6)


def test_unknown_kind_lists_known_kinds():
    with pytest.raises(ValueError) as ei:
        jm.make_jammer("laser", N, FS, rng(), **COMMON)
    msg = str(ei.value)
    assert "laser" in msg
    for k in jm.JAMMERS:
        assert k in msg


@pytest.mark.parametrize(
    "kind, kw, name",
    [
        ("cw", dict(tone_offset_hz=5e6), "tone_offset_hz"),
        ("pulsed_noise", dict(duty_cycle=1.5), "duty_cycle"),
        ("pulsed_noise", dict(band="narrow"), "band"),
        ("partial_band_noise", dict(band_fraction=0.0), "band_fraction"),
        ("sweep", dict(direction="sideways"), "direction"),
        ("multi_tone", dict(n_tones=40), "n_tones"),
        ("reactive", dict(ssb_mask=np.zeros(10, dtype=bool)), "ssb_mask"),
        ("spoofer", dict(template=np.ones(N, np.complex64), mode="sss"), "mode"),
        ("spoofer", dict(template=np.ones(5, np.complex64), mode="pss"), "template"),
    ],
)
def test_bad_params_raise(kind, kw, name):
    with pytest.raises(ValueError, match=name):
        jm.make_jammer(kind, N, FS, rng(), **COMMON, **kw)


def test_bad_common_args_raise():
    with pytest.raises(ValueError, match="ssb_center_hz"):
        jm.make_cw(N, FS, rng(), ssb_center_hz=14e6, ssb_bandwidth_hz=SSB_BW)
    with pytest.raises(ValueError, match="n_samples"):
        jm.make_cw(0, FS, rng(), **COMMON)
    with pytest.raises(ValueError, match="rng"):
        jm.make_cw(N, FS, 123, **COMMON)


def test_ssb_symbol_gate_covers_the_named_symbols_with_their_cps():
    # 30 kHz at 30.72 Msps: 1024-sample symbols with a 72-sample CP (TS 38.211 5.3.1)
    fs, scs = 30.72e6, 30
    gate = jm.ssb_symbol_gate(20000, [1000, 9000], (1, 3), fs, scs)
    sym = 1024 + 72
    want = np.zeros(20000, bool)
    for s0 in (1000, 9000):
        for l in (1, 3):
            want[s0 + l * sym : s0 + (l + 1) * sym] = True
    np.testing.assert_array_equal(gate, want)
    # an SSB cut by the capture's end is gated as far as it goes
    tail = jm.ssb_symbol_gate(3000, [2000], (0,), fs, scs)
    assert tail[2000:].all() and not tail[:2000].any()
