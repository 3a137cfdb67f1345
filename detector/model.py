"""DT-DDNN inference on the edge (onnxruntime; never imports torch).

The model file (``ssbwatch train`` → ``dtddnn.onnx``) holds one graph with the
feature standardisation and both stages: input ``features`` float32 [1, N],
outputs ``p1`` (DNN-1) and ``p2`` (DNN-2), each float32 [1, 1], probabilities
of "jammed". A model with DNN-2's stream context (metadata ``context_ssbs`` > 0,
see :func:`context_vector`) takes [1, N + 2] (the features, then the context) and
also gives ``a1``, DNN-1's logit, for the history of the SSBs that follow. Its
``metadata_props`` carry the feature version, a hash of the feature names, the
thresholds of the cascade, the training data's hash, the headline metrics and
``weights_sha256``: the sha256 of the serialized ONNX graph (every weight and
node). The checksum and the feature version are checked before onnxruntime sees
the file; a mismatch is a :class:`ModelError` that names the file.

Cascade (DESIGN.md §5, :func:`cascade`): p1 >= threshold_high -> jammed
(stage 1); p1 <= threshold_low -> clean (stage 1); otherwise DNN-2 decides
(stage 2), jammed when p2 >= threshold_stage2. The returned score is one
monotone-by-stage number in 0..1 with the decision at 0.5:
[0, 1/3] clean at stage 1, [1/3, 2/3] stage 2, [2/3, 1] jammed at stage 1.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .features import FEATURE_NAMES, FEATURE_VERSION, FEATURE_VERSIONS, N_FEATURES, feature_names_of

MODEL_FORMAT = "ssbwatch-dtddnn-1"
_CAL_IDX = FEATURE_NAMES.index("calibrated")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "dtddnn.onnx"
MAX_MODEL_BYTES = 64 << 20
REQUIRED_META = ("model_format", "feature_version", "feature_names_sha256", "threshold_low", "threshold_high",
                 "threshold_stage2", "weights_sha256")


class ModelError(ValueError):
    """A model file is missing, corrupt, or does not fit this ssbwatch."""


def feature_names_sha256(names=FEATURE_NAMES) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


# ---------------------------------------------------------------------------
# Minimal protobuf reading (the edge install has no `onnx` package)
# ---------------------------------------------------------------------------
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ModelError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ModelError("bad varint")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message; length-
    delimited values are memoryview slices."""
    i, n = 0, len(buf)
    mv = memoryview(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = mv[i : i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            if i + ln > n:
                raise ModelError("truncated field")
            v, i = mv[i : i + ln], i + ln
        elif wt == 5:
            v, i = mv[i : i + 4], i + 4
        else:
            raise ModelError(f"unsupported protobuf wire type {wt}")
        if i > n:
            raise ModelError("truncated field")
        yield num, wt, v


def parse_model_bytes(data: bytes) -> tuple[str, dict[str, str]]:
    """(sha256 of the serialized graph, metadata_props) of an ONNX ModelProto.

    Refuses initializers stored as external data (DESIGN.md §9: never read
    weights from outside the model file).
    """
    graph = None
    meta: dict[str, str] = {}
    for num, wt, v in _fields(data):
        if num == 7 and wt == 2:  # ModelProto.graph
            if graph is not None:
                raise ModelError("two graphs in one model")
            graph = bytes(v)
        elif num == 14 and wt == 2:  # ModelProto.metadata_props (StringStringEntryProto)
            k = val = ""
            for n2, w2, v2 in _fields(bytes(v)):
                if n2 == 1 and w2 == 2:
                    k = bytes(v2).decode("utf-8", "replace")
                elif n2 == 2 and w2 == 2:
                    val = bytes(v2).decode("utf-8", "replace")
            meta[k] = val
    if graph is None:
        raise ModelError("no graph")
    for num, wt, v in _fields(graph):
        if num in (5, 15) and wt == 2:  # initializer / sparse_initializer
            for n2, w2, v2 in _fields(bytes(v)):
                if (n2 == 13 and w2 == 2) or (n2 == 14 and w2 == 0 and v2 == 1):  # external_data / EXTERNAL
                    raise ModelError("weights stored as external data are refused")
    return hashlib.sha256(graph).hexdigest(), meta


# ---------------------------------------------------------------------------
# The cascade rule (shared with training/evaluation)
# ---------------------------------------------------------------------------
def cascade(p1: float, p2: float, t_low: float, t_high: float, t2: float = 0.5) -> tuple[bool, float, int]:
    """(jammed, score 0..1 with the decision at 0.5, stage) of one SSB."""
    p1, p2 = float(p1), float(p2)
    if p1 >= t_high:
        return True, 2 / 3 + (1 / 3) * (p1 - t_high) / max(1.0 - t_high, 1e-9), 1
    if p1 <= t_low:
        return False, (1 / 3) * p1 / max(t_low, 1e-9), 1
    if p2 >= t2:
        return True, 0.5 + (1 / 6) * (p2 - t2) / max(1.0 - t2, 1e-9), 2
    return False, 1 / 3 + (1 / 6) * p2 / max(t2, 1e-9), 2


def cascade_arrays(p1: np.ndarray, p2: np.ndarray, t_low: float, t_high: float, t2: float = 0.5):
    """Vectorised :func:`cascade`: (jammed bool, score, stage) arrays."""
    p1 = np.asarray(p1, np.float64)
    p2 = np.asarray(p2, np.float64)
    hi = p1 >= t_high
    lo = (~hi) & (p1 <= t_low)
    mid = ~(hi | lo)
    s2 = np.where(p2 >= t2, 0.5 + (1 / 6) * (p2 - t2) / max(1.0 - t2, 1e-9), 1 / 3 + (1 / 6) * p2 / max(t2, 1e-9))
    score = np.where(hi, 2 / 3 + (1 / 3) * (p1 - t_high) / max(1.0 - t_high, 1e-9),
                     np.where(lo, (1 / 3) * p1 / max(t_low, 1e-9), s2))
    jammed = hi | (mid & (p2 >= t2))
    stage = np.where(mid, 2, 1)
    return jammed, np.clip(score, 0.0, 1.0), stage


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------
def resolve_model_path(path: Optional[str | Path]) -> Path:
    """A model file, or a directory holding ``dtddnn.onnx``; None: the shipped model."""
    if path is None:
        return DEFAULT_MODEL_PATH
    p = Path(path)
    if p.is_dir():
        p = p / "dtddnn.onnx"
    return p


def read_verified(path: str | Path) -> tuple[bytes, dict]:
    """The model's bytes and metadata after the checks (its feature version one
    this ssbwatch computes, :data:`detector.features.FEATURE_VERSIONS`, with that
    version's feature list); ModelError names the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelError(f"{p}: model file is {size} bytes (more than {MAX_MODEL_BYTES}); refused")
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read model: {exc.strerror or exc}") from None
    try:
        digest, meta = parse_model_bytes(data)
    except ModelError as exc:
        raise ModelError(f"{p}: not a valid ssbwatch ONNX model ({exc})") from None
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelError(f"{p}: not an ssbwatch DT-DDNN model (metadata lacks {missing})")
    if meta["model_format"] != MODEL_FORMAT:
        raise ModelError(f"{p}: model format {meta['model_format']!r}, this ssbwatch reads {MODEL_FORMAT!r}")
    if meta["weights_sha256"] != digest:
        raise ModelError(f"{p}: checksum mismatch: the weights' sha256 is {digest[:16]}..., the metadata says "
                         f"{meta['weights_sha256'][:16]}...: the file is corrupt or was modified")
    if meta["feature_version"] not in FEATURE_VERSIONS:
        raise ModelError(f"{p}: model was trained on features {meta['feature_version']!r}, this ssbwatch computes "
                         f"{' or '.join(repr(v) for v in FEATURE_VERSIONS)}: retrain it (ssbwatch train) or use a "
                         f"matching model")
    if meta["feature_names_sha256"] != feature_names_sha256(feature_names_of(meta["feature_version"])):
        raise ModelError(f"{p}: model's feature list differs from this ssbwatch's {meta['feature_version']}; "
                         f"retrain it")
    return data, meta


def make_session(data: bytes, path: str | Path = "<bytes>"):
    """An onnxruntime session with the edge settings (1 thread, sequential, CPU)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: onnxruntime cannot load the model: {exc}") from None


# A calibrated site's floor under the model's thresholds. Calibration scores the site's
# own clean SSBs against the baseline it learnt from them (pipeline.site_clean_scores); where
# that quantile of their p1 or p2 stands over the model's threshold -- a site unlike the
# training mix to the model, whose clean SSBs it already calls jammed -- the site's threshold
# is set over it, by CLEAN_SCORE_MARGIN in logit units (the calibration's SSBs read their own
# baseline: later clean SSBs scatter wider), at most CLEAN_SCORE_MAX_RAISE over the model's.
# Elsewhere the model's thresholds stand. (bench/receiver_eval.py cells --sites 16 --seed 1
# --extra 1: two sites of three co-timed cells, 7 and 2 clean SSBs jammed by DNN-2 at p2
# 0.991-0.996 over its 0.988, their calibrations' own SSBs up to 0.998; figures in docs/CALIBRATION.md.)
CLEAN_SCORE_QUANTILE = 0.99  # (of 100 clean SSBs or fewer: their highest)
CLEAN_SCORE_MARGIN = 0.5
CLEAN_SCORE_MAX_RAISE = 4.0
# Where even that raise leaves the site's clean SSBs over a threshold, the model cannot be
# calibrated to the site: the model's verdicts there would be false alarms on every SSB.
# Such a site's SSBs are scored by the classical detector against the same baseline, which
# learns whatever the site's clean SSBs hold (DTDDNNDetector.site_falls_back; record
# "detector": "classical"). The case met: a co-channel cell more than a few CPs off the
# serving cell's timing (an unsynchronised FDD neighbour), whose SSB overlaps the serving
# one -- the model was trained with neighbours within +-0.4 CP and saturates (p = 1) on
# the calibration's own SSBs. bench/receiver_eval.py mistimed --calibrated: figures in docs/CALIBRATION.md.


# DNN-2's stream context (a model whose metadata holds "context_ssbs" = K > 0; since stop 63).
# A jammer stays on for many SSBs; a clean SSB's scatter does not carry over to the next. Beside
# an SSB's own features and DNN-1's logit of them, DNN-2 reads how DNN-1 read the stream's K
# SSBs before it (the same cell and mode -- calibrated or not): the mean of their DNN-1 logits
# and how full that history is (n / K; at n = 0 the graph puts the SSB's own logit in the
# mean's place). DNN-1 reads the SSB alone, as the paper's first stage and the single-threshold
# baseline do. The pipeline keeps the history (ScoringPipeline._context), evaluation and
# calibration run a recording's SSBs in order (DTDDNNDetector.probs_stream), training builds
# it from a capture's SSBs in stream order (context_rows): all through context_vector.
def context_vector(history: np.ndarray, k: int) -> np.ndarray:
    """DNN-2's context of an SSB: float32 (d + 1,), the mean of the last min(m, k)
    rows of ``history`` (shape (m, d): the stream's earlier SSBs' readings -- DNN-1's
    logit, d = 1 --, oldest first; zeros where m = 0), then min(m, k) / k."""
    history = np.asarray(history)
    m = min(len(history), k)
    out = np.zeros(history.shape[1] + 1, np.float32)
    if m:
        out[:-1] = np.asarray(history[len(history) - m :], np.float64).mean(axis=0)
    out[-1] = m / k
    return out


def context_rows(values: np.ndarray, stream: np.ndarray, k: int) -> np.ndarray:
    """:func:`context_vector` of every row of ``values`` ((n, d), in stream order) from
    the rows before it with the same ``stream`` id ((n,): a capture's, a cell's):
    float32 (n, d + 1)."""
    values = np.asarray(values)
    out = np.empty((len(values), values.shape[1] + 1), np.float32)
    seen: dict = {}
    for i, sid in enumerate(np.asarray(stream).tolist()):
        rows = seen.setdefault(sid, [])
        out[i] = context_vector(values[rows[-k:]], k)
        rows.append(i)
    return out


def logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def site_threshold(t: float, clean_logit: float) -> float:
    """The model's threshold ``t`` at a site whose clean SSBs reach ``clean_logit``."""
    z = min(clean_logit + CLEAN_SCORE_MARGIN, logit(t) + CLEAN_SCORE_MAX_RAISE)
    return max(t, sigmoid(z))


def site_out_of_reach(t: float, clean_logit: float) -> bool:
    """Whether a site whose clean SSBs reach ``clean_logit`` stands over the
    highest that the model's threshold ``t`` may be raised to (CLEAN_SCORE_MAX_RAISE)."""
    return clean_logit + CLEAN_SCORE_MARGIN > logit(t) + CLEAN_SCORE_MAX_RAISE


class DTDDNNDetector:
    """The Detector protocol (detector.pipeline) on the DT-DDNN ONNX model."""

    name = "dt-ddnn"

    def __init__(self, path: Optional[str | Path] = None):
        self.path = resolve_model_path(path)
        data, meta = read_verified(self.path)
        self.meta = meta
        self.t_low = float(meta["threshold_low"])
        self.t_high = float(meta["threshold_high"])
        self.t2 = float(meta["threshold_stage2"])
        self.weights_sha256 = str(meta["weights_sha256"])
        # optional per-mode thresholds for SSBs scored without a site baseline
        self.t_uncal = (float(meta.get("threshold_low_uncal", self.t_low)),
                        float(meta.get("threshold_high_uncal", self.t_high)),
                        float(meta.get("threshold_stage2_uncal", self.t2)))
        if any(not 0.0 <= lo <= hi <= 1.0 or not 0.0 < t2 < 1.0
               for lo, hi, t2 in ((self.t_low, self.t_high, self.t2), self.t_uncal)):
            raise ModelError(f"{self.path}: thresholds out of order (low {self.t_low}, high {self.t_high}, "
                             f"stage 2 {self.t2})")
        self.session = make_session(data, self.path)
        # the columns of the feature vector this model reads (a model of an earlier feature
        # version: a subset, detector.features.FEATURE_VERSIONS), None: all of them
        cols = FEATURE_VERSIONS[meta["feature_version"]]
        self._cols = None if len(cols) == N_FEATURES else np.array(cols, np.intp)
        try:
            self.context_ssbs = int(meta.get("context_ssbs", "0"))  # DNN-2's stream context (0: none)
        except ValueError:
            raise ModelError(f"{self.path}: context_ssbs {meta['context_ssbs']!r} is not an integer") from None
        if not 0 <= self.context_ssbs <= 64:
            raise ModelError(f"{self.path}: context_ssbs {self.context_ssbs} out of range 0..64")
        self.n_features = len(cols)
        # the input row: the features, then (a context model) the context: DNN-1's mean logit of the
        # SSBs before, and the history's fill
        self.n_inputs = len(cols) + (2 if self.context_ssbs else 0)
        ins = self.session.get_inputs()
        if len(ins) != 1 or list(ins[0].shape) != [1, self.n_inputs]:
            raise ModelError(f"{self.path}: input must be [1, {self.n_inputs}] "
                             f"{'features and context' if self.context_ssbs else 'features'}, got "
                             f"{[(i.name, i.shape) for i in ins]}")
        self._in = ins[0].name
        outs = [o.name for o in self.session.get_outputs()]
        want = ["p1", "p2", "a1"] if self.context_ssbs else ["p1", "p2"]
        if outs[: len(want)] != want:
            raise ModelError(f"{self.path}: outputs must be {', '.join(want)}; got {outs}")
        self._outs = want
        self._buf = np.zeros((1, self.n_inputs), np.float32)  # fixed shape: no allocator growth
        self.last_stage = 1
        self.last_p1 = self.last_p2 = 0.0
        self.last_a1 = 0.0  # DNN-1's logit of the last SSB run (a context model's output a1)
        self.last_name = self.name  # the detector that gave the last verdict (see site_falls_back)

    def _fill(self, buf: np.ndarray, f: np.ndarray, context: Optional[np.ndarray]) -> None:
        """Write the input row of features ``f`` (N_FEATURES,) and, for a context model,
        ``context`` (:func:`context_vector` of DNN-1's logits, (2,); None: no history) into
        ``buf`` (n_inputs,)."""
        n = self.n_features
        buf[:n] = f if self._cols is None else f[self._cols]
        if self.context_ssbs:
            buf[n : n + 2] = 0.0 if context is None else np.asarray(context, np.float32).reshape(2)

    def probs(self, feats: np.ndarray, context: Optional[np.ndarray] = None) -> tuple[float, float]:
        """(p1, p2) of one feature vector (N_FEATURES,); ``context``: DNN-2's stream
        context (:func:`context_vector` of the DNN-1 logits of the SSBs before; a model
        without context ignores it; None: none before). Sets ``last_a1``."""
        self._fill(self._buf[0], np.asarray(feats, np.float32).reshape(N_FEATURES), context)
        p1, p2, self.last_a1 = self._run(self._buf)
        return p1, p2

    def _run(self, buf: np.ndarray) -> tuple[float, float, float]:
        """(p1, p2, DNN-1's logit: a context model's output a1, else 0.0) of the one
        input row in ``buf`` float32 (1, n_inputs)."""
        out = self.session.run(self._outs, {self._in: buf})
        a1 = float(out[2].reshape(-1)[0]) if self.context_ssbs else 0.0
        return float(out[0].reshape(-1)[0]), float(out[1].reshape(-1)[0]), a1

    def probs_many(self, feats: np.ndarray) -> np.ndarray:
        """(p1, p2) of each row of ``feats`` (n, N_FEATURES), each SSB alone: float64
        (n, 2). Its own input buffer: safe beside :meth:`probs` in another thread (a
        baseline learnt in the background while the daemon scores)."""
        x = np.asarray(feats, np.float32).reshape(-1, N_FEATURES)
        out = np.zeros((len(x), 2))
        buf = np.zeros((1, self.n_inputs), np.float32)
        for i, row in enumerate(x):
            self._fill(buf[0], row, None)
            out[i] = self._run(buf)[:2]
        return out

    def probs_stream(self, feats: np.ndarray, stream: np.ndarray) -> np.ndarray:
        """(p1, p2) of each row of ``feats`` (n, N_FEATURES), in stream order, each with
        DNN-2's context of the rows before it of the same ``stream`` id ((n,): a
        capture's, a cell's), as the pipeline scores a stream: float64 (n, 2); a model
        without context: :meth:`probs_many`."""
        if not self.context_ssbs:
            return self.probs_many(feats)
        x = np.asarray(feats, np.float32).reshape(-1, N_FEATURES)
        out = np.zeros((len(x), 2))
        buf = np.zeros((1, self.n_inputs), np.float32)
        hist: dict = {}
        for i, (row, sid) in enumerate(zip(x, np.asarray(stream).tolist())):
            h = hist.setdefault(sid, [])
            self._fill(buf[0], row, context_vector(np.array(h[-self.context_ssbs :]).reshape(-1, 1),
                                                   self.context_ssbs))
            p1, p2, a1 = self._run(buf)
            out[i] = p1, p2
            h.append(a1)
        return out

    def thresholds(self, calibrated: bool) -> tuple[float, float, float]:
        """(low, high, stage 2) for SSBs with (True) or without a site baseline."""
        return (self.t_low, self.t_high, self.t2) if calibrated else self.t_uncal

    def thresholds_at(self, base) -> tuple[float, float, float]:
        """The calibrated thresholds at the site of baseline ``base`` (a
        ConfigBaseline): over the model's where the site's clean SSBs score
        high under this model (CLEAN_SCORE_MARGIN), else the model's."""
        lo, hi, t2 = self.thresholds(True)
        clean = getattr(base, "clean_scores", {}).get(self.weights_sha256)
        if clean:
            hi, t2 = site_threshold(hi, clean[0]), site_threshold(t2, clean[1])
        return lo, hi, t2

    def site_falls_back(self, base) -> bool:
        """Whether the site of baseline ``base`` (a ConfigBaseline) is one this
        model cannot be calibrated to: its clean SSBs score over the highest
        that a threshold may be raised to (see CLEAN_SCORE_MAX_RAISE), and the
        classical detector scores its SSBs instead."""
        clean = getattr(base, "clean_scores", {}).get(self.weights_sha256)
        if not clean:
            return False
        _, hi, t2 = self.thresholds(True)
        return site_out_of_reach(hi, clean[0]) or site_out_of_reach(t2, clean[1])

    def score(self, feats: np.ndarray, base, context: Optional[np.ndarray] = None) -> tuple[bool, float, str]:
        """(jammed, score, mode) of one SSB's features against site baseline ``base``
        (None: uncalibrated); ``context``: DNN-2's stream context (see :meth:`probs`)."""
        f = np.asarray(feats).reshape(-1)
        calibrated = float(f[_CAL_IDX]) > 0.5
        if calibrated and base is not None and self.site_falls_back(base):
            from .classical import SITE_FALLBACK

            jammed, score, mode = SITE_FALLBACK.score(feats, base)
            if self.context_ssbs:
                self.probs(feats, context)  # (DNN-1's logit, for the stream's context)
            self.last_stage = 1  # (one test, as the classical detector's records say)
            self.last_name = SITE_FALLBACK.name
            return jammed, score, mode
        p1, p2 = self.probs(feats, context)
        jammed, score, stage = cascade(p1, p2, *(self.thresholds_at(base) if calibrated and base is not None
                                                 else self.thresholds(calibrated)))
        self.last_stage, self.last_p1, self.last_p2 = stage, p1, p2
        self.last_name = self.name
        return jammed, float(score), ("calibrated" if base is not None else "uncalibrated")

    def timing_us(self, n: int = 2000) -> float:
        """Median-free mean latency of one score() (µs) on a fixed vector."""
        x = np.zeros(N_FEATURES, np.float32)
        for _ in range(50):
            self.probs(x)
        t0 = time.perf_counter()
        for _ in range(n):
            self.score(x, None)
        return (time.perf_counter() - t0) / n * 1e6

    def info(self) -> dict:
        m = self.meta
        out = {
            "path": str(self.path),
            "detector": self.name,
            "model_format": m.get("model_format"),
            "feature_version": m.get("feature_version"),
            "n_features": self.n_features,
            "context_ssbs": self.context_ssbs,
            "threshold_low": self.t_low,
            "threshold_high": self.t_high,
            "threshold_stage2": self.t2,
            "thresholds_uncalibrated": {"low": self.t_uncal[0], "high": self.t_uncal[1], "stage2": self.t_uncal[2]},
            "single_threshold": float(m.get("single_threshold", 0.5)),
            # what DNN-2 reads (a model from before the option: the features alone)
            "stage2_input": m.get("stage2_input", "features"),
            "opset": int(m["opset"]) if "opset" in m else None,
            "training_data_sha256": m.get("training_data_sha256"),
            "weights_sha256": m.get("weights_sha256"),
            "created": m.get("created"),
        }
        for k in ("scs_khz", "sample_rates_hz", "metrics", "train_config"):
            if k in m:
                try:
                    out[k] = json.loads(m[k])
                except json.JSONDecodeError:
                    out[k] = m[k]
        return out
