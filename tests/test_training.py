"""Training pipeline: dataset from simulate output, train -> ONNX, parity, evaluate."""
import json
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from detector import model as edge  # noqa: E402
from detector.cli import main  # noqa: E402
from detector.features import FEATURE_NAMES, N_FEATURES  # noqa: E402
from signals.config import ConfigError  # noqa: E402
from training import dataset as dsmod  # noqa: E402
from training import train as tr  # noqa: E402
from training.evaluate import auc  # noqa: E402

_CAL = FEATURE_NAMES.index("calibrated")

SIM = textwrap.dedent("""
    schema_version: 1
    n_captures: 8
    duration_ms: 10.0
    scs_khz: [30]
    sample_rates_hz: [7680000.0]
    l_max: [4]
    period_ms: [5.0]
    all_ssbs_fraction: 1.0
    snr_db: [20.0, 30.0]
    datatypes: [cf32_le, ci16_le]
    calibration_captures: 1
    multipath: {probability: 0.0}
    neighbour: {probability: 0.0}
    jamming:
      clean_fraction: 0.5
      types: [barrage, cw, spoofer]
      sjnr_db: [0.0, 20.0]
      low_sjnr_below_db: 5.0
      low_fraction: 0.2
""")

TINY = textwrap.dedent("""
    schema_version: 1
    seed: 3
    val_fraction: 0.3
    workers: 2
    stage2_stack: true
    stage2_context_ssbs: 2
    dnn1: {hidden: [16], epochs: 4, batch_size: 32}
    dnn2: {hidden: [16], epochs: 4, batch_size: 32}
    rawiq: {channels: [4, 8], kernel: 5, epochs: 1, batch_size: 32}
""")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    cfg = d / "sim.yaml"
    cfg.write_text(SIM)
    assert main(["simulate", "--config", str(cfg), "--out", str(d / "data"), "--seed", "11", "-q"]) == 0
    return d / "data"


@pytest.fixture(scope="module")
def trained(sim_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    cfg = d / "train.yaml"
    cfg.write_text(TINY)
    out = d / "models"
    assert main(["train", "--config", str(cfg), "--data", str(sim_dir), "--out", str(out), "--no-progress"]) == 0
    return out


def _blas_env(_):
    import os

    return {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def test_dataset_workers_get_one_blas_thread(monkeypatch):
    """The receiver processes the dataset spawns run one BLAS thread each (a user's
    explicit setting wins) and this process's environment is left as it was."""
    import multiprocessing as mp

    from detector.threads import BLAS_THREAD_VARS, one_blas_thread_children

    for v in BLAS_THREAD_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    with one_blas_thread_children(), mp.get_context("spawn").Pool(1) as pool:
        child = pool.map(_blas_env, [0])[0]
    assert child == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "3"}
    assert _blas_env(0) == {"OPENBLAS_NUM_THREADS": None, "OMP_NUM_THREADS": None, "MKL_NUM_THREADS": "3"}
    assert dsmod.one_blas_thread_children is one_blas_thread_children  # what build_dataset's pool runs under


def test_dataset_matches_truth_and_caches(sim_dir):
    ds = dsmod.build_dataset(sim_dir, workers=2, progress=False)
    info = ds.info
    man = json.loads((sim_dir / "manifest.json").read_text())
    n_truth = sum(c["n_ssb"] for c in man["captures"])
    assert info["n_truth_ssbs"] == n_truth
    assert info["n_ssbs"] + info["n_missed"] == n_truth  # every truth SSB is matched or counted missed
    assert len(ds) >= 0.8 * n_truth
    assert ds["x_uncal"].shape == (len(ds), N_FEATURES) and ds["iq"].shape == (len(ds), 2, 1096)
    # unit-RMS raw IQ
    rms = np.sqrt((ds["iq"] ** 2).sum(axis=1).mean(axis=1))
    assert np.allclose(rms, 1.0, atol=1e-3)
    # calibrated features where the companion gave a baseline, uncalibrated otherwise
    assert ds["has_cal"].mean() > 0.8
    assert np.all(ds["x_cal"][ds["has_cal"], _CAL] == 1.0)
    assert np.all(ds["x_uncal"][:, _CAL] == 0.0)
    # labels: jammed SSBs carry an SJNR and a type, clean ones neither
    y = ds["y"].astype(bool)
    assert y.any() and (~y).any()
    assert np.all(np.isfinite(ds["sjnr_db"][y])) and np.all(np.isnan(ds["sjnr_db"][~y]))
    assert np.all(ds["jammer"][~y] == "") and np.all(ds["jammer"][y] != "")
    assert info["seed"] == 11 and info["feature_version"] == edge.FEATURE_VERSION
    assert len(info["file_sha256"]) == 4 * len(man["captures"])  # meta + data, capture + companion
    # cached: the second call loads the same arrays; a changed manifest forces a rebuild
    again = dsmod.build_dataset(sim_dir, workers=1, progress=False)
    assert again.info["build_seconds"] == info["build_seconds"]
    assert np.array_equal(again["x_cal"], ds["x_cal"])
    assert dsmod._cache_ok(sim_dir, man) is not None
    m = sim_dir / "manifest.json"
    text = m.read_text()
    try:
        m.write_text(text + " ")
        assert dsmod._cache_ok(sim_dir, man) is None
    finally:
        m.write_text(text)
    # a capture file touched but the same: still cached; rewritten (a regenerated
    # calibration companion): rebuilt
    import os

    f = sim_dir / f"{man['captures'][0]['calibration'][0][: -len('.sigmf-meta')]}.sigmf-data"
    data = f.read_bytes()
    st = f.stat()
    try:
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert dsmod._cache_ok(sim_dir, man) is not None
        f.write_bytes(data[:8] + bytes(8) + data[16:])
        assert dsmod._cache_ok(sim_dir, man) is None
    finally:
        f.write_bytes(data)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dsmod._cache_ok(sim_dir, man) is not None


def test_train_end_to_end_exports_a_verified_model(trained):
    rec = json.loads((trained / "dtddnn.json").read_text())
    assert rec["parity_max_abs_diff"] <= 1e-5 and rec["rawiq_parity_max_abs_diff"] <= 1e-5
    th = rec["thresholds"]
    assert 0.0 <= th["low"] <= th["high"] <= 1.0 and 0.0 < th["stage2"] < 1.0
    det = edge.DTDDNNDetector(trained)  # a directory resolves to dtddnn.onnx
    assert det.t_low == pytest.approx(th["low"], abs=1e-6) and det.t_high == pytest.approx(th["high"], abs=1e-6)
    info = det.info()
    assert info["opset"] == tr.OPSET and info["feature_version"] == edge.FEATURE_VERSION
    assert info["training_data_sha256"] == rec["data"]["data_sha256"]
    assert "calibrated" in info["metrics"] and "uncalibrated" in info["metrics"]
    assert info["stage2_input"].startswith("features + DNN-1 logit")  # TINY stacks DNN-2 on DNN-1
    assert info["context_ssbs"] == 2 and "context" in info["stage2_input"]  # ... and gives it the stream's context
    jammed, score, mode = det.score(np.zeros(N_FEATURES, np.float32), None)
    assert 0.0 <= score <= 1.0 and mode == "uncalibrated" and det.last_stage in (1, 2)
    assert (trained / "rawiq.onnx").exists()


@pytest.mark.parametrize("stack, context", [(None, False), ((1.5, 4.0), False), ((1.5, 4.0), True)])
def test_onnx_parity_on_a_batch(tmp_path, stack, context):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mean = rng.normal(size=N_FEATURES)
    std = rng.uniform(0.5, 3.0, size=N_FEATURES)
    cfg = tr.MLPConfig(hidden=(32, 16), dropout=0.1)
    # a stacked DNN-2 also takes DNN-1's logit, one with context the context's mean logit and fill
    n2 = N_FEATURES + (stack is not None) + (2 if context else 0)
    n_in = N_FEATURES + 2 if context else N_FEATURES
    m = tr.make_export_module(mean, std, tr.make_mlp(N_FEATURES, cfg), tr.make_mlp(n2, cfg), stack,
                              context=context).eval()
    p = tmp_path / "dtddnn.onnx"
    tr._export(m, torch.zeros(1, n_in), p, "features", ["p1", "p2", "a1"] if context else ["p1", "p2"])
    tr.finalize_onnx(p, {"model_format": edge.MODEL_FORMAT, "feature_version": edge.FEATURE_VERSION,
                         "feature_names_sha256": edge.feature_names_sha256(), "threshold_low": "0.1",
                         "threshold_high": "0.9", "threshold_stage2": "0.5"})
    data, _ = edge.read_verified(p)
    sess = edge.make_session(data)
    x = (mean + std * rng.normal(size=(64, N_FEATURES))).astype(np.float32)
    if context:  # (a mean logit, a fill: half of them none)
        fill = rng.integers(0, 5, (64, 1)) / 4 * (rng.random((64, 1)) < 0.5)
        x = np.concatenate([x, rng.normal(scale=3.0, size=(64, 1)), fill], axis=1).astype(np.float32)
    diff = tr.parity(m, sess, x, "features")
    assert diff <= 1e-5
    with torch.no_grad():
        p1, p2 = (v.numpy() for v in m(torch.as_tensor(x))[:2])
        assert p1.std() > 1e-3  # the batch exercises the network, not a constant
        if stack is not None:
            # DNN-2 reads DNN-1's logit: another DNN-1 changes p2 on the same features
            m.dnn1[-1].bias += 3.0
            assert np.abs(m(torch.as_tensor(x))[1].numpy() - p2).max() > 1e-4
            m.dnn1[-1].bias -= 3.0
        if context:
            # DNN-2 reads the context, DNN-1 does not: another context moves p2 alone
            y = x.copy()
            y[:, N_FEATURES:] = y[::-1, N_FEATURES:]
            p1, p2, a1 = (v.numpy() for v in m(torch.as_tensor(x)))
            q1, q2, _ = (v.numpy() for v in m(torch.as_tensor(y)))
            assert np.array_equal(q1, p1) and np.abs(q2 - p2).max() > 1e-4
            np.testing.assert_allclose(a1, np.log(p1 / (1 - p1)), atol=1e-4)  # a1: DNN-1's logit
            # where the history is empty (fill 0) the SSB's own logit stands in the mean's place
            e = x.copy()
            e[:, N_FEATURES + 1] = 0.0
            f = e.copy()
            f[:, N_FEATURES] = 1e3  # (a mean no history gives)
            np.testing.assert_array_equal(m(torch.as_tensor(e))[1].numpy(), m(torch.as_tensor(f))[1].numpy())


def test_thresholds_meet_their_targets():
    rng = np.random.default_rng(1)
    y = rng.random(4000) < 0.6
    p = np.clip(np.where(y, rng.normal(0.75, 0.2, y.size), rng.normal(0.25, 0.2, y.size)), 0, 1)
    lo, hi = tr.choose_thresholds(p, y, 0.99, 0.99)
    assert 0.0 < lo < hi < 1.0
    assert y[p >= hi].mean() >= 0.99
    assert (~y[p <= lo]).mean() >= 0.99
    # a band in between remains for DNN-2
    assert ((p > lo) & (p < hi)).mean() > 0.1


def test_train_config_rejects_unknown_keys(tmp_path):
    c = tmp_path / "t.yaml"
    c.write_text("schema_version: 1\ndnn1: {hiden: [4]}\n")
    with pytest.raises(ConfigError, match="hiden"):
        tr.load_config(str(c))


def test_evaluate_writes_the_report(trained, sim_dir, tmp_path):
    rep = tmp_path / "report"
    assert main(["evaluate", "--model", str(trained), "--data", str(sim_dir), "--report", str(rep),
                 "--no-progress"]) == 0
    for f in ("README.md", "roc.png", "pd_vs_sjnr.png", "evaluation.json"):
        assert (rep / f).stat().st_size > 500, f
    md = (rep / "README.md").read_text()
    for name in ("DT-DDNN", "single-threshold DNN", "raw-IQ DNN", "classical", "Pd @FAR 1 %", "25-30"):
        assert name in md
    ev = json.loads((rep / "evaluation.json").read_text())
    dets = ev["modes"]["calibrated"]["detectors"]
    assert set(dets) == {"dtddnn", "single", "rawiq", "classical"}
    for d in dets.values():
        assert d["far1"]["far"] <= 0.01 + 1e-9  # the swept threshold keeps its FAR
        # Pd at SJNR 15-30 dB split by the jammer's power over the noise: the bands hold those SSBs
        jb = d["jnr_15_30"]
        assert list(jb) == ["<0", "0-3", "3-6", "6-10", ">=10"]
        hard = [b["n"] for b in d["bands"].values()][-3:]  # the 15-20, 20-25, 25-30 dB SJNR bands
        assert sum(b["n"] for b in jb.values()) == sum(hard)
    assert "JNR, dB" in md
    assert ev["latency_us_per_ssb"] > 0


def test_rotate_iq_turns_each_example_by_its_own_phase():
    """The raw-IQ baseline's augmentation multiplies each SSB by exp(j theta):
    power and the I/Q structure are kept, the phase differs per example, the same
    generator seed gives the same rotation."""
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((6, 50)) + 1j * rng.standard_normal((6, 50))).astype(np.complex64)
    x = torch.as_tensor(np.stack([z.real, z.imag], axis=1))
    out = tr.rotate_iq(x, torch.Generator().manual_seed(5)).numpy()
    w = out[:, 0] + 1j * out[:, 1]
    ratio = w / z  # one unit-modulus constant per example
    assert np.allclose(np.abs(ratio), 1.0, atol=1e-5)
    assert np.allclose(ratio, ratio[:, :1], atol=1e-5)
    assert np.ptp(np.angle(ratio[:, 0])) > 0.1
    again = tr.rotate_iq(x, torch.Generator().manual_seed(5)).numpy()
    assert np.array_equal(out, again)


def test_built_in_defaults_are_the_shipped_recipe():
    # `ssbwatch train` without --config trains what configs/train.yaml (the shipped model's recipe)
    # says: the two must not drift apart
    from pathlib import Path

    shipped = tr.load_config(str(Path(__file__).resolve().parents[1] / "configs" / "train.yaml"))
    assert shipped == tr.TrainConfig()


def test_out_of_fold_logits_come_from_a_dnn1_that_never_saw_the_capture():
    # each capture's label is a coin flip that only the capture's own identity (a random vector
    # shared by its examples) tells: a DNN-1 fitted on every capture learns it (its readings of
    # its own training examples separate them), one that never saw the capture cannot
    rng = np.random.default_rng(5)
    n_caps, per = 40, 16
    emb = rng.normal(size=(n_caps, 12)).astype(np.float32)
    lab = (rng.random(n_caps) < 0.5).astype(np.float32)
    capture = np.repeat(np.arange(n_caps) * 7 + 3, per)  # capture ids need not be 0..n-1
    z = (np.repeat(emb, per, axis=0) + 0.05 * rng.normal(size=(n_caps * per, 12))).astype(np.float32)
    y = np.repeat(lab, per)
    cfg = tr.TrainConfig(seed=2, stage2_oof_folds=4, dnn1=tr.MLPConfig(hidden=(64,), dropout=0.0, epochs=60,
                                                                      batch_size=64, lr=0.01, weight_decay=0.0))
    quiet = dict(progress=False, log=lambda s: None)
    tr._seed_all(1)
    full = tr.make_mlp(12, cfg.dnn1)
    tr.fit_binary(full, z, y, np.ones_like(y), z, y, epochs=60, batch_size=64, lr=0.01, weight_decay=0.0, seed=1,
                  device="cpu", desc="full", **quiet)
    in_sample = tr.predict(full, z, "cpu", logit=True)
    oof = tr.out_of_fold_logits(cfg, z, y, capture, z[:64], y[:64], "cpu", **quiet)
    assert oof.shape == (len(z),) and oof.dtype == np.float32 and np.isfinite(oof).all()
    assert auc(in_sample, y) > 0.95
    assert auc(oof, y) < 0.8
    # deterministic with the seed
    assert np.array_equal(oof, tr.out_of_fold_logits(cfg, z, y, capture, z[:64], y[:64], "cpu", **quiet))


@pytest.mark.parametrize("folds", [1, 11, -2])
def test_train_config_rejects_a_fold_count_out_of_range(tmp_path, folds):
    c = tmp_path / "t.yaml"
    c.write_text(f"schema_version: 1\nstage2_oof_folds: {folds}\n")
    with pytest.raises(ConfigError, match="stage2_oof_folds"):
        tr.load_config(str(c))


@pytest.mark.parametrize("folds", [0, 2, 10])
def test_train_config_takes_no_folds_or_two_to_ten(tmp_path, folds):
    c = tmp_path / "t.yaml"
    c.write_text(f"schema_version: 1\nstage2_oof_folds: {folds}\n")
    assert tr.load_config(str(c)).stage2_oof_folds == folds
