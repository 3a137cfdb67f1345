"""Simulator: ground truth is what a receiver measures; CLI output contract."""
import dataclasses
import json

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
    from pathlib import Path

    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "sim.yaml", SimConfig)
    assert cfg == SimConfig()


def test_demo_config_gives_calibratable_jammed_sites():
    """configs/demo.yaml (the README's first command): every capture jammed, each
    with a clean companion holding enough SSBs for ssbwatch calibrate (>= 10)."""
    from pathlib import Path

    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml", SimConfig)
    assert cfg.calibration_captures == 1 and cfg.jamming.clean_fraction == 0.0
    # 40 ms at a 5 ms period with every SSB of L_max >= 4 sent: >= 32 SSBs per capture
    assert cfg.duration_ms / max(cfg.period_ms) * min(cfg.l_max) >= 10 and cfg.all_ssbs_fraction == 1.0
