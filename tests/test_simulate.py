"""Simulator: ground truth is what a receiver measures; CLI output contract."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from detector.cli import main
from signals import iq as iqio
from signals import nr
from signals.config import ConfigError, from_dict, load_yaml
from signals.simulate import SimConfig, draw_params, simulate_capture

NOISE_JAMMERS = ("barrage", "ssb_band_noise", "pulsed_noise", "reactive")


def _measure(cap):
    """Per-SSB (S, J+N) from the stored IQ: null REs vs occupied REs."""
    p = cap.params
    num = p.numerology
    bins = nr.subcarrier_bins(num, p.ssb_offset_hz)
    out = []
    for s in cap.ssbs:
        # the SSB's 4 symbols: CP lengths from its position (whole-sample timing)
        n = num.fft_size
        cps = []
        pos = s.sample_start
        starts = []
        for l in range(4):
            starts.append(pos)
            # the long CP can only be on the first symbol of a half subframe; try both
            cps.append(num.cp_short)
            pos += num.cp_short + n
        # a window in the middle of the CP is inside every symbol even if one CP is long
        y = nr.ofdm_demodulate(cap.iq, np.array(starts), np.array(cps), n, cp_fraction=0.5)[:, bins]
        pw = np.abs(y) ** 2
        jn = pw[nr.NULL_RE_MASK].mean()
        sig = pw[~nr.NULL_RE_MASK].mean() - jn
        out.append((s, sig, jn))
    return out


def _cfg(**kw):
    base = dict(
        scs_khz=(30,), sample_rates_hz=(7.68e6,), l_max=(8,), period_ms=(10.0,), duration_ms=20.0,
        all_ssbs_fraction=1.0, snr_db=(25.0, 25.0),
    )
    base.update(kw)
    return SimConfig(**base)


@pytest.mark.parametrize("jammer", NOISE_JAMMERS)
def test_noise_jammer_sjnr_matches_request(jammer):
    cfg = _cfg(multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
               neighbour=dataclasses.replace(SimConfig().neighbour, probability=0.0))
    errs_sjnr = []
    for seed in range(20):  # until >= 50 jammed SSBs (a pulsed jammer misses some)
        if len(errs_sjnr) >= 50:
            break
        rng = np.random.default_rng(seed)
        p = draw_params(cfg, rng, force_clean=False, jammer_type=jammer)
        p.datatype = "cf32_le"
        p.jammer["sjnr_db"] = 10.0
        cap = simulate_capture(p, rng)
        for s, sig, jn in _measure(cap):
            if s.jammed:
                assert s.jnr_db >= -10
                errs_sjnr.append(10 * np.log10(sig / jn) - p.jammer["sjnr_db"])
    assert len(errs_sjnr) >= 50
    assert abs(np.median(errs_sjnr)) <= 0.5, np.median(errs_sjnr)


def test_clean_snr_matches_request_over_datatypes():
    cfg = _cfg(jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    errs = []
    for seed, dt in enumerate(("cf32_le", "ci16_le", "ci8", "cu8")):
        rng = np.random.default_rng(seed)
        p = draw_params(cfg, rng, force_clean=True)
        p.datatype = dt
        p.snr_db = 15.0
        cap = simulate_capture(p, rng)
        for s, sig, jn in _measure(cap):
            assert s.sjnr_db is None and s.jammer is None
            errs.append(10 * np.log10(sig / jn) - s.snr_db)
    assert len(errs) >= 50
    assert abs(np.median(errs)) <= 0.5


def test_capture_is_deterministic_given_seed():
    cfg = SimConfig()
    a = simulate_capture(draw_params(cfg, np.random.default_rng(7)), np.random.default_rng(8))
    b = simulate_capture(draw_params(cfg, np.random.default_rng(7)), np.random.default_rng(8))
    assert np.array_equal(a.iq, b.iq)
    assert [s.sample_start for s in a.ssbs] == [s.sample_start for s in b.ssbs]


def test_simulate_cli_writes_sigmf_with_truth(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--n", "3", "--seed", "2"]) == 0
    metas = sorted(tmp_path.glob("*.sigmf-meta"))
    assert len(metas) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 2 and len(manifest["captures"]) == 3
    for m in metas:
        meta = iqio.read_sigmf_meta(m)
        g = meta.global_
        assert g["ssbwatch:scs_khz"] in (15, 30)
        assert isinstance(g["ssbwatch:ssb_offset_hz"], float)
        assert meta.center_freq_hz + g["ssbwatch:ssb_offset_hz"] == pytest.approx(g["ssbwatch:ssb_freq_hz"])
        assert meta.annotations, m
        for a in meta.annotations:
            assert a["core:label"] == "SSB"
            assert 0 <= a["core:sample_start"] < meta.n_samples
            assert a["core:sample_start"] + a["core:sample_count"] <= meta.n_samples
            for k in ("ssbwatch:pci", "ssbwatch:ssb_index", "ssbwatch:snr_db", "ssbwatch:sjnr_db", "ssbwatch:jammer"):
                assert k in a
            assert (a["ssbwatch:sjnr_db"] is None) == (a["ssbwatch:jammer"] is None)
    assert "SigMF captures" in capsys.readouterr().out


def test_simulate_workers_write_the_same_captures(tmp_path, capsys):
    # two processes: every file (companions included) and the manifest byte for byte those of one
    for w in ("1", "2"):
        assert main(["simulate", "--out", str(tmp_path / w), "--n", "4", "--seed", "5", "--workers", w, "-q",
                     "--config", str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")]) == 0
    names = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert len(names) >= 9 and any("-cal" in n for n in names)
    assert names == sorted(p.name for p in (tmp_path / "2").iterdir())
    for n in names:
        assert (tmp_path / "1" / n).read_bytes() == (tmp_path / "2" / n).read_bytes(), n
    capsys.readouterr()
    assert main(["simulate", "--out", str(tmp_path / "0"), "--n", "1", "--workers", "0"]) == 2
    assert "--workers=0" in capsys.readouterr().err


def test_calibration_companions_move_the_noise_floor_within_the_drift(tmp_path):
    """calibration_snr_drift_db: each companion's SNR is its capture's plus a
    drift drawn in the range (the training mix's sites see their noise floor
    move between recordings); without it the companion keeps the capture's SNR."""
    from signals.simulate import simulate_dataset

    def snrs(out, entries):
        pairs = []
        for c in entries:
            g = iqio.read_sigmf_meta(out / c["meta"]).global_
            gc = iqio.read_sigmf_meta(out / f"{c['calibration'][0]}").global_
            pairs.append((g["ssbwatch:snr_db"], gc["ssbwatch:snr_db"]))
        return np.array(pairs)

    base = SimConfig(n_captures=6, duration_ms=5.0, period_ms=(5.0,), calibration_captures=1)
    ea = simulate_dataset(base, tmp_path / "a", seed=3)
    eb = simulate_dataset(dataclasses.replace(base, calibration_snr_drift_db=(-3.0, 3.0)), tmp_path / "b", seed=3)
    a, b = snrs(tmp_path / "a", ea), snrs(tmp_path / "b", eb)
    assert np.array_equal(a[:, 0], b[:, 0])  # the captures themselves do not change
    assert np.abs(a[:, 1] - a[:, 0]).max() < 1e-3
    d = b[:, 1] - b[:, 0]
    assert np.all(np.abs(d) <= 3.0 + 1e-3) and np.abs(d).max() > 0.5
    with pytest.raises(ConfigError, match="calibration_snr_drift_db"):
        from_dict(SimConfig, {"calibration_snr_drift_db": [2.0, -2.0]})


def test_default_mix_covers_everything():
    from signals.simulate import JAMMER_TYPES, plan_jammers

    cfg = SimConfig()
    plan = plan_jammers(cfg, 24, np.random.default_rng(0))
    assert None in plan and set(JAMMER_TYPES) <= set(plan)


def test_config_unknown_key_names_it(tmp_path):
    f = tmp_path / "sim.yaml"
    f.write_text("schema_version: 1\nn_captures: 3\njamming:\n  sjnr: [0, 10]\n")
    with pytest.raises(ConfigError, match=r"jamming\.sjnr"):
        load_yaml(f, SimConfig)
    with pytest.raises(ConfigError, match="snr_db"):
        from_dict(SimConfig, {"snr_db": [30, 10]})
    with pytest.raises(ConfigError, match="sample_rates_hz"):
        from_dict(SimConfig, {"sample_rates_hz": [19.5e6]})
    assert main(["simulate", "--out", str(tmp_path / "o"), "--config", str(f)]) == 2


def test_shipped_sim_config_is_the_default():
    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "sim.yaml", SimConfig)
    assert cfg == SimConfig()


def test_demo_config_gives_calibratable_jammed_sites():
    """configs/demo.yaml (the README's first command): every capture jammed, each
    with a clean companion holding enough SSBs for ssbwatch calibrate (>= 10)."""
    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml", SimConfig)
    assert cfg.calibration_captures == 1 and cfg.jamming.clean_fraction == 0.0
    # 40 ms at a 5 ms period with every SSB of L_max >= 4 sent: >= 32 SSBs per capture
    assert cfg.duration_ms / max(cfg.period_ms) * min(cfg.l_max) >= 10 and cfg.all_ssbs_fraction == 1.0


def test_impairments_off_draw_nothing_and_on_raise_the_residual_not_the_nulls():
    from signals.simulate import ImpairmentConfig

    # disabled (the default): the draws and the capture are those of a config without the key
    base = _cfg(datatypes=("cf32_le",))
    off = dataclasses.replace(base, impairments=ImpairmentConfig(probability=0.0, edge_collision_probability=1.0))
    assert draw_params(base, np.random.default_rng(4)) == draw_params(off, np.random.default_rng(4))
    # transmitter EVM -25 dB, no other impairment: the SSB's null REs stay at the
    # thermal noise, the occupied REs carry a -25 dB distortion on top of it
    on = dataclasses.replace(base, snr_db=(40.0, 40.0), multipath=dataclasses.replace(base.multipath, probability=0.0),
                             traffic=dataclasses.replace(base.traffic, probability=0.0),
                             neighbour=dataclasses.replace(base.neighbour, probability=0.0),
                             jamming=dataclasses.replace(base.jamming, clean_fraction=1.0),
                             impairments=ImpairmentConfig(probability=1.0, evm_db=(-25.0, -25.0),
                                                          phase_noise_linewidth_hz=(0.0, 0.0), iq_image_probability=0.0))
    rng = np.random.default_rng(5)
    p = draw_params(on, rng, force_clean=True)
    assert p.impairments["evm_db"] == -25.0 and p.impairments["iq_image_db"] is None
    p.cfo_hz, p.timing_offset_samples = 0.0, 0.0  # a flat channel: one complex gain per symbol
    cap = simulate_capture(p, rng)
    num = p.numerology
    bins = nr.subcarrier_bins(num, p.ssb_offset_hz)
    snr_null, evm_meas = [], []
    for s in cap.ssbs:
        starts = s.sample_start + np.arange(4) * (num.cp_short + num.fft_size)
        y = nr.ofdm_demodulate(cap.iq, starts, np.full(4, num.cp_short), num.fft_size, cp_fraction=0.5)[:, bins]
        ref = nr.ssb_grid(p.pci, s.ssb_index, p.l_max, components=("pss", "sss", "dmrs"))
        known = ref != 0
        h = (np.sum(np.conj(ref) * y * known, axis=1) / np.sum(np.abs(ref) ** 2, axis=1))[:, None]  # (4, 1)
        err = (np.abs(y - h * ref) ** 2)[known]
        noise = np.mean(np.abs(y[nr.NULL_RE_MASK]) ** 2)
        s_re = np.mean(np.abs(h) ** 2)
        snr_null.append(10 * np.log10(s_re / noise))
        evm_meas.append(10 * np.log10((err.mean() - noise) / s_re))
    assert abs(np.median(snr_null) - 40.0) < 1.5  # the nulls see only the noise
    assert abs(np.median(evm_meas) - (-25.0)) < 1.5  # the occupied REs see the EVM


def test_transmitter_noise_floor_fills_the_nulls_not_the_silent_symbols():
    """tx_floor_db -30 at 40 dB SNR, no traffic: the SSB's null REs sit 30 dB
    under its REs, the silent symbol before each SSB at the thermal 40 dB."""
    import dataclasses

    from signals.simulate import ImpairmentConfig

    base = _cfg(datatypes=("cf32_le",))
    on = dataclasses.replace(base, snr_db=(40.0, 40.0), multipath=dataclasses.replace(base.multipath, probability=0.0),
                             traffic=dataclasses.replace(base.traffic, probability=0.0),
                             neighbour=dataclasses.replace(base.neighbour, probability=0.0),
                             jamming=dataclasses.replace(base.jamming, clean_fraction=1.0),
                             impairments=ImpairmentConfig(probability=1.0, evm_db=(-60.0, -60.0),
                                                          phase_noise_linewidth_hz=(0.0, 0.0), iq_image_probability=0.0,
                                                          tx_floor_probability=1.0, tx_floor_db=(-30.0, -30.0)))
    rng = np.random.default_rng(6)
    p = draw_params(on, rng, force_clean=True)
    assert p.impairments["tx_floor_db"] == -30.0
    p.cfo_hz, p.timing_offset_samples = 0.0, 0.0
    cap = simulate_capture(p, rng)
    num = p.numerology
    bins = nr.subcarrier_bins(num, p.ssb_offset_hz)
    sym = num.cp_short + num.fft_size
    null_db, silent_db = [], []
    ends = {s.sample_start + 4 * sym for s in cap.ssbs}
    for s in cap.ssbs:
        if s.sample_start < sym or any(abs(e - s.sample_start) <= num.fft_size // 8 for e in ends):
            continue  # at the capture's start, or the second SSB of a Case B pair (symbols 4-7, 8-11)
        starts = s.sample_start + np.arange(-1, 4) * sym
        y = nr.ofdm_demodulate(cap.iq, starts, np.full(5, num.cp_short), num.fft_size, cp_fraction=0.5)[:, bins]
        e = np.abs(y) ** 2
        s_re = np.mean(e[1:][~nr.NULL_RE_MASK])
        null_db.append(10 * np.log10(s_re / np.mean(e[1:][nr.NULL_RE_MASK])))
        silent_db.append(10 * np.log10(s_re / np.mean(e[0])))
    assert len(null_db) >= 4
    assert abs(np.median(null_db) - 30.0) < 1.0  # tx floor (-30) + thermal (-40): 29.6 dB
    assert abs(np.median(silent_db) - 40.0) < 1.0


def test_receiver_dc_offset_is_a_constant_at_its_power():
    """dc_offset_db -20: the capture's mean is a constant 20 dB under its power
    (the same capture without it has a mean ~40 dB further down)."""
    import dataclasses

    from signals.simulate import ImpairmentConfig

    base = _cfg(datatypes=("cf32_le",))
    imp = ImpairmentConfig(probability=1.0, iq_image_probability=0.0, dc_offset_probability=1.0,
                           dc_offset_db=(-20.0, -20.0))
    on = dataclasses.replace(base, jamming=dataclasses.replace(base.jamming, clean_fraction=1.0), impairments=imp)
    means = []
    for cfg in (on, dataclasses.replace(on, impairments=dataclasses.replace(imp, dc_offset_probability=0.0))):
        rng = np.random.default_rng(8)
        p = draw_params(cfg, rng, force_clean=True)
        cap = simulate_capture(p, rng)
        x = cap.iq.astype(np.complex128)
        means.append(10 * np.log10(abs(x.mean()) ** 2 / np.mean(np.abs(x) ** 2)))
    assert p.impairments.get("dc_offset_db") is None
    assert means[0] == pytest.approx(-20.0, abs=0.2)
    assert means[1] < -50.0


def test_beam_sweep_gives_each_ssb_index_its_gain():
    """beam_probability 1: each SSB index arrives at its drawn gain (one at 0 dB,
    the others within -beam_spread_db): the truth SNR of the SSBs differs by
    exactly those gains; the other parameters are those drawn without beams."""
    import dataclasses

    base = _cfg(datatypes=("cf32_le",))
    cfg = dataclasses.replace(base, jamming=dataclasses.replace(base.jamming, clean_fraction=1.0), l_max=(8,),
                              all_ssbs_fraction=1.0, beam_probability=1.0, beam_spread_db=15.0)
    rng = np.random.default_rng(9)
    p = draw_params(cfg, rng, force_clean=True)
    g = np.array(p.beam_gains_db)
    assert g.shape == (8,) and g.max() == 0.0 and g.min() >= -15.0 and np.ptp(g) > 5.0
    cap = simulate_capture(p, rng)
    snr = {}
    for t in cap.ssbs:
        snr.setdefault(t.ssb_index, t.snr_db)
    assert len(snr) >= 4
    ref = next(iter(snr))
    for i, v in snr.items():
        assert v - snr[ref] == pytest.approx(g[i] - g[ref], abs=0.3)
    q = draw_params(dataclasses.replace(cfg, beam_probability=0.0), np.random.default_rng(9), force_clean=True)
    assert q.beam_gains_db is None and dataclasses.replace(p, beam_gains_db=None) == q  # drawn last


def test_a_network_of_co_timed_neighbours_puts_each_cells_sss_under_the_ssb(tmp_path):
    """neighbour.count: two more co-timed cells beside the neighbour, each with its
    own PCI; on the serving cell's SSB grids the SSS matched in groups of 8
    subcarriers (TS 38.211 §7.4.2.3; each cell's timing turns its phase across the
    band) stands highest for exactly the four cells on the air. Written to the
    metadata; (1, 1) draws the captures of before; counts out of 1..MAX_NEIGHBOURS
    or fractional are named errors."""
    from detector import dsp
    from detector.pipeline import calibration_observations
    from detector.receiver import Receiver
    from signals.simulate import MAX_NEIGHBOURS, NeighbourConfig, write_capture

    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(15.36e6,), l_max=(8,), period_ms=(10.0,), duration_ms=20.0,
                    all_ssbs_fraction=1.0, snr_db=(30.0, 30.0), datatypes=("cf32_le",),
                    multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
                    neighbour=NeighbourConfig(probability=1.0, power_db=(-4.0, -4.0), count=(3, 3)),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    p = draw_params(cfg, np.random.default_rng(0), force_clean=True)
    cells = [p.pci, p.neighbour["pci"]] + [m["pci"] for m in p.more_neighbours]
    assert len(p.more_neighbours) == 2 and len(set(cells)) == 4
    cap = simulate_capture(p, np.random.default_rng(10))
    rx = Receiver(p.sample_rate_hz, p.center_freq_hz)
    obs = calibration_observations(rx.push(cap.iq) + rx.flush())
    assert len(obs) >= 8 and {o.pci for o in obs} == {p.pci}
    rg = dsp.sss_rx_groups(np.stack([o.grid for o in obs])[:, 2, nr.ssb_re_indices(p.pci)["sss"][1]])
    e = sum(dsp.sss_group_energy(x[None], dsp.sss_groups())[0] for x in rg)
    assert set(np.argsort(e)[-4:].tolist()) == set(cells)
    write_capture(cap, tmp_path / "c")
    meta = json.loads((tmp_path / "c.sigmf-meta").read_text())["global"]
    assert [m["pci"] for m in meta["ssbwatch:more_neighbours"]] == cells[2:]
    one = dataclasses.replace(cfg, neighbour=dataclasses.replace(cfg.neighbour, count=(1, 1)))
    q = draw_params(one, np.random.default_rng(0), force_clean=True)
    assert q.more_neighbours == () and q.neighbour == p.neighbour
    for bad in ([0, 1], [1, MAX_NEIGHBOURS + 1], [1.5, 2]):
        with pytest.raises(ConfigError, match=r"neighbour\.count"):
            from_dict(SimConfig, {"neighbour": {"count": bad}})


def test_an_unsynchronised_neighbour_carries_its_traffic_onto_the_serving_ssbs_null_res():
    """neighbour.traffic_probability: a neighbour cell with PDSCH of its own, 200 CPs off
    the serving cell's timing (an unsynchronised FDD network), fills the serving SSB's null
    REs with its traffic (at its SSBs' level less the traffic's per-RE power); without the
    option nothing is drawn for it (the captures of a seed stay those of before) and the
    null REs hold the noise. Out-of-range values are named errors."""
    from signals.simulate import NeighbourConfig

    nb = NeighbourConfig(probability=1.0, power_db=(-6.0, -6.0), offset_cp=(200.0, 200.0), cfo_hz=(0.0, 0.0))
    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(15.36e6,), l_max=(4,), period_ms=(10.0,), duration_ms=20.0,
                    snr_db=(40.0, 40.0), datatypes=("cf32_le",), cfo_hz=(0.0, 0.0),
                    multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
                    traffic=dataclasses.replace(SimConfig().traffic, probability=0.0), neighbour=nb,
                    impairments=dataclasses.replace(SimConfig().impairments, probability=0.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    loaded = dataclasses.replace(cfg, neighbour=dataclasses.replace(nb, traffic_probability=1.0, traffic_load=(1.0, 1.0),
                                                                   traffic_power_db=(0.0, 0.0)))
    p0 = draw_params(cfg, np.random.default_rng(3), force_clean=True)
    p1 = draw_params(loaded, np.random.default_rng(3), force_clean=True)
    assert "traffic" not in p0.neighbour and p1.neighbour["traffic"] == {"load": 1.0, "power_db": 0.0}
    assert dataclasses.replace(p1, neighbour=p0.neighbour) == p0
    null_db = []
    for p in (p0, p1):  # one SSB per period: the neighbour's, 13 symbols later, clear of it
        p = dataclasses.replace(p, ssbs_sent=(0,))
        m = _measure(simulate_capture(p, np.random.default_rng(4)))
        null_db.append(10 * np.log10(np.mean([jn / sig for _, sig, jn in m])))
    assert null_db[0] < -30.0  # the noise (40 dB SNR; the neighbour's SSBs elsewhere)
    assert -9.0 < null_db[1] < -3.0  # its traffic: 6 dB under the serving SSB's REs
    for key, bad in (("traffic_probability", 1.5), ("traffic_load", [0.5, 1.2]), ("traffic_power_db", [-50, 0])):
        with pytest.raises(ConfigError, match=rf"neighbour\.{key}"):
            from_dict(SimConfig, {"neighbour": {key: bad}})


def test_traffic_half_a_subcarrier_off_the_ssb_leaks_into_its_null_res():
    """traffic.kssb_odd_probability: at 30 kHz SCS an odd k_SSB (TS 38.211 §7.4.3.1, in
    15 kHz units) puts the cell's traffic half a subcarrier off the SSB's grid, the
    common RBs that overlap the SSB empty in its symbols: that traffic is not orthogonal
    to the SSB and leaks into its null REs, where traffic on the SSB's grid leaves the
    noise. Drawn only at 30 kHz and only when asked for; out of range is a named error."""
    base = SimConfig(scs_khz=(30,), sample_rates_hz=(30.72e6,), l_max=(4,), period_ms=(10.0,), duration_ms=20.0,
                     snr_db=(40.0, 40.0), datatypes=("cf32_le",), cfo_hz=(0.0, 0.0),
                     multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
                     traffic=dataclasses.replace(SimConfig().traffic, probability=1.0, load=(1.0, 1.0),
                                                 power_db=(0.0, 0.0)),
                     neighbour=dataclasses.replace(SimConfig().neighbour, probability=0.0),
                     impairments=dataclasses.replace(SimConfig().impairments, probability=0.0),
                     jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    odd = dataclasses.replace(base, traffic=dataclasses.replace(base.traffic, kssb_odd_probability=1.0))
    p0 = draw_params(base, np.random.default_rng(5), force_clean=True)
    p1 = draw_params(odd, np.random.default_rng(5), force_clean=True)
    assert "k_ssb" not in p0.traffic and p1.traffic["k_ssb"] % 2 == 1 and 1 <= p1.traffic["k_ssb"] <= 23
    ks = {draw_params(odd, np.random.default_rng(s), force_clean=True).traffic["k_ssb"] for s in range(40)}
    assert ks <= set(range(1, 24, 2)) and len(ks) >= 8
    fifteen = dataclasses.replace(odd, scs_khz=(15,), sample_rates_hz=(15.36e6,))
    assert "k_ssb" not in draw_params(fifteen, np.random.default_rng(5), force_clean=True).traffic
    null_db = []
    for k in (None, 1, 23):
        p = dataclasses.replace(p1, traffic={**p1.traffic, "k_ssb": k} if k else p0.traffic)
        m = _measure(simulate_capture(p, np.random.default_rng(4)))
        null_db.append(10 * np.log10(np.mean([jn / sig for _, sig, jn in m])))
    assert null_db[0] < -35.0  # the noise (40 dB SNR): the traffic on the SSB's grid stays out
    # the traffic 1.5 subcarriers below (k_SSB = 1) or above (23) the SSB's edge leaks in
    assert null_db[1] > -28.0 and null_db[2] > -28.0  # (-23.0, -24.0; on the grid -40.0)
    with pytest.raises(ConfigError, match=r"traffic\.kssb_odd_probability"):
        from_dict(SimConfig, {"traffic": {"kssb_odd_probability": 2.0}})


def test_a_receivers_analog_filter_leaves_the_band_edges_to_the_adcs_noise_and_the_truth_counts_it():
    """analog_filter at 0.6 x Nyquist, the ADC's noise 20 dB under the receiver's:
    beyond the skirt (0.9-0.97 x Nyquist) the spectrum drops, against the same
    capture without the filter, to the filter's response plus the ADC's noise. The
    truth's SNR counts the ADC's noise (6 dB under) and the filter's gain on the
    SSB, as the SSB's own REs measure it. Off, nothing is drawn."""
    from scipy.signal import butter, sosfreqz, welch

    from signals.simulate import ImpairmentConfig

    base = _cfg(sample_rates_hz=(30.72e6,), datatypes=("cf32_le",), centre_ssb_fraction=1.0)
    off = dataclasses.replace(base, impairments=ImpairmentConfig(probability=0.0, analog_filter_probability=1.0))
    assert draw_params(base, np.random.default_rng(4)) == draw_params(off, np.random.default_rng(4))
    imp = ImpairmentConfig(probability=1.0, evm_db=(-80.0, -80.0), phase_noise_linewidth_hz=(0.0, 0.0),
                           iq_image_probability=0.0, analog_filter_probability=1.0,
                           analog_filter_cutoff=(0.6, 0.6), analog_filter_adc_db=(-20.0, -6.0))
    on = dataclasses.replace(base, snr_db=(25.0, 25.0), multipath=dataclasses.replace(base.multipath, probability=0.0),
                             traffic=dataclasses.replace(base.traffic, probability=0.0),
                             neighbour=dataclasses.replace(base.neighbour, probability=0.0),
                             jamming=dataclasses.replace(base.jamming, clean_fraction=1.0), impairments=imp)
    p = draw_params(on, np.random.default_rng(9), force_clean=True)
    af = p.impairments["analog_filter"]
    assert af["cutoff"] == 0.6 and -20.0 <= af["adc_db"] <= -6.0
    p.cfo_hz, p.timing_offset_samples = 0.0, 0.0  # (the measurement below knows no CFO)
    fs = p.sample_rate_hz
    edge, snr_truth, snr_meas = [], [], []
    for filt in ({"cutoff": 0.6, "adc_db": -20.0}, None, {"cutoff": 0.6, "adc_db": -6.0}):
        q = dataclasses.replace(p, impairments=dict(p.impairments, analog_filter=filt))
        cap = simulate_capture(q, np.random.default_rng(10))
        f, psd = welch(cap.iq.astype(np.complex128), fs=fs, nperseg=1024, return_onesided=False)
        band = (np.abs(f) > 0.9 * fs / 2) & (np.abs(f) < 0.97 * fs / 2)
        edge.append(float(np.mean(psd[band])))
        snr_truth.append(float(np.median([s.snr_db for s in cap.ssbs])))
        snr_meas.append(float(np.median([10 * np.log10(sig / jn) for _, sig, jn in _measure(cap)])))
    # the receiver's noise through the filter (a digital Butterworth: ~-26 dB there) and the ADC's 20 dB down
    sos = butter(5, 0.6, output="sos")
    _, h = sosfreqz(sos, worN=f[band], fs=fs)
    want_db = 10 * np.log10(np.mean(np.abs(h) ** 2) + 10 ** (-20.0 / 10))
    assert want_db < -18.0
    assert abs(10 * np.log10(edge[0] / edge[1]) - want_db) < 1.0
    # the ADC's noise 6 dB under the receiver's: ~1 dB off the SNR, in the truth as on the SSB's REs
    assert snr_truth[2] < snr_truth[1] - 0.7
    assert np.allclose(snr_meas, snr_truth, atol=0.5), (snr_meas, snr_truth)


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "configs").glob("sim*.yaml")))
def test_every_shipped_sim_config_loads_and_draws(name):
    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / name, SimConfig)
    rng = np.random.default_rng(0)
    ps = [draw_params(cfg, rng) for _ in range(200)]
    assert all(p.sample_rate_hz in cfg.sample_rates_hz for p in ps)
    if name == "sim-train-field.yaml":
        # the conditions it exists for: unsynchronised neighbours (beyond the CP) with traffic of their own,
        # traffic off the SSB's grid, and each impairment the shipped model's training mix lacks
        unsync = [nb for p in ps for nb in ([p.neighbour] if p.neighbour else []) + list(p.more_neighbours or ())
                  if abs(nb["offset_samples"]) > p.numerology.cp_short]
        assert len(unsync) > 50 and sum(nb.get("traffic") is not None for nb in unsync) > 30
        assert sum((p.traffic or {}).get("k_ssb") is not None for p in ps) > 10
        for k in ("tx_floor_db", "dc_offset_db", "analog_filter"):
            assert sum((p.impairments or {}).get(k) is not None for p in ps) > 5, k


@pytest.mark.parametrize("offset_cp,traffic", [(0.3, False), (30.0, False), (100.0, False), (100.0, True)])
def test_a_neighbour_is_sent_at_its_power_wherever_its_timing(offset_cp, traffic):
    """The neighbour's SSS, read at its own timing, stands power_db (-6 dB) under the
    serving cell's, co-timed or symbols away, with or without traffic of its own (before
    stop 45 one without traffic beyond the CP was measured in the serving cell's windows
    and sent up to ~10 dB louder)."""
    cfg = _cfg(snr_db=(40.0, 40.0), datatypes=("cf32_le",), multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
               traffic=dataclasses.replace(SimConfig().traffic, probability=0.0),
               neighbour=dataclasses.replace(SimConfig().neighbour, probability=1.0, power_db=(-6.0, -6.0),
                                             offset_cp=(offset_cp, offset_cp), cfo_hz=(0.0, 0.0),
                                             traffic_probability=1.0 if traffic else 0.0, traffic_load=(0.5, 0.5)),
               jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    rng = np.random.default_rng(3)
    p = draw_params(cfg, rng, force_clean=True)
    p.cfo_hz, p.timing_offset_samples = 0.0, 0.0
    cap = simulate_capture(p, rng)
    num = p.numerology
    bins = nr.subcarrier_bins(num, p.ssb_offset_hz)
    sym = num.cp_short + num.fft_size

    def sss(start, pci):  # the SSS matched to its sequence (flat channel): that cell's power per RE
        starts = int(round(start)) + np.arange(4) * sym
        if starts[0] < 0 or starts[-1] + sym > cap.iq.size:
            return None
        y = nr.ofdm_demodulate(cap.iq, starts, np.full(4, num.cp_short), num.fft_size, cp_fraction=0.5)[:, bins]
        return abs(np.vdot(nr.sss(pci), y[2, 56:183])) ** 2 / 127.0**2

    ratios = []
    for s in cap.ssbs:
        a, b = sss(s.sample_start, p.pci), sss(s.sample_start + p.neighbour["offset_samples"], p.neighbour["pci"])
        if a is not None and b is not None:
            ratios.append(10 * np.log10(b / a))
    assert len(ratios) >= 3
    assert abs(np.median(ratios) - (-6.0)) < 1.0, ratios


def test_a_spoofer_off_the_cells_timing():
    """JammingConfig.spoofer_offtime_probability: off by default, nothing drawn for it
    (the same captures as before it existed); on, the spoofer's fake PSS is sent
    offset_cp normal CPs off the real SSBs, where the receiver's search for a mistimed
    cell's PSS (pipeline.mistimed_readings) finds it, and not in time with them."""
    from detector.pipeline import mistimed_readings
    from detector.receiver import Receiver

    base = SimConfig(sample_rates_hz=(30.72e6,), scs_khz=(30,), l_max=(8,), period_ms=(5.0,), duration_ms=20.0,
                     all_ssbs_fraction=1.0, snr_db=(35.0, 35.0), datatypes=("cf32_le",),
                     multipath=dataclasses.replace(SimConfig().multipath, probability=0.0),
                     impairments=dataclasses.replace(SimConfig().impairments, probability=0.0),
                     jamming=dataclasses.replace(SimConfig().jamming, sjnr_db=(5.0, 5.0), low_fraction=0.0,
                                                 low_sjnr_below_db=5.0))
    p0 = draw_params(base, np.random.default_rng(3), force_clean=False, jammer_type="spoofer")
    assert "offset_cp" not in p0.jammer
    on = dataclasses.replace(base, jamming=dataclasses.replace(base.jamming, spoofer_offtime_probability=1.0,
                                                                spoofer_offset_cp=(1.5, 1.5)))
    p1 = draw_params(on, np.random.default_rng(3), force_clean=False, jammer_type="spoofer")
    assert abs(p1.jammer["offset_cp"]) == 1.5
    assert dataclasses.replace(p1, jammer=dict(p0.jammer)) == p0  # (the draws before it unchanged)
    with pytest.raises(ConfigError, match="spoofer_offtime_probability"):
        from_dict(SimConfig, {"jamming": {"spoofer_offtime_probability": 1.5}})

    def readings(p):
        p = dataclasses.replace(p, jammer={**p.jammer, "mode": "pss"}, neighbour=None)
        cap = simulate_capture(p, np.random.default_rng(4))
        rx = Receiver(p.sample_rate_hz, p.center_freq_hz)
        obs = [o for o in rx.push(cap.iq) + rx.flush() if o.pci == p.pci]
        assert len(obs) >= 8
        return [max(mistimed_readings(o)) for o in obs]

    assert max(readings(p0)) < 0.2 < min(readings(p1))
