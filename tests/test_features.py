"""The feature function: unbiased interference estimates, gain invariance,
the known quantisation floor, the site features."""
import dataclasses

import numpy as np
import pytest

from detector.baseline import SiteBaseline, build_config_baseline
from detector.features import (AUX_PSS_SHAPE, FEATURE_NAMES, N_FEATURES, PSS_TRACE_HALF, PSS_TRACE_LEN, SITE_STATS,
                               SITE_Z, Baseline, residual_grid, ssb_features, ssb_features_batch)
from detector.pipeline import ScoringPipeline, epnre_abs_db, observation_features, quantization_floor_per_re
from signals import nr
from signals.simulate import SimConfig, draw_params, simulate_capture

IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _cfg(**kw):
    base = dict(duration_ms=10.0, period_ms=(5.0,), all_ssbs_fraction=1.0,
                neighbour=dataclasses.replace(SimConfig().neighbour, probability=0.0),
                traffic=dataclasses.replace(SimConfig().traffic, probability=0.0),
                jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    base.update(kw)
    return SimConfig(**base)


def _observe(cap):
    p = cap.params
    pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, p.datatype)
    obs = pipe.receiver.push(cap.iq) + pipe.receiver.flush()
    assert obs, "receiver found no SSB"
    return obs


def _feats(cap, obs, base=None):
    p = cap.params
    return np.stack([observation_features(o, base, datatype=p.datatype, sample_rate_hz=p.sample_rate_hz)
                     for o in obs])


def test_noise_estimate_is_unbiased_without_channel():
    """Known SSB + white noise of known power: the residual and null REs give it back."""
    rng = np.random.default_rng(3)
    pci, ibar = 321, 5
    x = nr.ssb_grid(pci, ibar, 8, rng=rng).astype(np.complex64)
    s = float(np.mean(np.abs(x[x != 0]) ** 2))
    est = []
    for _ in range(200):
        n = (rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) * np.sqrt(0.05 / 2)
        f = ssb_features((x + n).astype(np.complex64), pci, ibar, np.zeros(PSS_TRACE_LEN, np.float32))
        est.append([f[IDX["isr_db"]], f[IDX["res_all_rel_db"]], f[IDX["epnre_rel_db"]]])
    med = np.median(np.array(est), axis=0)
    np.testing.assert_allclose(med, 10 * np.log10(0.05 / s), atol=0.25)


@pytest.mark.parametrize("profile", ["TDL-A", "TDL-C"])
def test_residual_is_unbiased_under_multipath(profile):
    """The delay-domain channel fit leaves signal out of the residual: the
    interference estimate equals the noise (truth SNR) within 0.5 dB (median)."""
    mp = dataclasses.replace(SimConfig().multipath, probability=1.0, profiles=(profile,),
                             delay_spread_s=(100e-9, 100e-9))
    cap = simulate_capture(*_drawn(_cfg(snr_db=(20.0, 20.0), multipath=mp, datatypes=("cf32_le",),
                                        scs_khz=(30,), sample_rates_hz=(30.72e6,)), 4))
    f = _feats(cap, _observe(cap))
    snr = np.median([t.snr_db for t in cap.ssbs])
    assert np.median(f[:, IDX["isr_db"]]) == pytest.approx(-snr, abs=0.5)
    assert np.median(f[:, IDX["res_all_rel_db"]]) == pytest.approx(-snr, abs=0.5)


def test_long_delay_multipath_leaves_no_signal_floor():
    """TDL-D at a 300 ns delay spread (paths to 3.8 us, beyond the 30 kHz CP):
    at 40 dB SNR the 25-tap first pass alone left the SSB 13 dB above its null
    REs (a floor set by the channel realisation); the decision-directed refit
    over REFIT_TAPS brings the residual within a few dB of the null REs, which
    no channel model touches."""
    mp = dataclasses.replace(SimConfig().multipath, probability=1.0, profiles=("TDL-D",),
                             delay_spread_s=(300e-9, 300e-9))
    cap = simulate_capture(*_drawn(_cfg(snr_db=(40.0, 40.0), multipath=mp, datatypes=("cf32_le",),
                                        scs_khz=(30,), sample_rates_hz=(15.36e6,)), 4))
    f = _feats(cap, _observe(cap))
    gap = np.median(f[:, IDX["isr_db"]]) - np.median(f[:, IDX["epnre_rel_db"]])
    assert gap < 6.0, gap
    assert np.median(f[:, IDX["res_all_rel_db"]]) < -30.0


def _drawn(cfg, seed):
    rng = np.random.default_rng(seed)
    return draw_params(cfg, rng, force_clean=True), rng


def test_quantisation_floor_makes_int8_gain_invariant():
    """A clean ci8 recording at two receiver gains 12 dB apart: with the known
    quantisation floor removed the interference-to-signal ratio stays put (it
    moves by > 1 dB without it)."""
    p, _ = _drawn(_cfg(snr_db=(30.0, 30.0), datatypes=("ci8",), scs_khz=(30,), sample_rates_hz=(15.36e6,)), 5)
    isr, isr_raw = [], []
    for backoff_db in (8.0, 20.0):
        cap = simulate_capture(dataclasses.replace(p, level_db=backoff_db), np.random.default_rng(1))
        obs = _observe(cap)
        isr.append(np.median(_feats(cap, obs)[:, IDX["isr_db"]]))
        isr_raw.append(np.median([observation_features(o, None)[IDX["isr_db"]] for o in obs]))
    assert abs(isr[0] - isr[1]) < 0.3
    assert abs(isr_raw[0] - isr_raw[1]) > 1.0


def test_quantisation_floor_values():
    assert quantization_floor_per_re("cf32_le", 30.72e6, 30) == 0.0
    # ci8: LSB 1/128, LSB^2/6 per sample, 7.68/30.72 of it in the SSB band
    assert quantization_floor_per_re("ci8", 30.72e6, 30) == pytest.approx(1 / (6 * 128**2) * 0.25)
    assert quantization_floor_per_re("ci16_le", 30.72e6, 15) < 1e-10


def test_site_features_are_gain_invariant_and_zero_on_the_calibration():
    """Site features of the calibration's own SSBs centre on 0, and scaling the
    recording (another cf32 gain) changes no feature."""
    p, _ = _drawn(_cfg(snr_db=(18.0, 18.0), datatypes=("cf32_le",), scs_khz=(15,), sample_rates_hz=(7.68e6,)), 6)
    cap = simulate_capture(p, np.random.default_rng(2))
    obs = _observe(cap)
    fu = _feats(cap, obs)
    cb = build_config_baseline(obs[0].scs_khz, p.sample_rate_hz, p.datatype, fu,
                               np.array([epnre_abs_db(o.grid) for o in obs]), [o.pci for o in obs])
    base = SiteBaseline({cb.key: cb}).lookup(obs[0].scs_khz, p.sample_rate_hz, p.datatype)
    fc = _feats(cap, obs, base)
    assert np.all(fc[:, IDX["calibrated"]] == 1.0) and np.all(fu[:, IDX["calibrated"]] == 0.0)
    for n in SITE_STATS:
        assert abs(np.median(fc[:, IDX[f"site_{n}"]])) < 1e-3, n
    scaled = [dataclasses.replace(o, grid=(o.grid * np.float32(31.6)).astype(np.complex64),  # (and the band's floor)
                                  band_floor_per_re=o.band_floor_per_re * 31.6 ** 2,
                                  band_floor_near_per_re=o.band_floor_near_per_re * 31.6 ** 2) for o in obs]
    fs = _feats(cap, scaled, base)
    np.testing.assert_allclose(fs, fc, atol=2e-3)


def test_site_z_scores_use_the_spread_floor():
    g = nr.ssb_grid(7, 0, 8, rng=np.random.default_rng(0)).astype(np.complex64)
    g += (np.random.default_rng(1).standard_normal((4, 240)) * 0.05).astype(np.complex64)
    tr = np.zeros(PSS_TRACE_LEN, np.float32)
    b0 = Baseline({n: 0.0 for n in SITE_STATS}, {n: 0.0 for n in SITE_STATS})
    f = ssb_features(g, 7, 0, tr, baseline=b0)
    assert f.shape == (N_FEATURES,) and f.dtype == np.float32 and np.all(np.isfinite(f))
    for n in SITE_Z:
        assert f[IDX[f"site_z_{n}"]] == pytest.approx(f[IDX[f"site_{n}"]] / 0.1, rel=1e-4)


def test_residual_grid_removes_a_known_ssb_exactly():
    pci, ibar = 100, 2
    x = nr.ssb_grid(pci, ibar, 8, rng=np.random.default_rng(4)).astype(np.complex64)
    delay = np.exp(-2j * np.pi * np.arange(-120, 120) * 2.0 / 256).astype(np.complex64)
    resid, h, kind, norm = residual_grid(x * delay[None, :] * np.complex64(0.5 + 0.3j), pci, ibar)
    assert np.max(np.abs(resid)) < 1e-4
    assert resid.dtype == np.complex64 and norm.shape == (4, 240) and kind.dtype == np.int8


def test_bad_floor_is_refused():
    g = np.zeros((4, 240), np.complex64)
    with pytest.raises(ValueError, match="floor_per_re"):
        ssb_features(g, 0, 0, np.zeros(PSS_TRACE_LEN, np.float32), floor_per_re=float("nan"))


def test_batch_is_the_per_ssb_features():
    """ssb_features_batch over SSBs of several captures (clean and jammed, cells
    with different DMRS shifts mixed in one batch, integer floors, with and
    without a baseline) gives each SSB's ssb_features within float noise."""
    from detector.features import ssb_features_batch

    rows = []  # (obs, floor)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        p = draw_params(SimConfig(duration_ms=10.0, period_ms=(5.0,), snr_db=(5.0, 35.0)), rng,
                        force_clean=seed % 2 == 0)
        cap = simulate_capture(p, rng)
        obs = _observe(cap)
        fl = quantization_floor_per_re(p.datatype, p.sample_rate_hz, obs[0].scs_khz)
        rows += [(o, fl) for o in obs[:6]]
    assert len({o.pci % 4 for o, _ in rows}) > 1  # the batch mixes DMRS shifts
    base = Baseline({n: 0.5 for n in SITE_STATS}, {n: 0.3 for n in SITE_STATS})
    bases = [base if i % 2 else None for i in range(len(rows))]
    single = np.stack([ssb_features(o.grid, o.pci, o.ibar, o.pss_trace, nid2_margin_db=o.nid2_margin_db,
                                    sss_metric=o.sss_metric, dmrs_metric=o.dmrs_metric, locked=o.locked,
                                    baseline=b, floor_per_re=fl) for (o, fl), b in zip(rows, bases)])
    batch = ssb_features_batch(np.stack([o.grid for o, _ in rows]), [o.pci for o, _ in rows],
                               [o.ibar for o, _ in rows], np.stack([o.pss_trace for o, _ in rows]),
                               nid2_margin_db=[o.nid2_margin_db for o, _ in rows],
                               sss_metric=[o.sss_metric for o, _ in rows], dmrs_metric=[o.dmrs_metric for o, _ in rows],
                               locked=[o.locked for o, _ in rows], baselines=bases,
                               floor_per_re=[fl for _, fl in rows])
    assert batch.shape == (len(rows), N_FEATURES) and batch.dtype == np.float32
    # an SSB's features do not depend on its batch
    np.testing.assert_array_equal(batch, single)
    big = 4 * rows  # a batch whose arrays pass 256 kB (numpy may then work in place in temporaries)
    again = ssb_features_batch(np.stack([o.grid for o, _ in big]), [o.pci for o, _ in big],
                               [o.ibar for o, _ in big], np.stack([o.pss_trace for o, _ in big]),
                               nid2_margin_db=[o.nid2_margin_db for o, _ in big],
                               sss_metric=[o.sss_metric for o, _ in big], dmrs_metric=[o.dmrs_metric for o, _ in big],
                               locked=[o.locked for o, _ in big], baselines=bases * 4,
                               floor_per_re=[fl for _, fl in big])
    np.testing.assert_array_equal(again, np.concatenate([batch] * 4))
    assert np.all(batch[1::2, IDX["calibrated"]] == 1.0) and np.all(batch[::2, IDX["calibrated"]] == 0.0)


def test_channel_fit_is_the_delay_domain_interpolator():
    """The two-stage channel fit is the least-squares interpolator B pinv(B_l)
    over the CHANNEL_TAPS delays on each symbol's pilots."""
    from detector.features import CHANNEL_TAPS, _channel_fit

    kk = np.arange(240) - 120
    basis = np.exp(-2j * np.pi * np.outer(kk, CHANNEL_TAPS) / 256)
    for v in range(4):
        fit = _channel_fit(v)
        for l in range(4):
            n = int(fit["n_pilots"][l])
            k = fit["pil_idx"][l, :n] - 240 * l
            p_ref = basis @ np.linalg.pinv(basis[k])
            p = fit["interp_t"][l].T.astype(np.complex128) @ fit["proj_t"][l, :n].T.astype(np.complex128)
            assert np.abs(p - p_ref).max() < 1e-4 * max(1.0, np.abs(p_ref).max())
            assert not fit["proj_t"][l, n:].any()  # the padding reads nothing


def test_pipeline_scores_a_push_as_one_batch_like_ssb_by_ssb():
    """ScoringPipeline.records (one feature batch for the SSBs of a push) gives
    the records that scoring each SSB alone gives."""
    p, rng = _drawn(_cfg(snr_db=(15.0, 15.0), datatypes=("ci16_le",), scs_khz=(30,), sample_rates_hz=(15.36e6,)), 8)
    cap = simulate_capture(p, rng)
    pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, p.datatype)
    obs = pipe.receiver.push(cap.iq) + pipe.receiver.flush()
    assert len(obs) > 2
    batch = pipe.records(obs)
    one = [pipe.record(o) for o in obs]
    assert [r["sample"] for r in batch] == [o.sample for o in obs]
    for a, b in zip(batch, one):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float) and not isinstance(a[k], bool):
                assert a[k] == pytest.approx(b[k], abs=2e-3), k
            else:
                assert a[k] == b[k], k


def test_pss_sss_gain_sees_a_fake_pss_with_the_cells_nid2():
    """A co-timed fake PSS with the serving cell's N_ID2 leaves no residual (it
    adds to the PSS symbol's channel estimate) but moves the PSS-to-SSS channel
    gain by 20 log10 |1 + a e^(j phi)|; another receiver gain moves nothing, and
    a gNB that sends its PSS 3 dB above its SSS (TS 38.213 §4.1) reads ~0 too."""
    pci, ibar = 417, 3
    rng = np.random.default_rng(9)
    clean = nr.ssb_grid(pci, ibar, 8, rng=rng).astype(np.complex64)
    noise = (rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) * np.sqrt(0.5e-4)
    noise = noise.astype(np.complex64)
    trace = np.zeros(PSS_TRACE_LEN, np.float32)
    trace[PSS_TRACE_HALF] = 1.0
    i = IDX["pss_sss_gain_dev_db"]
    g0 = ssb_features(clean + noise, pci, ibar, trace)[i]
    g_gain = ssb_features((clean + noise) * np.float32(7.0), pci, ibar, trace)[i]
    assert 0 <= g0 < 0.1 and abs(g_gain - g0) < 1e-4
    boosted = clean.copy()
    boosted[0] *= np.float32(np.sqrt(2.0))  # PSS EPRE 3 dB over SSS EPRE
    assert ssb_features(boosted + noise, pci, ibar, trace)[i] < 0.1
    fake = np.zeros_like(clean)
    fake[0] = clean[0] * np.complex64(0.2 * np.exp(0.4j))  # the PSS REs of symbol 0 only (PSS-only spoofer)
    f = ssb_features(clean + noise + fake, pci, ibar, trace)
    expect = 20 * np.log10(abs(1 + 0.2 * np.exp(0.4j)))
    assert expect > 1.0 and abs(f[i] - expect) < 0.1


def test_pss_shape_sees_a_fake_pss_with_its_own_channel():
    """features.AUX_PSS_SHAPE: a lone cell's PSS has the channel of its SSS and
    PBCH but for a gain and a phase (one antenna port, TS 38.211 §7.4.3.1): the
    statistic stays near the noise (~1-5 dB over it) under multipath, a PSS 3 dB
    over the SSS (TS 38.213 §4.1), another receiver gain and a per-symbol phase;
    a fake PSS of the cell's N_ID2 20 dB under it from another transmitter
    (another delay) on symbol 0 alone lifts it by its power over the noise."""
    pci, ibar = 417, 3
    kk = np.arange(240) - 120
    trace = np.zeros(PSS_TRACE_LEN, np.float32)

    def shape(grid):
        aux = {}
        ssb_features_batch(grid[None].astype(np.complex64), [pci], [ibar], trace[None], aux=aux)
        return float(aux[AUX_PSS_SHAPE][0])

    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = nr.ssb_grid(pci, ibar, 8, rng=rng)
        h = sum(a * np.exp(-2j * np.pi * kk * d / 256) for d, a in ((0, 1.0), (4, 0.5j), (11, 0.25)))
        ph = np.exp(1j * rng.uniform(0, 2 * np.pi, 4))[:, None]  # a phase per symbol
        noise = (rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) * np.sqrt(0.5e-3)  # 30 dB SNR
        y = x * h * ph + noise
        y[0] *= np.sqrt(2.0)  # PSS EPRE 3 dB over the SSS's
        clean = shape(y)
        assert -2.0 < clean < 6.0, (seed, clean)
        assert abs(shape(7.0 * y) - clean) < 1e-3
        fake = np.zeros_like(y)
        fake[0] = x[0] * 0.1 * np.exp(-2j * np.pi * kk * 2 / 256 + 1j * rng.uniform(0, 2 * np.pi))  # -20 dB, 2 samples
        assert shape(y + fake) > clean + 6.0, (seed, clean, shape(y + fake))


def _two_cells(rng, nb_amp, nb_delay=2):
    """Serving cell 100 and a time-aligned neighbour 206 (another N_ID2, its own
    two-path channel, nb_amp in amplitude, first path nb_delay SSB-rate samples
    after the serving cell's) at the same ī_SSB, noise 1e-3."""
    ps, pn, ib = 100, 206, 3
    kk = np.arange(240) - 120

    def chan(taps):
        return sum(a * np.exp(-2j * np.pi * kk * d / 256) for d, a in taps)

    xs = nr.ssb_grid(ps, ib, 8, rng=rng)
    xn = nr.ssb_grid(pn, ib, 8, rng=rng)
    hs = chan([(0, 1.0), (3, 0.4j), (9, 0.2)])
    hn = chan([(nb_delay, nb_amp * np.exp(1j * rng.uniform(0, 2 * np.pi))), (nb_delay + 4, 0.4 * nb_amp)])
    ph = np.exp(1j * rng.uniform(0, 2 * np.pi, 4))[:, None]  # a phase per symbol (CFO residue)
    noise = (rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) * np.sqrt(1e-3 / 2)
    return (xs * hs * ph + xn * hn * ph + noise).astype(np.complex64), ps, pn, ib


def test_a_known_neighbour_cell_is_cancelled_and_an_absent_one_costs_little():
    """A co-channel neighbour 6 dB under the serving cell (noise 30 dB under it)
    holds the residual at its own power; cancelling it (its known REs and both
    cells' PBCH decided jointly, with their own channels) takes it to within a
    few dB of the noise (it took 12 dB off with per-symbol fits alone, which
    this fails). Naming a neighbour that is not there moves the estimate by
    less than 2 dB."""
    tr = np.zeros(PSS_TRACE_LEN, np.float32)
    i = IDX["isr_db"]
    for seed in range(3):
        g, ps, pn, ib = _two_cells(np.random.default_rng(seed), 0.5)
        plain, cancelled = ssb_features(g, ps, ib, tr)[i], ssb_features(g, ps, ib, tr, neighbour_pci=pn)[i]
        assert plain > -9.0 and cancelled < -24.0, (seed, plain, cancelled)
        g0, *_ = _two_cells(np.random.default_rng(seed), 0.0)
        plain0, cancelled0 = ssb_features(g0, ps, ib, tr)[i], ssb_features(g0, ps, ib, tr, neighbour_pci=pn)[i]
        assert abs(cancelled0 - plain0) < 2.0, (seed, plain0, cancelled0)


def test_a_neighbour_ahead_of_the_serving_cell_is_cancelled_too():
    """A neighbour is time-aligned only to within the CP: one whose paths come
    8 SSB-rate samples before the serving cell's lies outside the channel
    model's delays unless its fits are moved to its own strongest path
    (without that it stays ~19 dB over the noise)."""
    tr = np.zeros(PSS_TRACE_LEN, np.float32)
    i = IDX["isr_db"]
    for seed in range(3):
        g, ps, pn, ib = _two_cells(np.random.default_rng(seed), 0.5, nb_delay=-8)
        g0, *_ = _two_cells(np.random.default_rng(seed), 0.0)
        cancelled, floor = ssb_features(g, ps, ib, tr, neighbour_pci=pn)[i], ssb_features(g0, ps, ib, tr)[i]
        assert cancelled < floor + 8.0, (seed, cancelled, floor)


def test_neighbour_cancellation_does_not_depend_on_the_batch():
    from detector.features import ssb_features_batch

    cells = [_two_cells(np.random.default_rng(s), 0.5) for s in range(3)]
    tr = np.zeros((3, PSS_TRACE_LEN), np.float32)
    nbs = [cells[0][2], -1, cells[2][2]]
    batch = ssb_features_batch(np.stack([c[0] for c in cells]), [c[1] for c in cells], [c[3] for c in cells], tr,
                               neighbour_pcis=nbs)
    one = np.stack([ssb_features(c[0], c[1], c[3], tr[0], neighbour_pci=nb) for c, nb in zip(cells, nbs)])
    np.testing.assert_array_equal(batch, one)
    assert batch[0, IDX["isr_db"]] < batch[1, IDX["isr_db"]] - 8.0


@pytest.mark.parametrize("same_nid2", [False, True])
def test_calibration_finds_the_neighbour_cell_under_the_ssb(same_nid2):
    """site_cells: a neighbour 6 dB down, time-aligned on the same SSB
    resources, is found from the serving cell's residual of a clean capture --
    also one with the serving cell's N_ID2, whose PSS merges with the serving
    PSS (the cell search never reports it)."""
    from detector.pipeline import site_cells

    cfg = _cfg(snr_db=(25.0, 25.0), datatypes=("cf32_le",), scs_khz=(30,), sample_rates_hz=(15.36e6,),
               neighbour=dataclasses.replace(SimConfig().neighbour, probability=1.0, power_db=(-6.0, -6.0),
                                             offset_cp=(0.0, 0.1)))
    p, rng = _drawn(cfg, 11)
    if same_nid2:
        p = dataclasses.replace(p, neighbour=dict(p.neighbour, pci=(p.pci + 3 * 17) % 1008))
    assert (p.neighbour["pci"] % 3 == p.pci % 3) == same_nid2
    cap = simulate_capture(p, rng)
    cells = site_cells([o for o in _observe(cap) if o.valid])
    assert cells and cells[0] == p.neighbour["pci"], (cells, p.neighbour)


def test_heard_cells_smooths_the_channel_as_a_zero_padded_box_filter():
    """The channel read off the PSS is smoothed by a centred length-n box with
    zeros beyond the band's ends: scipy.signal.convolve's "same" output, written
    out without it (a box of 1 leaves the rows as they are)."""
    from scipy import signal

    from detector.dsp import smooth_freq

    rng = np.random.default_rng(4)
    h = (rng.standard_normal((5, 127)) + 1j * rng.standard_normal((5, 127))).astype(np.complex64)
    for n in (1, 3, 9):
        want = signal.convolve(h.astype(np.complex128), np.ones((1, n)) / n, mode="same")
        np.testing.assert_allclose(smooth_freq(h, n, zero_edges=True), want, rtol=0, atol=1e-12)


def test_heard_cells_lists_the_co_timed_cells_near_the_tracked_one_and_no_other():
    """heard_cells: SSB grids of a site (each cell through its own multipath
    channel, 20 dB SNR) holding a tracked cell and co-timed cells of the other two
    N_ID2 1 dB under it, and one of the tracked cell's N_ID2 8 dB under it (its
    PSS sums into the channel read for the tracked cell), list the first two and
    no PCI that is not on the air; the tracked cell alone gives nothing. (Over 40
    draws of the channels: both listed in 38, a PCI not on the air in 2 -- the
    statistic's tail under strong co-timed SSS; alone, none in 40.)"""
    from detector.pipeline import heard_cells
    from signals import nr

    rng = np.random.default_rng(1)
    tracked, near, far, weak = 100, 219, 302, 505
    assert [p % 3 for p in (tracked, near, far, weak)] == [1, 0, 2, 1]

    def grids(cells_db):
        chans = {}
        for pci, _ in cells_db:  # a fixed site: one short multipath channel per cell
            taps = (rng.normal(size=3) + 1j * rng.normal(size=3)) / np.sqrt(6)
            h = np.fft.fft(taps, 2048)[np.arange(240) - 120]
            chans[pci] = h / np.sqrt(np.mean(np.abs(h) ** 2))
        out = []
        for i in range(20):
            g = np.zeros((4, 240), np.complex64)
            for pci, db in cells_db:
                g += (10 ** (db / 20) * chans[pci] * nr.ssb_grid(pci, i % 8, 8, rng=rng)).astype(np.complex64)
            noise = (rng.normal(size=(4, 240)) + 1j * rng.normal(size=(4, 240))) * np.sqrt(0.5 * 10 ** (-20 / 10))
            out.append(g + noise.astype(np.complex64))
        return np.stack(out)

    heard = heard_cells(grids([(tracked, 0.0), (near, -1.0), (far, -1.0), (weak, -8.0)]), [tracked])
    assert {near, far} <= set(heard) <= {near, far, weak}, heard
    assert heard_cells(grids([(tracked, 0.0)]), [tracked]) == []
    assert heard_cells(grids([(tracked, 0.0)]), []) == []


def _band_cols():
    from detector.features import BAND_FEATURES
    return {n: IDX[n] for n in BAND_FEATURES}


def test_band_features_read_the_null_res_against_the_floor_beside_the_ssb():
    """Feature version 8: the null REs over the recording's floor beside the SSB,
    as the pipeline's band-excess rule reads them (its dB and z), and nothing where
    no floor was measured; a gain applied to grid and floors changes none of them."""
    from detector.pipeline import band_excess

    c = _band_cols()
    rng = np.random.default_rng(8)
    pci, ibar = 77, 2
    x = nr.ssb_grid(pci, ibar, 8, rng=rng).astype(np.complex64)
    tr = np.zeros(PSS_TRACE_LEN, np.float32)
    grids, floors, bins = [], [], []
    for extra in (0.0, 0.001, 0.01):  # interference on the SSB's REs only, over a 0.001 floor
        n = (rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) * np.sqrt((0.001 + extra) / 2)
        grids.append((x + n).astype(np.complex64))
        floors.append(0.001)
        bins.append(400)
    grids.append(grids[-1])
    floors.append(np.nan)  # not measured
    bins.append(0)
    g = np.stack(grids)
    f = ssb_features_batch(g, [pci] * 4, [ibar] * 4, np.stack([tr] * 4), band_floor_per_re=floors,
                           band_floor_bins=bins, band_floor_near_per_re=floors, band_floor_near_bins=bins)
    null_db = 10 * np.log10(np.array([np.mean(np.abs(gr[nr.NULL_RE_MASK]) ** 2) for gr in grids]))
    cell_db = f[:, IDX["snr_est_db"]] + null_db
    _, z, over = band_excess(null_db[:3], cell_db[:3], np.array(floors[:3]), np.array(bins[:3]))
    np.testing.assert_allclose(f[:3, c["band_over_db"]], over, atol=1e-4)
    np.testing.assert_allclose(f[:3, c["band_over_logz"]], np.sign(z) * np.log1p(np.abs(z)), atol=1e-4)
    np.testing.assert_array_equal(f[:, c["band_over_db"]], f[:, c["band_near_over_db"]])
    assert abs(f[0, c["band_over_db"]]) < 0.6  # null REs at the floor
    assert 2.5 < f[1, c["band_over_db"]] < 3.6 and 9.5 < f[2, c["band_over_db"]] < 10.9  # 3 dB, 10.4 dB over
    np.testing.assert_allclose(f[:3, c["band_floor_rel_db"]], 10 * np.log10(0.001) - cell_db[:3], atol=0.01)
    np.testing.assert_array_equal(f[:, c["band_known"]], [1, 1, 1, 0])
    assert f[3, c["band_over_db"]] == 0 and f[3, c["band_over_logz"]] == 0
    np.testing.assert_allclose(f[3, c["band_floor_rel_db"]], f[3, IDX["epnre_rel_db"]], atol=0.05)
    gain = 37.0  # another receiver gain: grid x sqrt(gain), floors x gain
    f2 = ssb_features_batch(g * np.sqrt(gain), [pci] * 4, [ibar] * 4, np.stack([tr] * 4),
                            band_floor_per_re=np.array(floors) * gain, band_floor_bins=bins,
                            band_floor_near_per_re=np.array(floors) * gain, band_floor_near_bins=bins)
    np.testing.assert_allclose(f2[:, list(c.values())], f[:, list(c.values())], atol=2e-3)


def test_band_features_tell_a_jammer_in_the_ssb_band_from_a_weaker_cell():
    """A simulated cell at 40 dB SNR with SSB-band noise 20 dB under it against a
    clean cell at 20 dB SNR: alike to the SSB's own energies (null REs ~20 dB under
    the SSB), but only the jammed one stands over the floor beside the SSB."""
    from signals.simulate import JammingConfig

    c = _band_cols()
    out = {}
    for name, snr, jam in (("clean", 20.0, None), ("jammed", 40.0, "ssb_band_noise")):
        jcfg = dataclasses.replace(SimConfig().jamming, clean_fraction=0.0 if jam else 1.0,
                                   types=(jam,) if jam else SimConfig().jamming.types, sjnr_db=(20.0, 20.0),
                                   low_sjnr_below_db=20.0, low_fraction=0.0)
        cfg = _cfg(snr_db=(snr, snr), sample_rates_hz=(30.72e6,), scs_khz=(30,), centre_ssb_fraction=0.0,
                   cfo_hz=(0.0, 0.0), jamming=jcfg, datatypes=("cf32_le",))
        rng = np.random.default_rng(5)
        cap = simulate_capture(draw_params(cfg, rng), rng)
        obs = _observe(cap)
        f = np.stack([observation_features(o, None, datatype="cf32_le", sample_rate_hz=30.72e6) for o in obs])
        out[name] = f
    assert abs(np.median(out["clean"][:, IDX["epnre_rel_db"]]) - np.median(out["jammed"][:, IDX["epnre_rel_db"]])) < 3
    assert (out["clean"][:, c["band_known"]] == 1).all() and (out["jammed"][:, c["band_known"]] == 1).all()
    assert np.max(np.abs(out["clean"][:, c["band_over_db"]])) < 2.0
    assert np.min(out["jammed"][:, c["band_over_db"]]) > 15.0  # ~19.5 dB: the noise 20 dB over the floor
