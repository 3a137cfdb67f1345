"""Edge inference (detector.model): checks, cascade rule, no torch, shipped model."""
import dataclasses
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from detector import model as edge
from detector.classical import SITE_FALLBACK_CONFIG, ClassicalDetector
from detector.cli import main
from detector.features import FEATURE_NAMES, N_FEATURES
from detector.model import DTDDNNDetector, ModelError, cascade

onnx = pytest.importorskip("onnx")


def _meta(**kw):
    m = {"model_format": edge.MODEL_FORMAT, "feature_version": edge.FEATURE_VERSION,
         "feature_names_sha256": edge.feature_names_sha256(), "threshold_low": "0.2",
         "threshold_high": "0.8", "threshold_stage2": "0.5"}
    m.update(kw)
    return m


def _passthrough_model(path, n_in=N_FEATURES, cols=(0, 1), a1_col=None, **meta):
    """Hand-made graph: p1 = features[0, 0], p2 = features[0, 1] (the cascade under test, not a network);
    ``n_in`` inputs, p1 and p2 read from input columns ``cols``; ``a1_col``: a third output a1
    (a context model's DNN-1 logit) read from that column."""
    from onnx import TensorProto, helper

    from training.train import finalize_onnx

    c = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [1], [v])  # noqa: E731
    nodes = [helper.make_node("Slice", ["features", "s0", "e0", "ax"], ["p1"]),
             helper.make_node("Slice", ["features", "s1", "e1", "ax"], ["p2"])]
    outs = [helper.make_tensor_value_info("p1", TensorProto.FLOAT, [1, 1]),
            helper.make_tensor_value_info("p2", TensorProto.FLOAT, [1, 1])]
    consts = [c("s0", cols[0]), c("e0", cols[0] + 1), c("s1", cols[1]), c("e1", cols[1] + 1), c("ax", 1)]
    if a1_col is not None:
        nodes.append(helper.make_node("Slice", ["features", "s2", "e2", "ax"], ["a1"]))
        outs.append(helper.make_tensor_value_info("a1", TensorProto.FLOAT, [1, 1]))
        consts += [c("s2", a1_col), c("e2", a1_col + 1)]
    g = helper.make_graph(nodes, "passthrough",
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, n_in])], outs, consts)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    finalize_onnx(path, _meta(**meta))
    return path


def _feats(p1, p2, calibrated=1.0):
    """The pass-through model reads p1, p2 from features 0 and 1 (feature 0 is
    also snr_est_db: calibrated = 1 keeps the uncalibrated SNR floor out)."""
    f = np.zeros(N_FEATURES, np.float32)
    f[0], f[1] = p1, p2
    f[FEATURE_NAMES.index("calibrated")] = calibrated
    return f


def test_cascade_rule_on_a_hand_made_model(tmp_path):
    det = DTDDNNDetector(_passthrough_model(tmp_path / "m.onnx"))
    cases = [  # (p1, p2) -> (jammed, stage)
        ((0.95, 0.0), (True, 1)),  # above tau_high: jammed at stage 1 whatever DNN-2 says
        ((0.81, 0.0), (True, 1)),
        ((0.05, 1.0), (False, 1)),  # below tau_low: clean at stage 1
        ((0.19, 1.0), (False, 1)),
        ((0.5, 0.9), (True, 2)),  # in between: DNN-2 decides
        ((0.5, 0.1), (False, 2)),
    ]
    for (p1, p2), (jam, stage) in cases:
        j, s, mode = det.score(_feats(p1, p2), None)
        assert (j, det.last_stage) == (jam, stage), (p1, p2)
        assert (s >= 0.5) == j and 0.0 <= s <= 1.0
        assert mode == "uncalibrated"
    # uncalibrated, a weak cell (snr_est_db 0.05 dB) is what the model says it is: no SNR floor
    j, s, _ = det.score(_feats(0.05, 1.0, calibrated=0.0), None)
    assert not j and det.last_stage == 1
    # score is monotone in p1 at stage 1 and in p2 at stage 2
    assert cascade(0.9, 0, 0.2, 0.8)[1] < cascade(0.99, 0, 0.2, 0.8)[1]
    assert cascade(0.5, 0.6, 0.2, 0.8)[1] < cascade(0.5, 0.7, 0.2, 0.8)[1]
    j, s, st = edge.cascade_arrays(np.array([0.95, 0.1, 0.5, 0.5]), np.array([0, 1, 0.9, 0.1]), 0.2, 0.8, 0.5)
    assert j.tolist() == [True, False, True, False] and st.tolist() == [1, 1, 2, 2]


def test_a_site_whose_clean_ssbs_the_model_scores_high_gets_its_own_thresholds(tmp_path):
    """Calibration keeps how the model scores the site's clean SSBs (logits, under
    the model's weights hash); where they reach its thresholds, that site's are set
    CLEAN_SCORE_MARGIN over them (at most CLEAN_SCORE_MAX_RAISE over the model's);
    elsewhere, uncalibrated and under another model nothing changes."""
    from detector.baseline import SiteBaseline, build_config_baseline

    det = DTDDNNDetector(_passthrough_model(tmp_path / "m.onnx"))  # low 0.2, high 0.8, stage 2 0.5
    feats = np.random.default_rng(0).standard_normal((5, N_FEATURES)).astype(np.float32)
    cb = build_config_baseline(30, 15.36e6, "ci16_le", feats, np.zeros(5), [7])
    assert det.score(_feats(0.5, 0.7), cb)[0] and det.thresholds_at(cb) == (0.2, 0.8, 0.5)
    cb.clean_scores[det.weights_sha256] = [edge.logit(0.3), edge.logit(0.8), 40]
    lo, hi, t2 = det.thresholds_at(cb)
    assert (lo, hi) == (0.2, 0.8)  # the site's clean p1 stays under 0.8: the model's
    assert t2 == pytest.approx(edge.sigmoid(edge.logit(0.8) + edge.CLEAN_SCORE_MARGIN))
    assert not det.score(_feats(0.5, 0.7), cb)[0] and det.score(_feats(0.5, 0.95), cb)[0]
    assert det.score(_feats(0.85, 0.0), cb)[0] and det.last_stage == 1
    assert det.score(_feats(0.5, 0.7), None)[0]  # uncalibrated: the model's own
    assert det.score(_feats(0.5, 0.7), cb.for_index(3))[0] is False  # (an SSB index's view: the same site)
    # raised as far as CLEAN_SCORE_MAX_RAISE reaches: still the model, at the raised thresholds
    z2 = edge.CLEAN_SCORE_MAX_RAISE - edge.CLEAN_SCORE_MARGIN - 0.01  # (the model's stage 2 is at logit 0)
    cb.clean_scores[det.weights_sha256] = [edge.logit(0.3), z2, 40]
    assert not det.site_falls_back(cb) and det.thresholds_at(cb)[2] == pytest.approx(edge.sigmoid(z2 + 0.5))
    assert det.score(_feats(0.5, 0.99), cb)[0] and det.last_name == "dt-ddnn" and det.last_stage == 2
    # a site whose clean SSBs score as high as can be: out of the thresholds' reach, scored by the
    # classical detector against the same baseline (the thresholds a raise would give still reported)
    cb.clean_scores[det.weights_sha256] = [30.0, 30.0, 40]
    lo, hi, t2 = det.thresholds_at(cb)
    assert hi == pytest.approx(edge.sigmoid(edge.logit(0.8) + edge.CLEAN_SCORE_MAX_RAISE))
    assert t2 == pytest.approx(edge.sigmoid(edge.CLEAN_SCORE_MAX_RAISE)) and det.site_falls_back(cb)
    classical = ClassicalDetector(SITE_FALLBACK_CONFIG)  # (the profile peak tested too)
    rise = FEATURE_NAMES.index("epnre_rel_db")
    for f in (_feats(0.99, 0.99), _feats(0.0, 0.0)):
        for level in (cb.stats["epnre_rel_db"].median, cb.stats["epnre_rel_db"].median + 20.0):
            f[rise] = level
            assert det.score(f, cb) == classical.score(f, cb) and det.last_name == "classical"
    assert det.score(_feats(0.99, 0.99), None)[0] and det.last_name == "dt-ddnn"  # uncalibrated: the model
    assert det.score(_feats(0.99, 0.99), cb.for_index(3)) == classical.score(_feats(0.99, 0.99), cb)
    # the scores of another model are not this one's; kept through the baseline file
    other = dataclasses.replace(cb, clean_scores={"0" * 64: [30.0, 30.0, 40]})
    assert det.thresholds_at(other) == (0.2, 0.8, 0.5) and det.score(_feats(0.5, 0.7), other)[0]
    path = tmp_path / "b.json"
    SiteBaseline({cb.key: cb}).save(path)
    assert SiteBaseline.load(path).lookup(30, 15.36e6, "ci16_le").clean_scores == cb.clean_scores
    d = json.loads(path.read_text())
    del d["configs"][0]["clean_scores"]  # a baseline from before: the model's thresholds
    path.write_text(json.dumps(d))
    old = SiteBaseline.load(path).lookup(30, 15.36e6, "ci16_le")
    assert old.clean_scores == {} and det.thresholds_at(old) == (0.2, 0.8, 0.5)


def test_the_fallback_classical_detector_also_tests_the_interference_profile_peak():
    """classical.SITE_FALLBACK_CONFIG: at a site scored by the classical detector in the
    model's place, a peak of the interference profile (a tone under a loud neighbour) far
    over the site's clean level is jammed, though its EPNRE and residual stand at the
    site's; the plain classical detector (the baseline of the evaluation report) does not
    test it, and a baseline without that statistic is tested as before."""
    import dataclasses as dc

    from detector.baseline import build_config_baseline

    feats = np.random.default_rng(1).standard_normal((40, N_FEATURES)).astype(np.float32)
    cb = build_config_baseline(30, 30.72e6, "ci16_le", feats, np.zeros(40), [7])
    f = np.zeros(N_FEATURES, np.float32)
    for n in ("epnre_rel_db", "res_all_rel_db", "profile_peak_db"):
        f[FEATURE_NAMES.index(n)] = cb.stats[n].median
    fallback, plain = ClassicalDetector(SITE_FALLBACK_CONFIG), ClassicalDetector()
    assert not fallback.score(f, cb)[0] and not plain.score(f, cb)[0]
    f[FEATURE_NAMES.index("profile_peak_db")] += 20.0
    assert fallback.score(f, cb)[0] and not plain.score(f, cb)[0]
    old = dc.replace(cb, stats={k: v for k, v in cb.stats.items() if k != "profile_peak_db"})
    assert not fallback.score(f, old)[0]


def test_calibrate_warns_when_the_model_calls_the_clean_site_jammed(tmp_path):
    """A model that scores the site's clean SSBs over its thresholds beyond what
    CLEAN_SCORE_MAX_RAISE lets them be raised (here the pass-through graph: p1 and
    p2 read snr_est_db and isr_db, out of 0..1) leaves the site to the classical
    detector, with a warning that says so and what to check; its records name it."""
    import io

    from detector.replay import calibrate
    from signals.simulate import SimConfig, draw_params, simulate_capture, write_capture

    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(7.68e6,), l_max=(4,), period_ms=(5.0,), duration_ms=20.0,
                    all_ssbs_fraction=1.0, snr_db=(25.0, 25.0), datatypes=("cf32_le",),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    p = draw_params(cfg, np.random.default_rng(3), force_clean=True)
    write_capture(simulate_capture(p, np.random.default_rng(4)), tmp_path / "clean")
    det = DTDDNNDetector(_passthrough_model(tmp_path / "m.onnx"))
    err = io.StringIO()
    base = calibrate([str(tmp_path / "clean.sigmf-meta")], detector=det, err=err)
    (cb,) = base.configs.values()
    assert det.site_falls_back(cb) and cb.clean_scores[det.weights_sha256][2] == cb.n_ssb
    assert "classical detector" in err.getvalue() and "not clean" in err.getvalue()
    # the site scored: the classical detector's verdicts against the baseline (the model's: all jammed)
    from detector.pipeline import ScoringPipeline
    from signals import iq as iqio

    with iqio.open_iq(tmp_path / "clean.sigmf-meta") as r:
        x = r.read_all()
    for base_or_none, name, jammed in ((base, "classical", 0), (None, "dt-ddnn", None)):
        pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, "cf32_le", baseline=base_or_none, detector=det)
        recs = [r for r in pipe.push(x) + pipe.flush() if r["valid"]]
        assert len(recs) >= 10 and {r["detector"] for r in recs} == {name}
        assert pipe.stats["site_classical"] == (len(recs) if base_or_none else 0)
        if jammed is not None:
            assert sum(r["jammed"] for r in recs) == jammed


def test_corrupted_model_is_refused_by_name(tmp_path):
    p = _passthrough_model(tmp_path / "good.onnx")
    m = onnx.load(str(p))
    m.graph.initializer[0].raw_data = np.array([1], np.int64).tobytes()  # one weight changed, checksum kept
    bad = tmp_path / "tampered.onnx"
    bad.write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match=r"tampered\.onnx.*checksum"):
        DTDDNNDetector(bad)
    trunc = tmp_path / "truncated.onnx"
    trunc.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(ModelError, match=r"truncated\.onnx"):
        DTDDNNDetector(trunc)
    with pytest.raises(ModelError, match=r"missing\.onnx"):
        DTDDNNDetector(tmp_path / "missing.onnx")


def test_wrong_feature_version_is_refused_by_name(tmp_path):
    p = _passthrough_model(tmp_path / "old.onnx", feature_version="ssbwatch-features-0")
    with pytest.raises(ModelError, match=r"old\.onnx.*ssbwatch-features-0"):
        DTDDNNDetector(p)
    p = _passthrough_model(tmp_path / "names.onnx", feature_names_sha256="0" * 64)
    with pytest.raises(ModelError, match=r"names\.onnx.*feature list"):
        DTDDNNDetector(p)


def test_a_model_of_feature_version_7_reads_its_own_columns(tmp_path):
    """A model trained before the band features (version 7: the vector without
    BAND_FEATURES) is fed the columns it was trained on, by name; one whose input
    width is not its version's is refused."""
    from detector.features import BAND_FEATURES, FEATURE_VERSIONS, feature_names_of

    v7 = feature_names_of("ssbwatch-features-7")
    assert len(v7) == N_FEATURES - len(BAND_FEATURES) and not set(v7) & set(BAND_FEATURES)
    assert FEATURE_VERSIONS[edge.FEATURE_VERSION] == tuple(range(N_FEATURES))
    # p1 from "locked" and p2 from "calibrated", at their places in the version-7 vector
    cols = (v7.index("locked"), v7.index("calibrated"))
    assert cols != (FEATURE_NAMES.index("locked"), FEATURE_NAMES.index("calibrated"))  # (they moved)
    meta = dict(feature_version="ssbwatch-features-7", feature_names_sha256=edge.feature_names_sha256(v7))
    det = DTDDNNDetector(_passthrough_model(tmp_path / "v7.onnx", n_in=len(v7), cols=cols, **meta))
    assert det.n_inputs == len(v7) and det.info()["n_features"] == len(v7)
    f = np.full(N_FEATURES, 0.25, np.float32)
    f[FEATURE_NAMES.index("locked")], f[FEATURE_NAMES.index("calibrated")] = 0.6, 1.0
    assert det.probs(f) == (pytest.approx(0.6), pytest.approx(1.0))
    np.testing.assert_allclose(det.probs_many(np.stack([f, f])), [[0.6, 1.0]] * 2, rtol=1e-6)
    with pytest.raises(ModelError, match=r"wide\.onnx.*input must be"):
        DTDDNNDetector(_passthrough_model(tmp_path / "wide.onnx", **meta))


def test_context_is_the_mean_of_the_readings_before_of_the_same_stream():
    """DNN-2's stream context (model.context_vector / context_rows): the mean of the last
    k readings of the same stream before the SSB (zeros where there are none), then the
    history's fill (n / k); streams interleaved keep their own histories."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 1)).astype(np.float32)
    stream = np.array([7, 7, 3, 7, 7, 3, 7, 3, 3])
    c = edge.context_rows(a, stream, 2)
    assert c.shape == (9, 2) and c.dtype == np.float32
    np.testing.assert_array_equal(c[0], [0, 0])  # nothing before it
    np.testing.assert_array_equal(c[2], [0, 0])  # the first of stream 3
    np.testing.assert_allclose(c[1, 0], a[0, 0], rtol=1e-6)
    np.testing.assert_allclose(c[4, 0], (a[1, 0] + a[3, 0]) / 2, rtol=1e-6)  # the last 2 of stream 7 (not a[0])
    np.testing.assert_allclose(c[8, 0], (a[5, 0] + a[7, 0]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(c[:, 1], [0, 0.5, 0, 1, 1, 0.5, 1, 1, 1])
    # one SSB at a time from its history, as the pipeline builds it: the same values
    np.testing.assert_array_equal(edge.context_vector(a[[1, 3]].astype(np.float64), 2), c[4])


def test_the_pipeline_gives_dnn2_the_context_training_builds(tmp_path):
    """A model with DNN-2's stream context (metadata context_ssbs; outputs p1, p2 and DNN-1's
    logit a1) is handed, for each SSB the pipeline scores, the context that training builds
    from the a1 of the SSBs before it (model.context_rows) and that evaluation and calibration
    run (DTDDNNDetector.probs_stream): the one function, whatever the push sizes."""
    from detector.pipeline import ScoringPipeline
    from signals.simulate import SimConfig, draw_params, simulate_capture

    k, n = 3, N_FEATURES
    a1_col = FEATURE_NAMES.index("isr_db")
    # p1 = feature 0, p2 = the context's fill (the input's last column), a1 = the SSB's isr_db
    det = DTDDNNDetector(_passthrough_model(tmp_path / "ctx.onnx", n_in=n + 2, cols=(0, n + 1), a1_col=a1_col,
                                            context_ssbs=str(k)))
    assert det.context_ssbs == k and det.n_inputs == n + 2 and det.info()["context_ssbs"] == k
    f = _feats(0.5, 0.0)
    assert det.probs(f) == (pytest.approx(0.5), 0.0)  # (no history: fill 0)
    assert det.probs(f, np.float32([0.3, 2 / 3])) == (pytest.approx(0.5), pytest.approx(2 / 3))

    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(7.68e6,), l_max=(4,), period_ms=(5.0,), duration_ms=30.0,
                    all_ssbs_fraction=1.0, snr_db=(25.0, 25.0), datatypes=("cf32_le",),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    p = draw_params(cfg, np.random.default_rng(3), force_clean=True)
    x = simulate_capture(p, np.random.default_rng(4)).iq
    seen = []
    score = det.score

    def spy(feats, base, context=None):
        seen.append((np.array(feats, np.float32), context))
        return score(feats, base, context)

    det.score = spy
    runs = []
    for cuts in ([x.size], [7001, 30011, 52000, x.size]):
        seen.clear()
        pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, "cf32_le", detector=det)
        recs = [r for a, b in zip([0] + cuts[:-1], cuts) for r in pipe.push(x[a:b])] + pipe.flush()
        valid = [r for r in recs if r["valid"]]
        assert len(valid) >= 20 and len(seen) == len(valid)
        feats = np.stack([f for f, _ in seen])
        pcis = np.array([r["pci"] for r in valid])
        want = edge.context_rows(feats[:, a1_col : a1_col + 1], pcis, k)
        np.testing.assert_array_equal(np.stack([c for _, c in seen]), want)
        np.testing.assert_array_equal(want[:4, 1], np.float32([0, 1 / 3, 2 / 3, 1]))
        assert np.ptp(want[3:, 0]) > 0  # (the history moves with the SSBs' readings)
        # evaluation's and calibration's path: the same p2 (the context's fill) for each SSB
        np.testing.assert_allclose(det.probs_stream(feats, pcis)[:, 1], want[:, 1], rtol=1e-6)
        runs.append([(r["sample"], r["score"]) for r in recs])
    assert runs[0] == runs[1]


def test_a_bad_context_model_is_refused_by_name(tmp_path):
    for bad in ("x", "-1", "65"):
        with pytest.raises(ModelError, match=r"c\.onnx.*context_ssbs"):
            DTDDNNDetector(_passthrough_model(tmp_path / "c.onnx", n_in=N_FEATURES + 2, a1_col=2, context_ssbs=bad))
    # a context model's input is the features and the context, its outputs p1, p2 and a1
    with pytest.raises(ModelError, match="input must be"):
        DTDDNNDetector(_passthrough_model(tmp_path / "c.onnx", a1_col=2, context_ssbs="4"))
    with pytest.raises(ModelError, match="outputs must be p1, p2, a1"):
        DTDDNNDetector(_passthrough_model(tmp_path / "c.onnx", n_in=N_FEATURES + 2, context_ssbs="4"))


def test_external_data_is_refused(tmp_path):
    p = _passthrough_model(tmp_path / "m.onnx")
    m = onnx.load(str(p))
    t = m.graph.initializer[0]
    t.data_location = onnx.TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"
    q = tmp_path / "ext.onnx"
    q.write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match="external data"):
        DTDDNNDetector(q)


def test_cli_names_a_bad_model(tmp_path, capsys):
    assert main(["info", "--model", str(tmp_path / "nope.onnx")]) == 2
    assert "nope.onnx" in capsys.readouterr().err


def test_edge_path_imports_no_torch():
    code = ("import sys, numpy as np\n"
            "import detector.model, detector.pipeline, detector.cli\n"
            "from detector.features import N_FEATURES\n"
            "d = detector.model.DTDDNNDetector()\n"
            "j, s, m = d.score(np.zeros(N_FEATURES, np.float32), None)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert 'onnx' not in sys.modules, 'onnx imported'\n"
            "print('ok', d.last_stage)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


def test_shipped_model_is_valid_and_described(capsys):
    det = DTDDNNDetector()
    assert det.path == edge.DEFAULT_MODEL_PATH
    assert 0.0 <= det.t_low <= det.t_high <= 1.0
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for k in ("path", "threshold_low", "threshold_high", "feature_version", "metrics"):
        assert info[k] is not None, k
    assert info["feature_version"] in edge.FEATURE_VERSIONS


def test_replay_model_selection(tmp_path):
    """The shipped DT-DDNN by default (and with --model default), the energy
    detector with --model classical."""
    from signals.simulate import SimConfig, draw_params, simulate_capture, write_capture

    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(7.68e6,), l_max=(4,), period_ms=(10.0,), duration_ms=20.0,
                    all_ssbs_fraction=1.0, snr_db=(25.0, 25.0))
    p = draw_params(cfg, np.random.default_rng(4), force_clean=True)
    write_capture(simulate_capture(dataclasses.replace(p), np.random.default_rng(5)), tmp_path / "c")
    out = tmp_path / "r.jsonl"
    assert main(["replay", str(tmp_path / "c.sigmf-meta"), "--jsonl", str(out), "--model", "default"]) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert recs and all(r["detector"] == "dt-ddnn" and r["stage"] in (1, 2) for r in recs)
    assert main(["replay", str(tmp_path / "c.sigmf-meta"), "--jsonl", str(out)]) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert recs and all(r["detector"] == "dt-ddnn" for r in recs)
    assert not any(r["jammed"] for r in recs)  # a clean 25 dB cell
    assert main(["replay", str(tmp_path / "c.sigmf-meta"), "--jsonl", str(out), "--model", "classical"]) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert recs and all(r["detector"] == "classical" for r in recs)


REAL = Path(__file__).resolve().parents[2] / "shared" / "real-captures"
REAL_PCI = {"srsran-n3-pci1": 1, "amarisoft-n78-pci500": 500, "oai-n78-pci1": 1, "cyberx-n78-pci1": 1}


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-captures not present")
@pytest.mark.parametrize("name", sorted(REAL_PCI))
def test_shipped_model_calls_real_cells_clean(name, tmp_path):
    """Over-the-air captures of clean cells: the default replay (shipped
    DT-DDNN, no baseline) finds the cell and calls no SSB jammed."""
    out = tmp_path / "r.jsonl"
    assert main(["replay", str(REAL / f"{name}.sigmf-meta"), "--jsonl", str(out)]) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert recs and all(r["pci"] == REAL_PCI[name] and r["detector"] == "dt-ddnn" for r in recs)
    assert not any(r["jammed"] for r in recs)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-captures not present")
@pytest.mark.parametrize("name", sorted(REAL_PCI))
def test_a_real_cell_calibrated_then_heard_over_a_higher_noise_floor_stays_clean(name, tmp_path):
    """Calibrate on a real capture, then replay it with white noise added that
    raises its null-RE floor by 2.5 dB (another receiver, gain stage or day):
    the shipped model calls it clean (the model trained without moved floors
    flagged the Amarisoft and OAI cells at +2 dB)."""
    from detector import dsp
    from detector.pipeline import ScoringPipeline, epnre_abs_db
    from signals import iq as iqio

    base = tmp_path / "b.json"
    assert main(["calibrate", str(REAL / f"{name}.sigmf-meta"), "--min-ssbs", "1", "-o", str(base)]) == 0
    with iqio.open_iq(REAL / f"{name}.sigmf-meta") as r:
        m, x = r.meta, r.read_all()
    pipe = ScoringPipeline(m.sample_rate_hz, m.center_freq_hz, m.datatype)
    o = (pipe.receiver.push(x) + pipe.receiver.flush())[0]
    # the floor per sample at the capture rate: per RE of the SSB grid, over the
    # share of the band that the extraction to the SSB rate keeps
    floor = 10 ** (epnre_abs_db(o.grid) / 10) * m.sample_rate_hz / dsp.ssb_rate_hz(o.scs_khz)
    rng = np.random.default_rng(1)
    add = floor * (10 ** 0.25 - 1)
    y = (x + (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) * np.sqrt(add / 2)).astype(np.complex64)
    iqio.write_sigmf(tmp_path / "up", y, m.sample_rate_hz, datatype="cf32_le", center_freq_hz=m.center_freq_hz)
    out = tmp_path / "r.jsonl"
    assert main(["replay", str(tmp_path / "up.sigmf-meta"), "--baseline", str(base), "--jsonl", str(out)]) == 0
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert recs and all(r["pci"] == REAL_PCI[name] and r["mode"] == "calibrated" for r in recs)
    assert not any(r["jammed"] for r in recs), [r["score"] for r in recs]


def test_calibrated_site_tolerates_another_gain(tmp_path):
    """Calibrate on a clean 8-bit recording, replay another clean recording of
    the same site at a receiver gain 16 dB lower (cf32 at 30 dB less): the
    shipped model raises no false alarm (without removing the quantisation
    floor, the 8-bit one does)."""
    from signals.simulate import SimConfig, draw_params, simulate_capture, write_capture

    for dt, lv in (("ci8", (8.0, 24.0)), ("cf32_le", (0.0, -30.0))):
        cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(15.36e6,), l_max=(8,), period_ms=(5.0,), duration_ms=20.0,
                        all_ssbs_fraction=1.0, snr_db=(30.0, 30.0), datatypes=(dt,),
                        neighbour=dataclasses.replace(SimConfig().neighbour, probability=0.0))
        p = draw_params(cfg, np.random.default_rng(8), force_clean=True)
        write_capture(simulate_capture(dataclasses.replace(p, level_db=lv[0]), np.random.default_rng(1)),
                      tmp_path / f"cal-{dt}")
        # the same channel realisation: only the receiver gain (and so the quantisation floor) differs
        write_capture(simulate_capture(dataclasses.replace(p, level_db=lv[1]), np.random.default_rng(1)),
                      tmp_path / f"run-{dt}")
        base = tmp_path / f"b-{dt}.json"
        assert main(["calibrate", str(tmp_path / f"cal-{dt}.sigmf-meta"), "-o", str(base)]) == 0
        out = tmp_path / f"r-{dt}.jsonl"
        assert main(["replay", str(tmp_path / f"run-{dt}.sigmf-meta"), "--baseline", str(base),
                     "--jsonl", str(out)]) == 0
        recs = [json.loads(l) for l in out.read_text().splitlines()]
        assert len(recs) >= 20 and all(r["mode"] == "calibrated" for r in recs), dt
        assert not any(r["jammed"] for r in recs), (dt, [r["score"] for r in recs])


def test_calibrated_site_tolerates_a_moved_noise_floor(tmp_path):
    """Calibrate on a clean recording, replay clean recordings of the same site
    whose noise floor sits 2.5 dB higher and 2.5 dB lower relative to the cell
    (another receiver gain stage, AGC, another day): the shipped model raises
    at most a stray false alarm (the model shipped before stop 15 none, this one 1 of the
    ~30 SSBs 2.5 dB up; trained with companions up to 3 dB off; a model trained on
    companions at the capture's own SNR flagged most SSBs 2 dB up). A barrage
    jammer that raises the floor by 10 dB is still called jammed."""
    from signals.simulate import SimConfig, draw_params, simulate_capture, write_capture

    cfg = SimConfig(scs_khz=(30,), sample_rates_hz=(15.36e6,), l_max=(8,), period_ms=(5.0,), duration_ms=20.0,
                    all_ssbs_fraction=1.0, snr_db=(17.0, 17.0), datatypes=("ci16_le",),
                    neighbour=dataclasses.replace(SimConfig().neighbour, probability=0.0))
    p = draw_params(cfg, np.random.default_rng(5), force_clean=True)
    write_capture(simulate_capture(p, np.random.default_rng(1)), tmp_path / "cal")
    base = tmp_path / "b.json"
    assert main(["calibrate", str(tmp_path / "cal.sigmf-meta"), "-o", str(base)]) == 0
    runs = {"up": dataclasses.replace(p, snr_db=p.snr_db - 2.5), "down": dataclasses.replace(p, snr_db=p.snr_db + 2.5)}
    runs["jammed"] = dataclasses.replace(p, jammer={"type": "barrage", "sjnr_db": 7.0})
    for name, q in runs.items():
        write_capture(simulate_capture(q, np.random.default_rng(2)), tmp_path / name)
        out = tmp_path / f"{name}.jsonl"
        assert main(["replay", str(tmp_path / f"{name}.sigmf-meta"), "--baseline", str(base), "--jsonl", str(out)]) == 0
        recs = [json.loads(l) for l in out.read_text().splitlines()]
        assert len(recs) >= 20 and all(r["mode"] == "calibrated" and r["pci"] == p.pci for r in recs), name
        flagged = sum(bool(r["jammed"]) for r in recs)
        if name == "jammed":
            assert flagged >= 0.9 * len(recs), (name, [r["score"] for r in recs])
        else:  # 2.5 dB is near the edge of the tolerance: one stray SSB (per 40) at most
            assert flagged <= max(1, len(recs) // 40), (name, len(recs), [r["score"] for r in recs])
