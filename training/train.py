"""``ssbwatch train``: DT-DDNN (DNN-1 + DNN-2 cascade) and its baselines.

1. Dataset (training.dataset) from one or more ``ssbwatch simulate`` dirs;
   split into train / validation by capture (no SSB of a validation capture
   is seen in training).
2. Every SSB is used twice, with its calibrated and its uncalibrated feature
   vector, so one model serves both modes (the ``calibrated`` feature tells
   them apart).
3. DNN-1: MLP on standardised features (the mean / std are part of the
   exported graph). On validation: threshold_high = the lowest p1 above which
   the precision is >= target_precision, threshold_low = the highest p1 below
   which the NPV is >= target_npv.
4. DNN-2: MLP trained on the training examples whose p1 falls between the
   thresholds, the weak-jammer region (SJNR in ``hard_sjnr_db``) and the clean
   examples; its threshold (threshold_stage2) is the lowest that keeps the
   cascade's validation false-alarm rate <= target_far (target_far_uncal for
   uncalibrated SSBs; the strictest candidate if none does).
5. Baselines: the single-threshold DNN is DNN-1 alone at ``single_threshold``
   (0.5, PAPER.md); the raw-IQ DNN is a 1-D CNN on the unit-RMS SSB IQ
   (2 x 1096 at the SSB rate).
6. Export: ``dtddnn.onnx`` (features [1, N] -> p1, p2) and ``rawiq.onnx``
   (iq [1, 2, 1096] -> p), metadata as in detector.model, a JSON sidecar with
   the training record, and a torch/onnxruntime parity check.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from detector import model as edge
from detector.features import FEATURE_NAMES, FEATURE_VERSION, N_FEATURES
from signals.config import ConfigError, check_interval, check_range, load_yaml, to_dict

from .dataset import IQ_LEN, Dataset, load_datasets

OPSET = 17
RAWIQ_FORMAT = "ssbwatch-rawiq-1"


# ---------------------------------------------------------------------------
# Configuration (configs/train.yaml)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.4
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 5e-3

    def __post_init__(self):
        if not self.hidden or any(h < 1 or h > 4096 for h in self.hidden):
            raise ConfigError(f"hidden={list(self.hidden)}: 1..4096 units per layer, at least one layer")
        check_range("dropout", self.dropout, 0.0, 0.9)
        check_range("epochs", self.epochs, 1, 10000)
        check_range("batch_size", self.batch_size, 1, 1 << 16)
        check_range("lr", self.lr, 1e-6, 1.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)


@dataclass(frozen=True)
class RawIQConfig:
    enabled: bool = True
    channels: tuple[int, ...] = (16, 32, 32, 64)
    kernel: int = 9
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-3
    max_examples: int = 40000  # subsample the training set for speed (0: all)
    # rotate each training SSB by a random phase every epoch: the channel's phase at
    # the receiver is arbitrary, so a rotated SSB is as real as the one recorded, and
    # without it the network memorises its examples' phases (train loss 0.28, validation
    # loss rising from epoch 2 on, AUC 0.52 on the evaluation split: stop 15)
    phase_augment: bool = True

    def __post_init__(self):
        if not self.channels or any(c < 1 or c > 1024 for c in self.channels):
            raise ConfigError(f"rawiq.channels={list(self.channels)}: 1..1024 per layer")
        check_range("rawiq.kernel", self.kernel, 1, 63)
        check_range("rawiq.epochs", self.epochs, 1, 10000)
        check_range("rawiq.batch_size", self.batch_size, 1, 1 << 16)
        check_range("rawiq.lr", self.lr, 1e-6, 1.0)
        check_range("rawiq.weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("rawiq.max_examples", self.max_examples, 0, 10**8)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    val_fraction: float = 0.2
    target_precision: float = 0.998
    target_npv: float = 0.99
    target_far: float = 0.005
    # uncalibrated SSBs: no site reference, and real transmitters' non-idealities
    # (leakage, spurs) that the simulation lacks look like narrowband interference:
    # a stricter false-alarm target there
    target_far_uncal: float = 0.001
    single_threshold: float = 0.5
    hard_sjnr_db: tuple[float, float] = (15.0, 30.0)
    stage2_band_weight: float = 3.0  # extra weight of the in-between examples in DNN-2's loss
    # DNN-2 sees DNN-1's logit beside the features (a stacked cascade): it refines DNN-1's
    # reading in the uncertain band instead of starting over from the features alone
    stage2_stack: bool = True
    # >= 2: DNN-2 learns from DNN-1's readings of training captures that DNN-1 did not fit
    # (k-fold over the training captures, DNN-1 refitted on the other folds); 0: from the final
    # DNN-1's readings of its own training data, which are surer than those it gives unseen
    # SSBs -- the band DNN-2 trains on is then narrower, and the logit it stacks sharper, than
    # what it meets in use. The exported DNN-1 is the one fitted on all training captures.
    stage2_oof_folds: int = 3
    # > 0: DNN-2 also reads the stream's context -- how DNN-1 read the SSBs of the stream before
    # the SSB, up to this many (their mean logit and how full that history is:
    # model.context_vector; in training, the SSBs of the example's capture before it, their
    # logits out of fold where stage2_oof_folds asks); 0: the SSB alone
    stage2_context_ssbs: int = 4
    threads: int = 2
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 2  # dataset building processes
    dnn1: MLPConfig = field(default_factory=MLPConfig)
    dnn2: MLPConfig = field(default_factory=lambda: MLPConfig(hidden=(128, 128, 64)))
    rawiq: RawIQConfig = field(default_factory=RawIQConfig)

    def __post_init__(self):
        check_range("val_fraction", self.val_fraction, 0.05, 0.9)
        check_range("target_precision", self.target_precision, 0.5, 1.0)
        check_range("target_npv", self.target_npv, 0.5, 1.0)
        check_range("target_far", self.target_far, 1e-4, 0.5)
        check_range("target_far_uncal", self.target_far_uncal, 1e-4, 0.5)
        check_range("single_threshold", self.single_threshold, 0.01, 0.99)
        check_interval("hard_sjnr_db", self.hard_sjnr_db, -30, 60)
        check_range("stage2_band_weight", self.stage2_band_weight, 0.0, 100.0)
        if self.stage2_oof_folds != 0:
            check_range("stage2_oof_folds", self.stage2_oof_folds, 2, 10)
        check_range("stage2_context_ssbs", self.stage2_context_ssbs, 0, 64)
        check_range("threads", self.threads, 1, 256)
        check_range("workers", self.workers, 1, 256)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device={self.device!r} not in ['auto', 'cpu', 'cuda']")


def load_config(path: Optional[str]) -> TrainConfig:
    return load_yaml(path, TrainConfig) if path else TrainConfig()


# ---------------------------------------------------------------------------
# Models (torch imported lazily: `import training.train` stays cheap)
# ---------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def make_mlp(n_in: int, cfg: MLPConfig):
    torch = _torch()
    nn = torch.nn
    layers = []
    d = n_in
    for h in cfg.hidden:
        layers += [nn.Linear(d, h), nn.GELU()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        d = h
    layers.append(nn.Linear(d, 1))
    return nn.Sequential(*layers)


def make_rawiq(cfg: RawIQConfig):
    torch = _torch()
    nn = torch.nn

    class RawIQNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            c_in = 2
            for c in cfg.channels:
                layers += [nn.Conv1d(c_in, c, cfg.kernel, stride=2, padding=cfg.kernel // 2), nn.BatchNorm1d(c), nn.ReLU()]
                c_in = c
            self.body = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Linear(2 * c_in, 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, x):
            h = self.body(x)
            return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))

    return RawIQNet()


def make_export_module(mean: np.ndarray, std: np.ndarray, dnn1, dnn2,
                       stack: Optional[tuple[float, float]] = None, context: bool = False):
    """The exported graph. ``stack``: (mean, std) of DNN-1's logit on the training
    examples when DNN-2 takes that logit, standardised, after the features
    (TrainConfig.stage2_stack); None: DNN-2 takes the features alone. ``context``
    (with ``stack`` only): the input row is the features, then DNN-2's stream context
    (model.context_vector of the DNN-1 logits of the SSBs before: their mean, the
    history's fill), which DNN-2 reads after the logit -- the mean standardised as the
    logit is, the SSB's own logit in its place where the fill is 0 --, and the graph
    also gives DNN-1's logit (a1) for the pipeline's history."""
    torch = _torch()
    nn = torch.nn

    class DTDDNN(nn.Module):
        """features [B, N] -> (p1 [B, 1], p2 [B, 1]); with context: features and context [B, N + 2] ->
        (p1, p2, a1 [B, 1]); standardisation inside."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[None, :])
            self.register_buffer("inv_std", torch.tensor(1.0 / std, dtype=torch.float32)[None, :])
            self.dnn1 = dnn1
            self.dnn2 = dnn2
            self.stack = stack is not None
            self.context = context
            if context and stack is None:
                raise ValueError("DNN-2's stream context needs the stacked logit (stage2_stack)")
            self.n = len(mean)
            if self.stack:
                self.register_buffer("logit_mean", torch.tensor([[stack[0]]], dtype=torch.float32))
                self.register_buffer("logit_inv_std", torch.tensor([[1.0 / stack[1]]], dtype=torch.float32))

        def forward(self, x):
            n = self.n
            z = (x[:, :n] - self.mean) * self.inv_std
            a1 = self.dnn1(z)
            z2 = torch.cat([z, (a1 - self.logit_mean) * self.logit_inv_std], dim=1) if self.stack else z
            if self.context:
                fill = x[:, n + 1 : n + 2]
                c = torch.where(fill > 0, x[:, n : n + 1], a1)
                z2 = torch.cat([z2, (c - self.logit_mean) * self.logit_inv_std, fill], dim=1)
                return torch.sigmoid(a1), torch.sigmoid(self.dnn2(z2)), a1
            return torch.sigmoid(a1), torch.sigmoid(self.dnn2(z2))

    return DTDDNN()


# ---------------------------------------------------------------------------
# Training loops
# ---------------------------------------------------------------------------
def _seed_all(seed: int) -> None:
    torch = _torch()
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _device(cfg: TrainConfig):
    torch = _torch()
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def fit_binary(net, x: np.ndarray, y: np.ndarray, w: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
               epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int, device, desc: str,
               progress: bool = True, log=print, augment=None) -> dict:
    """Weighted BCE with AdamW + cosine schedule; keeps the epoch with the lowest
    validation loss. ``augment(xb, generator)``, when given, transforms each
    training batch (never the validation set). Returns the history."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    net.to(device)
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(y.astype(np.float32))
    wt = torch.as_tensor(w.astype(np.float32))
    xv = torch.as_tensor(x_val).to(device)
    yv = torch.as_tensor(y_val.astype(np.float32)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * max(1, (len(xt) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    best = (float("inf"), None, -1)
    hist = []
    it = range(epochs)
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(it, desc=desc, unit="epoch", leave=False, file=sys.stderr)
            it = bar
        except ImportError:  # pragma: no cover
            pass
    for ep in it:
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        tot = 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb, wb = xt[idx], yt[idx].to(device), wt[idx].to(device)
            if augment is not None:
                xb = augment(xb, gen)
            xb = xb.to(device)
            loss = (bce(net(xb).squeeze(1), yb, reduction="none") * wb).sum() / wb.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
        net.eval()
        with torch.no_grad():
            vl = []
            for i in range(0, len(xv), 4096):
                vl.append(bce(net(xv[i : i + 4096]).squeeze(1), yv[i : i + 4096], reduction="sum"))
            vloss = float(sum(vl)) / max(len(xv), 1)
        hist.append({"epoch": ep, "train_loss": tot / len(xt), "val_loss": vloss})
        if bar is not None:
            bar.set_postfix(train=f"{tot / len(xt):.4f}", val=f"{vloss:.4f}")
        if vloss < best[0]:
            best = (vloss, {k: v.detach().clone() for k, v in net.state_dict().items()}, ep)
    if bar is not None:
        bar.close()
    net.load_state_dict(best[1])
    net.eval()
    log(f"{desc}: best epoch {best[2] + 1}/{epochs}, validation loss {best[0]:.4f}")
    return {"history": hist, "best_epoch": best[2], "best_val_loss": best[0]}


def rotate_iq(xb, gen):
    """Each example of a raw-IQ batch (float32 tensor [B, 2, L], I and Q) times
    exp(j theta), theta uniform in [0, 2 pi) per example drawn from ``gen``."""
    torch = _torch()
    theta = torch.rand(xb.shape[0], 1, generator=gen) * (2.0 * math.pi)
    c, s = torch.cos(theta), torch.sin(theta)
    i, q = xb[:, 0], xb[:, 1]
    return torch.stack([c * i - s * q, s * i + c * q], dim=1)


def predict(net, x: np.ndarray, device, batch: int = 4096, logit: bool = False) -> np.ndarray:
    """The network's probability (float32 (n,)) on each row of x; ``logit``: its
    output before the sigmoid (what a stacked DNN-2 is given in the exported graph)."""
    torch = _torch()
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            a = net(torch.as_tensor(x[i : i + batch]).to(device))
            out.append((a if logit else torch.sigmoid(a)).squeeze(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------
def choose_thresholds(p: np.ndarray, y: np.ndarray, target_precision: float, target_npv: float) -> tuple[float, float]:
    """(tau_low, tau_high) on validation scores (see module doc)."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y).astype(bool)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # precision of {p >= ps[k]} for every k (descending): choose the lowest threshold that keeps it
    tp = np.cumsum(ys)
    n = np.arange(1, len(ps) + 1)
    prec = tp / n
    ok = np.where(prec >= target_precision)[0]
    # the largest k such that every prefix from k on... use the last index whose precision passes and
    # whose score differs from the next one (a threshold between distinct values)
    t_high = 1.0
    if ok.size:
        k = ok[-1]
        t_high = float(ps[k])
    # NPV of {p <= t} (ascending)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    tn = np.cumsum(~ys)
    npv = tn / np.arange(1, len(ps) + 1)
    ok = np.where(npv >= target_npv)[0]
    t_low = 0.0
    if ok.size:
        t_low = float(ps[ok[-1]])
    if t_low >= t_high:  # DNN-1 separates the validation set at these targets: a narrow band around the middle
        mid = 0.5 * (t_low + t_high)
        t_low, t_high = min(t_low, mid), max(t_high, mid)
        t_low, t_high = min(t_low, t_high), max(t_low, t_high)
    return float(np.clip(t_low, 0.0, 1.0)), float(np.clip(t_high, 0.0, 1.0))


def choose_stage2_threshold(p1, p2, y, t_low, t_high, target_far) -> float:
    y = np.asarray(y).astype(bool)
    cands = np.unique(np.concatenate([np.linspace(0.05, 0.95, 91), np.quantile(p2, np.linspace(0.01, 0.99, 99))]))
    cands = cands[(cands > 0.0) & (cands < 1.0)]
    best = None
    for t2 in cands:  # ascending: the first that meets the FAR target detects the most
        jam, _, _ = edge.cascade_arrays(p1, p2, t_low, t_high, float(t2))
        far = jam[~y].mean() if (~y).any() else 0.0
        if far <= target_far:
            best = float(t2)
            break
    # none meets the target (stage 1 alone exceeds it): the strictest candidate
    return float(cands[-1]) if best is None else best


def op_metrics(jammed: np.ndarray, y: np.ndarray, sjnr: np.ndarray, band=(15.0, 30.0)) -> dict:
    y = np.asarray(y).astype(bool)
    hard = y & (sjnr >= band[0]) & (sjnr <= band[1])
    return {
        "far": float(jammed[~y].mean()) if (~y).any() else float("nan"),
        "pd": float(jammed[y].mean()) if y.any() else float("nan"),
        "pd_sjnr_15_30": float(jammed[hard].mean()) if hard.any() else float("nan"),
        "n_clean": int((~y).sum()),
        "n_jammed": int(y.sum()),
        "n_jammed_15_30": int(hard.sum()),
    }


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------
def _export(module, example, path: Path, input_name: str, output_names: list[str]) -> None:
    torch = _torch()
    module.eval()
    kw = dict(input_names=[input_name], output_names=output_names, opset_version=OPSET, do_constant_folding=True)
    try:
        torch.onnx.export(module, (example,), str(path), dynamo=False, **kw)
    except TypeError:  # older torch without the dynamo switch
        torch.onnx.export(module, (example,), str(path), **kw)


def finalize_onnx(path: Path, meta: dict[str, str]) -> str:
    """Add metadata_props and the graph checksum; returns the checksum."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer):
        raise RuntimeError("export produced external data")
    m.producer_name = "ssbwatch train"
    del m.metadata_props[:]
    for k, v in meta.items():
        e = m.metadata_props.add()
        e.key, e.value = k, str(v)
    onnx.checker.check_model(m)
    data = m.SerializeToString()
    digest, _ = edge.parse_model_bytes(data)
    e = m.metadata_props.add()
    e.key, e.value = "weights_sha256", digest
    data = m.SerializeToString()
    d2, meta2 = edge.parse_model_bytes(data)
    if d2 != digest or meta2.get("weights_sha256") != digest:  # pragma: no cover
        raise RuntimeError("graph bytes changed when metadata was added")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return digest


def parity(module, sess, inputs: np.ndarray, input_name: str) -> float:
    """Max |torch - onnxruntime| over a batch, one example at a time (the graph has batch 1):
    of the probabilities p1, p2 (p); of a context model's logit a1, relative to max(1, |a1|)
    (a logit of 20 holds float32's 2e-6 rounding)."""
    torch = _torch()
    module.eval()
    with torch.no_grad():
        ref = module(torch.as_tensor(inputs))
    ref = [r.numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    worst = 0.0
    for i in range(len(inputs)):
        outs = sess.run(None, {input_name: inputs[i : i + 1]})
        for j, (r, o) in enumerate(zip(ref, outs)):
            d = np.abs(r[i : i + 1] - o)
            if j == 2:  # (a1)
                d = d / np.maximum(1.0, np.abs(r[i : i + 1]))
            worst = max(worst, float(np.max(d)))
    return worst


# ---------------------------------------------------------------------------
# Main entry
# ---------------------------------------------------------------------------
def split_by_capture(ds: Dataset, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation SSBs: whole captures, drawn with the seed."""
    caps = np.unique(ds["capture"])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    rng.shuffle(caps)
    n_val = max(1, int(round(val_fraction * len(caps)))) if len(caps) > 1 else 0
    return np.isin(ds["capture"], caps[:n_val])


def both_modes(ds: Dataset, mask: np.ndarray):
    """(X, y, sjnr, is_cal, capture) with every SSB twice: calibrated (where a baseline exists)
    and uncalibrated; ``capture`` the id of each example's capture (both modes of an SSB share it)."""
    cal = mask & ds["has_cal"]
    x = np.concatenate([ds["x_cal"][cal], ds["x_uncal"][mask]]).astype(np.float32)
    y = np.concatenate([ds["y"][cal], ds["y"][mask]]).astype(np.float32)
    s = np.concatenate([ds["sjnr_db"][cal], ds["sjnr_db"][mask]]).astype(np.float32)
    is_cal = np.concatenate([np.ones(cal.sum(), bool), np.zeros(mask.sum(), bool)])
    capture = np.concatenate([ds["capture"][cal], ds["capture"][mask]])
    return x, y, s, is_cal, capture


def mode_streams(capture: np.ndarray, is_cal: np.ndarray) -> np.ndarray:
    """An id per example of :func:`both_modes` naming its stream: its capture in its mode
    (the calibrated and the uncalibrated reading of a capture are two streams)."""
    _, ids = np.unique(np.char.add(np.where(is_cal, "c:", "u:"), capture.astype(str)), return_inverse=True)
    return ids


def out_of_fold_logits(cfg: TrainConfig, z: np.ndarray, y: np.ndarray, capture: np.ndarray, z_val: np.ndarray,
                       y_val: np.ndarray, device, *, progress: bool = True, log=print) -> np.ndarray:
    """DNN-1's logit (float32, shape (n,)) for each training example ``z`` (n, N_FEATURES),
    from a DNN-1 fitted without the example's capture: the captures (``capture``, (n,)) are
    dealt into ``cfg.stage2_oof_folds`` folds (seeded), and a DNN-1 of ``cfg.dnn1`` is
    fitted on the others for each fold (model selection on ``z_val`` as for DNN-1 itself)."""
    k = cfg.stage2_oof_folds
    caps = np.unique(capture)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 11]))
    fold_of_cap = rng.permutation(len(caps)) % k
    fold = fold_of_cap[np.searchsorted(caps, capture)]
    out = np.zeros(len(z), np.float32)
    for f in range(k):
        held = fold == f
        if not held.any() or held.all():
            raise ConfigError(f"stage2_oof_folds={k}: fold {f} holds {held.sum()} of {len(z)} training examples")
        _seed_all(cfg.seed + 20 + f)
        net = make_mlp(z.shape[1], cfg.dnn1)
        fit_binary(net, z[~held], y[~held], _class_weights(y[~held]), z_val, y_val, epochs=cfg.dnn1.epochs,
                   batch_size=cfg.dnn1.batch_size, lr=cfg.dnn1.lr, weight_decay=cfg.dnn1.weight_decay,
                   seed=cfg.seed + 20 + f, device=device, desc=f"DNN-1 fold {f + 1}/{k}", progress=progress, log=log)
        out[held] = predict(net, z[held], device, logit=True)
    return out


def _class_weights(y: np.ndarray) -> np.ndarray:
    pos = max(float(y.sum()), 1.0)
    neg = max(float(len(y) - y.sum()), 1.0)
    return np.where(y > 0.5, 0.5 * len(y) / pos, 0.5 * len(y) / neg).astype(np.float32)


def train(cfg: TrainConfig, data_dirs: list[str], out_dir: str | Path, *, progress: bool = True, log=None,
          config_path: Optional[str] = None) -> dict:
    log = log or (lambda s: print(s, file=sys.stderr))
    t_start = time.perf_counter()
    torch = _torch()
    torch.set_num_threads(cfg.threads)
    _seed_all(cfg.seed)
    device = _device(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    ds = load_datasets(data_dirs, workers=cfg.workers, progress=progress, log=log)
    if len(ds) < 10 or ds["y"].min() == ds["y"].max():
        raise ConfigError(f"dataset {data_dirs}: {len(ds)} SSBs; need both clean and jammed ones to train")
    val = split_by_capture(ds, cfg.val_fraction, cfg.seed)
    tr = ~val
    x_tr, y_tr, s_tr, c_tr, cap_tr = both_modes(ds, tr)
    x_va, y_va, s_va, c_va, cap_va = both_modes(ds, val)
    k_ctx = cfg.stage2_context_ssbs
    if k_ctx and not cfg.stage2_stack:
        raise ConfigError("stage2_context_ssbs needs stage2_stack: true (DNN-2 reads DNN-1's logits)")
    log(f"training on {tr.sum()} SSBs ({len(x_tr)} examples in both modes), validating on {val.sum()} SSBs "
        f"({len(x_va)} examples); {100 * ds['y'].mean():.0f} % jammed; device {device}")

    mean = x_tr.mean(axis=0).astype(np.float64)
    std = x_tr.std(axis=0).astype(np.float64)
    std = np.where(std < 1e-3, 1.0, std)
    z_tr = ((x_tr - mean) / std).astype(np.float32)
    z_va = ((x_va - mean) / std).astype(np.float32)

    # DNN-1
    _seed_all(cfg.seed + 1)
    dnn1 = make_mlp(N_FEATURES, cfg.dnn1)
    h1 = fit_binary(dnn1, z_tr, y_tr, _class_weights(y_tr), z_va, y_va, epochs=cfg.dnn1.epochs,
                    batch_size=cfg.dnn1.batch_size, lr=cfg.dnn1.lr, weight_decay=cfg.dnn1.weight_decay,
                    seed=cfg.seed + 1, device=device, desc="DNN-1", progress=progress, log=log)
    p1_va = predict(dnn1, z_va, device)
    # thresholds per mode: calibrated SSBs (the site baseline sharpens DNN-1) and uncalibrated ones
    t_low, t_high = choose_thresholds(p1_va[c_va], y_va[c_va], cfg.target_precision, cfg.target_npv)
    u_low, u_high = choose_thresholds(p1_va[~c_va], y_va[~c_va], cfg.target_precision, cfg.target_npv)
    lo_tr = np.where(c_tr, t_low, u_low)
    hi_tr = np.where(c_tr, t_high, u_high)
    lo_va = np.where(c_va, t_low, u_low)
    hi_va = np.where(c_va, t_high, u_high)
    log(f"thresholds on validation: calibrated low {t_low:.4f} high {t_high:.4f}, uncalibrated low {u_low:.4f} "
        f"high {u_high:.4f} (NPV >= {cfg.target_npv}, precision >= {cfg.target_precision}); "
        f"{100 * ((p1_va > lo_va) & (p1_va < hi_va)).mean():.1f} % of validation examples go to DNN-2")

    # DNN-2: the uncertain band + the weak-jammer region + clean examples, by DNN-1's readings of
    # the training examples (out of fold where stage2_oof_folds asks)
    a_fit = None
    if cfg.stage2_oof_folds:
        a_fit = out_of_fold_logits(cfg, z_tr, y_tr, cap_tr, z_va, y_va, device, progress=progress, log=log)
        p1_fit = (1.0 / (1.0 + np.exp(-a_fit.astype(np.float64)))).astype(np.float32)
    else:
        p1_fit = predict(dnn1, z_tr, device)
    lo, hi = cfg.hard_sjnr_db
    band = (p1_fit > lo_tr) & (p1_fit < hi_tr)
    weak = (y_tr > 0.5) & (s_tr >= lo) & (s_tr <= hi)
    sel = band | weak | (y_tr < 0.5)
    w2 = _class_weights(y_tr[sel]) * np.where(band[sel], 1.0 + cfg.stage2_band_weight, 1.0).astype(np.float32)
    va_band = (p1_va > lo_va) & (p1_va < hi_va)
    va_sel = va_band | ((y_va > 0.5) & (s_va >= lo) & (s_va <= hi)) | (y_va < 0.5)
    log(f"DNN-2 trains on {sel.sum()} examples ({band.sum()} in the band, {weak.sum()} weak-jammer, "
        f"{(y_tr < 0.5).sum()} clean)" + (", with DNN-1's logit beside the features" if cfg.stage2_stack else ""))
    stack = None
    z2_tr, z2_va = z_tr, z_va
    if cfg.stage2_stack:
        a_tr = a_fit if a_fit is not None else predict(dnn1, z_tr, device, logit=True)
        a_va = predict(dnn1, z_va, device, logit=True)
        stack = (float(a_tr.mean()), max(float(a_tr.std()), 1e-3))
        z2_tr = np.concatenate([z_tr, ((a_tr - stack[0]) / stack[1])[:, None]], axis=1).astype(np.float32)
        z2_va = np.concatenate([z_va, ((a_va - stack[0]) / stack[1])[:, None]], axis=1).astype(np.float32)
    ctx_va = None
    if k_ctx:
        # the stream's context: DNN-1's logits of the SSBs of the example's capture before it, in its
        # mode (both_modes' order), the SSB's own logit where there is none (as the graph does)
        ctx_tr = edge.context_rows(a_tr[:, None], mode_streams(cap_tr, c_tr), k_ctx)
        ctx_va = edge.context_rows(a_va[:, None], mode_streams(cap_va, c_va), k_ctx)

        def with_context(z2, ctx, a):
            c = np.where(ctx[:, 1] > 0, ctx[:, 0], a)
            return np.concatenate([z2, ((c - stack[0]) / stack[1])[:, None], ctx[:, 1:]], axis=1).astype(np.float32)

        z2_tr, z2_va = with_context(z2_tr, ctx_tr, a_tr), with_context(z2_va, ctx_va, a_va)
        log(f"DNN-2 reads the stream's context: DNN-1's mean logit of up to {k_ctx} SSBs before each")
    _seed_all(cfg.seed + 2)
    dnn2 = make_mlp(z2_tr.shape[1], cfg.dnn2)
    h2 = fit_binary(dnn2, z2_tr[sel], y_tr[sel], w2, z2_va[va_sel], y_va[va_sel], epochs=cfg.dnn2.epochs,
                    batch_size=cfg.dnn2.batch_size, lr=cfg.dnn2.lr, weight_decay=cfg.dnn2.weight_decay,
                    seed=cfg.seed + 2, device=device, desc="DNN-2", progress=progress, log=log)
    p2_va = predict(dnn2, z2_va, device)
    t2 = choose_stage2_threshold(p1_va[c_va], p2_va[c_va], y_va[c_va], t_low, t_high, cfg.target_far)
    u2 = choose_stage2_threshold(p1_va[~c_va], p2_va[~c_va], y_va[~c_va], u_low, u_high, cfg.target_far_uncal)
    log(f"stage-2 thresholds: calibrated {t2:.4f}, uncalibrated {u2:.4f} (validation FAR targets "
        f"{cfg.target_far} / {cfg.target_far_uncal})")
    mode_th = {"calibrated": (t_low, t_high, t2), "uncalibrated": (u_low, u_high, u2)}

    # validation metrics (per mode), recorded in the model
    metrics = {"split": "validation", "thresholds": mode_th}
    for mode, m in (("calibrated", c_va), ("uncalibrated", ~c_va)):
        # the decision rule the edge detector applies (DTDDNNDetector.score)
        jam, _, st = edge.cascade_arrays(p1_va[m], p2_va[m], *mode_th[mode])
        metrics[mode] = {"dtddnn": op_metrics(jam, y_va[m], s_va[m], cfg.hard_sjnr_db),
                         "single": op_metrics(p1_va[m] >= cfg.single_threshold, y_va[m], s_va[m], cfg.hard_sjnr_db),
                         "stage2_fraction": float((st == 2).mean()) if m.any() else 0.0}
    for mode in ("calibrated", "uncalibrated"):
        d, s = metrics[mode]["dtddnn"], metrics[mode]["single"]
        log(f"validation {mode}: DT-DDNN FAR {100 * d['far']:.2f} % Pd {100 * d['pd']:.2f} % "
            f"(SJNR 15-30: {100 * d['pd_sjnr_15_30']:.2f} %); single-threshold FAR {100 * s['far']:.2f} % "
            f"Pd {100 * s['pd']:.2f} % (SJNR 15-30: {100 * s['pd_sjnr_15_30']:.2f} %)")

    # raw-IQ baseline
    raw = None
    if cfg.rawiq.enabled:
        _seed_all(cfg.seed + 3)
        iq_tr, yi_tr = ds["iq"][tr], ds["y"][tr].astype(np.float32)
        if cfg.rawiq.max_examples and len(iq_tr) > cfg.rawiq.max_examples:
            pick = np.sort(np.random.default_rng(cfg.seed + 3).choice(len(iq_tr), cfg.rawiq.max_examples, replace=False))
            iq_tr, yi_tr = iq_tr[pick], yi_tr[pick]
        raw = make_rawiq(cfg.rawiq)
        h3 = fit_binary(raw, iq_tr, yi_tr, _class_weights(yi_tr), ds["iq"][val], ds["y"][val].astype(np.float32),
                        epochs=cfg.rawiq.epochs, batch_size=cfg.rawiq.batch_size, lr=cfg.rawiq.lr,
                        weight_decay=cfg.rawiq.weight_decay, seed=cfg.seed + 3, device=device, desc="raw-IQ DNN",
                        progress=progress, log=log, augment=rotate_iq if cfg.rawiq.phase_augment else None)
        pr = predict(raw, ds["iq"][val], device)
        metrics["rawiq"] = op_metrics(pr >= 0.5, ds["y"][val], ds["sjnr_db"][val], cfg.hard_sjnr_db)
        log(f"validation raw-IQ DNN: FAR {100 * metrics['rawiq']['far']:.2f} % Pd {100 * metrics['rawiq']['pd']:.2f} %")
        raw.cpu()

    # export
    dnn1.cpu()
    dnn2.cpu()
    exp = make_export_module(mean, std, dnn1, dnn2, stack, context=k_ctx > 0)
    exp.eval()
    onnx_path = out / "dtddnn.onnx"
    n_in = N_FEATURES + 2 if k_ctx else N_FEATURES
    _export(exp, torch.zeros(1, n_in), onnx_path, "features", ["p1", "p2", "a1"] if k_ctx else ["p1", "p2"])
    train_seconds = time.perf_counter() - t_start
    sim_cfg = ds.info.get("sim_config") or {}
    train_cfg_d = to_dict(cfg)
    meta = {
        "model_format": edge.MODEL_FORMAT,
        "feature_version": FEATURE_VERSION,
        "feature_names_sha256": edge.feature_names_sha256(),
        "n_features": N_FEATURES,
        "threshold_low": repr(t_low),
        "threshold_high": repr(t_high),
        "threshold_stage2": repr(t2),
        "threshold_low_uncal": repr(u_low),
        "threshold_high_uncal": repr(u_high),
        "threshold_stage2_uncal": repr(u2),
        "threshold_note": "threshold_* apply to calibrated SSBs (feature 'calibrated' = 1), *_uncal to the others",
        "single_threshold": repr(cfg.single_threshold),
        "single_threshold_rule": "DNN-1 output p1 >= single_threshold (0.5, PAPER.md)",
        "stage2_input": ("features + DNN-1 logit (standardised)" if stack is not None else "features")
                        + (f" + the stream's context (DNN-1's mean logit of up to {k_ctx} SSBs before it, and "
                           f"the history's fill)" if k_ctx else ""),
        "context_ssbs": str(k_ctx),
        "opset": OPSET,
        "scs_khz": json.dumps(sim_cfg.get("scs_khz", [15, 30])),
        "sample_rates_hz": json.dumps(sim_cfg.get("sample_rates_hz", [])),
        "sample_rate_note": "features are computed at the SSB rate after band extraction; any capture rate the "
                            "receiver accepts is supported, training covered sample_rates_hz",
        "training_data_sha256": ds.sha256,
        "training_data_seed": json.dumps(ds.info.get("seed")),
        "training_ssbs": int(len(ds)),
        "metrics": json.dumps(_round(metrics)),
        "train_config": json.dumps(train_cfg_d),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch_version": torch.__version__,
    }
    digest = finalize_onnx(onnx_path, meta)
    # parity torch vs onnxruntime on a validation batch
    data, _ = edge.read_verified(onnx_path)
    sess = edge.make_session(data, onnx_path)
    rng = np.random.default_rng(cfg.seed)
    pick = rng.choice(len(x_va), min(256, len(x_va)), replace=False)
    batch = x_va[pick] if ctx_va is None else np.concatenate([x_va[pick], ctx_va[pick]], axis=1)
    par = parity(exp, sess, batch, "features")
    log(f"wrote {onnx_path} (opset {OPSET}, weights sha256 {digest[:16]}...); torch vs onnxruntime max |diff| "
        f"{par:.2e} on {len(batch)} examples")
    raw_par = None
    if raw is not None:
        raw.eval()
        rp = out / "rawiq.onnx"

        class _Sig(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return torch.sigmoid(self.net(x))

        sig = _Sig(raw).eval()
        _export(sig, torch.zeros(1, 2, IQ_LEN), rp, "iq", ["p"])
        finalize_onnx(rp, {"model_format": RAWIQ_FORMAT, "training_data_sha256": ds.sha256, "opset": OPSET,
                           "input": "unit-RMS SSB IQ at the SSB rate, [1, 2, 1096] (I, Q)",
                           "threshold": "0.5"})
        sess_r = edge.make_session(rp.read_bytes(), rp)
        raw_par = parity(sig, sess_r, ds["iq"][val][:64], "iq")
        log(f"wrote {rp}; parity {raw_par:.2e}")
    record = {
        "tool": "ssbwatch train",
        "model": onnx_path.name,
        "model_sha256_file": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "weights_sha256": digest,
        "opset": OPSET,
        "feature_version": FEATURE_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "thresholds": {"low": t_low, "high": t_high, "stage2": t2, "single": cfg.single_threshold,
                       "uncalibrated": {"low": u_low, "high": u_high, "stage2": u2}},
        "config_file": config_path,
        "config": train_cfg_d,
        "data": {k: ds.info.get(k) for k in ("data_dir", "seed", "data_sha256", "n_captures", "n_truth_ssbs",
                                             "n_ssbs", "n_missed", "n_missed_jammed", "n_unmatched_obs",
                                             "n_with_baseline")},
        "sim_config": sim_cfg,
        "split": {"train_ssbs": int(tr.sum()), "val_ssbs": int(val.sum()), "by": "capture",
                  "val_fraction": cfg.val_fraction},
        "metrics": _round(metrics),
        "parity_max_abs_diff": par,
        "rawiq_parity_max_abs_diff": raw_par,
        "history": {"dnn1": h1, "dnn2": h2, **({"rawiq": h3} if raw is not None else {})},
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "threads": cfg.threads,
    }
    (out / "dtddnn.json").write_text(json.dumps(_round(record), indent=1))
    log(f"trained in {train_seconds:.0f} s; wrote {out / 'dtddnn.json'}")
    return record


def _round(x):
    if isinstance(x, float):
        return round(x, 6) if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    return x
