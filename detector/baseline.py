"""Site baseline (``ssbwatch calibrate``): clean statistics per configuration.

A configuration is (SCS, sample rate, datatype). For each, the baseline keeps
robust statistics (median, spread, upper quantiles) of the features that an
energy test needs, learned from SSBs of captures the operator declares clean.
Absolute levels differ between receivers, so the detector's tests use the
gain-invariant features (energies relative to the SSB's own power); the
absolute noise floor is kept for reference and for the model's site features.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .features import FEATURE_NAMES, FEATURE_VERSION, FEATURE_VERSIONS, SITE_MIN_SPREAD_DB, SITE_STATS, Baseline

SCHEMA_VERSION = 1
# How far (dB) a site's noise floor may move relative to its cell between the
# calibration recording and a later one without being called jamming: another
# receiver gain (and so noise figure), AGC, temperature, the cell's path on
# another day. The shipped model is trained with calibration companions drawn
# this far from their capture (configs/sim-train.yaml, calibration_snr_drift_db);
# the classical detector never tests closer than this to the clean median. A
# white noise jammer that raises the floor by less than this is, alone,
# indistinguishable from such a move; recalibrate after changing the receiver.
NOISE_FLOOR_DRIFT_DB = 3.0
# A gNB that sweeps its SSBs over beams (FR1 massive MIMO: up to 8) reaches a fixed
# receiver with each SSB index at its own power, 10-20 dB apart: a weak beam's SSB has
# more interference relative to its own power than the strong ones, every time. With
# at least this many clean SSBs of each of two or more indices, the baseline keeps
# each index's median and spread (a weak beam's features scatter more), and an SSB
# is compared to its own index's clean level (bench/receiver_eval.py beams).
PER_INDEX_MIN_SSBS = 16
# An index's view of a statistic's tails (q99, q995, max: the rules' levels) is the pooled
# tails' width scaled by the index's spread over the pooled one, both floored at
# features.SITE_MIN_SPREAD_DB, as in the site z-scores. A statistic that sits at a floor on
# most clean SSBs -- the band excess (pipeline.AUX_BAND_ISR: BAND_ISR_NONE_DB where the null
# REs stand at the band floor) -- has a spread of ~0 where its tail is a rare reading: unfloored,
# an index whose calibration SSBs all sat at the floor (k = 0) lost the pooled tail, and its
# band-excess level fell to BAND_EXCESS_SITE_MIN_DB, under what the site's clean SSBs reach
# (stop 67: a field-mix site, two unsynchronised neighbours with traffic, calibrated on 4 x 100 ms,
# clean band excess up to -9.6 dB against the cell on its other indices: 55 of 700 clean SSBs
# of a later recording jammed by the rule at -34 dB; bench/events.py --sites 32 --seed 2).
STAT_FEATURES = tuple(dict.fromkeys((*SITE_STATS, "profile_peak_db", "sym_spread_db")))
_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


class BaselineError(ValueError):
    """A baseline file is missing, malformed or does not fit the capture."""


def config_key(scs_khz: int, sample_rate_hz: float, datatype: str) -> str:
    return f"{scs_khz}kHz/{sample_rate_hz / 1e6:g}Msps/{datatype}"


@dataclass
class FeatureStats:
    median: float
    spread: float  # 1.4826 * MAD: a robust standard deviation
    q99: float
    q995: float
    max: float

    @classmethod
    def of(cls, v: np.ndarray) -> "FeatureStats":
        v = np.asarray(v, dtype=np.float64)
        med = float(np.median(v))
        return cls(med, float(1.4826 * np.median(np.abs(v - med))), float(np.quantile(v, 0.99)),
                   float(np.quantile(v, 0.995)), float(v.max()))


@dataclass
class ConfigBaseline:
    scs_khz: int
    sample_rate_hz: float
    datatype: str
    n_ssb: int
    noise_floor_db: float  # median absolute EPNRE (file units per RE)
    pcis: list[int]
    stats: dict[str, FeatureStats] = field(default_factory=dict)
    # co-channel cells seen on the serving cell's SSB while clean, most often the
    # strongest first: the first is cancelled from every SSB's residual
    # (features._cancel_batch); a cell that was not there at calibration is not
    neighbours: list[int] = field(default_factory=list)
    # False: no neighbour is cancelled, at calibration nor when scoring (ssbwatch
    # calibrate --no-neighbour-cancel: a node too slow for the cancellation's
    # ~1.5 ms per SSB; a weak jammer then hides under the neighbour's residual)
    cancel_neighbour: bool = True
    # SSB index -> {feature: [its clean median minus the one in ``stats``, its spread]}
    # (beam sweeps; empty when the calibration did not see two indices PER_INDEX_MIN_SSBS times)
    per_index: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    # where the cell's SSB was at calibration: its centre frequency (Hz, None without a
    # capture centre) and its offset from the capture centre (Hz): the band a search that
    # finds no cell looked for (pipeline.ScoringPipeline._watch)
    ssb_freq_hz: Optional[float] = None
    ssb_offset_hz: Optional[float] = None
    # model weights sha256 -> [p1 logit, p2 logit, SSBs]: how that DT-DDNN scores this site's own
    # clean SSBs (their CLEAN_SCORE_QUANTILE; pipeline.site_clean_scores): the site's floor under
    # its thresholds (model.DTDDNNDetector.thresholds_at). Empty: the model's thresholds alone
    clean_scores: dict[str, list[float]] = field(default_factory=dict)
    # cells the calibration's cell searches saw off the serving cell's timing (an unsynchronised
    # neighbour: receiver.Acquisition.offtime_cells), neither the site's cells nor ``neighbours``:
    # never cancelled (its SSB does not sit on the serving SSB's grid). A later search that locks
    # onto one of them (two cells of similar power: which one a search finds first varies) is
    # the site's neighbour, scored uncalibrated, not a cell new since the calibration
    offtime_cells: list[int] = field(default_factory=list)
    # True: ``per_index`` holds only the far-off statistics of a calibration too short for a
    # level per index (_sparse_per_index), not a beam sweep's levels of every index
    per_index_sparse: bool = False

    def __post_init__(self):
        # (JSON object keys are strings)
        self.per_index = {int(i): {str(n): [float(v[0]), float(v[1])] for n, v in o.items()}
                          for i, o in self.per_index.items()}
        self._views: dict[int, ConfigBaseline] = {}

    def for_index(self, ssb_index: Optional[int]) -> "ConfigBaseline":
        """This baseline as an SSB of ``ssb_index`` sees it: its index's clean
        levels when the calibration had them, else the pooled ones."""
        off = self.per_index.get(ssb_index) if ssb_index is not None else None
        if not off:
            return self
        view = self._views.get(ssb_index)
        if view is None:
            stats = dict(self.stats)
            for n, (o, sp) in off.items():
                st = stats.get(n)
                if st is not None:  # the index's median and spread, the tail widths scaled with the spread
                    k = max(sp, SITE_MIN_SPREAD_DB) / max(st.spread, SITE_MIN_SPREAD_DB)  # (PER_INDEX_TAIL)
                    m = st.median + o
                    stats[n] = FeatureStats(m, sp, m + k * (st.q99 - st.median), m + k * (st.q995 - st.median),
                                            m + k * (st.max - st.median))
            view = self._views[ssb_index] = ConfigBaseline(
                self.scs_khz, self.sample_rate_hz, self.datatype, self.n_ssb, self.noise_floor_db, self.pcis, stats,
                self.neighbours, self.cancel_neighbour, ssb_freq_hz=self.ssb_freq_hz, ssb_offset_hz=self.ssb_offset_hz,
                clean_scores=self.clean_scores, offtime_cells=self.offtime_cells,
                per_index_sparse=self.per_index_sparse)
        return view

    def to_dict(self) -> dict:
        """JSON-able form (the baseline file's and the dataset manifest's)."""
        return {**{k: v for k, v in asdict(self).items() if k not in ("stats", "per_index")},
                "stats": {n: asdict(st) for n, st in self.stats.items()},
                "per_index": {str(i): o for i, o in self.per_index.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfigBaseline":
        """:meth:`to_dict` back (KeyError / TypeError on a malformed one)."""
        d = dict(d)
        stats = {n: FeatureStats(**st) for n, st in d.pop("stats").items()}
        return cls(**d, stats=stats)

    @property
    def key(self) -> str:
        return config_key(self.scs_khz, self.sample_rate_hz, self.datatype)

    def site(self) -> Baseline:
        """What the feature function needs from this baseline. Where it lists a
        co-channel cell with a serving cell's N_ID2 (TS 38.211 §7.4.2.1: PCI =
        3 N_ID1 + N_ID2), that cell's PSS, the same sequence on the same REs,
        adds its channel to the serving cell's PSS, and the PSS/SSS gain moves
        with the two channels' relative phase, which fading and the gNBs' clocks
        turn from one recording to the next: no site statistic (a simulated
        site, such a cell 4-5 dB under the serving one, calibrated on 40 ms and
        scored on another recording: the gain's rise 5.9 dB, z 59, and 16 of 16
        clean SSBs jammed)."""
        return Baseline(median_db={n: self.stats[n].median for n in SITE_STATS},
                        spread_db={n: self.stats[n].spread for n in SITE_STATS},
                        not_site=frozenset({"pss_sss_gain_dev_db"}) if self.same_nid2_neighbour else frozenset())

    @property
    def known_cells(self) -> set[int]:
        """The cells the site had on the air while clean: its own, its co-channel
        neighbours and the cells seen off its timing."""
        return {int(p) for p in (*self.pcis, *self.neighbours, *self.offtime_cells)}

    @property
    def same_nid2_neighbour(self) -> bool:
        """Whether a listed neighbour has a serving cell's N_ID2 (its PSS adds to that cell's)."""
        return any(int(nb) % 3 == int(p) % 3 for nb in self.neighbours for p in self.pcis)


@dataclass
class SiteBaseline:
    configs: dict[str, ConfigBaseline]
    feature_version: str = FEATURE_VERSION
    sources: list[str] = field(default_factory=list)

    def lookup(self, scs_khz: int, sample_rate_hz: float, datatype: str) -> Optional[ConfigBaseline]:
        """Exact configuration, else the same SCS and sample rate with another
        datatype (the tests are gain-invariant), else None."""
        exact = self.configs.get(config_key(scs_khz, sample_rate_hz, datatype))
        if exact is not None:
            return exact
        for c in self.configs.values():
            if c.scs_khz == scs_khz and abs(c.sample_rate_hz - sample_rate_hz) < 1.0:
                return c
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "tool": "ssbwatch calibrate",
                "feature_version": self.feature_version,
                "sources": self.sources,
                "configs": [c.to_dict() for c in self.configs.values()],
            },
            indent=1,
        )

    def save(self, path: str | Path) -> None:
        p = Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | Path) -> "SiteBaseline":
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except OSError as exc:
            raise BaselineError(f"{p}: cannot read baseline: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{p}: baseline is not valid JSON: {exc}") from None
        if not isinstance(d, dict) or d.get("schema_version") != SCHEMA_VERSION:
            raise BaselineError(f"{p}: not an ssbwatch baseline (schema_version {SCHEMA_VERSION} expected)")
        if d.get("feature_version") not in FEATURE_VERSIONS:  # (their site statistics are the same)
            raise BaselineError(
                f"{p}: baseline was made with features {d.get('feature_version')!r}, this ssbwatch uses "
                f"{FEATURE_VERSION!r}: run ssbwatch calibrate again"
            )
        configs = {}
        try:
            for c in d["configs"]:
                cb = ConfigBaseline.from_dict(c)
                missing = [n for n in STAT_FEATURES if n not in cb.stats]
                if missing:
                    raise BaselineError(f"{p}: config {cb.key} lacks statistics {missing}")
                configs[cb.key] = cb
        except (KeyError, TypeError) as exc:
            raise BaselineError(f"{p}: malformed baseline entry: {exc}") from None
        return cls(configs, d["feature_version"], list(d.get("sources", [])))


# A calibration too short for per-index levels (PER_INDEX_MIN_SSBS; one burst of a 10 ms
# recording holds one SSB per index) may still show an index whose clean SSBs stand far off
# the others on some statistic: an unsynchronised neighbour whose SSB lands on the same
# indices of every burst (its timing holds from one burst to the next; a simulated field
# site, a neighbour 6 dB under the cell: indices 1, 3 and 5 of 8 with their null REs 33 dB
# over the rest's, called jammed again in the next recording), or a beam much weaker than the
# rest. Where a statistic of an index's SSBs (their median) reads more interference than the
# others' median by PER_INDEX_SPARSE_SPREADS of their robust spreads, and
# PER_INDEX_SPARSE_MIN_DB at least, that index keeps that statistic's level as its own (its
# spread the others'); every other statistic, and every other index, keeps the pooled one.
# Only that way: an index quieter than the rest at calibration (traffic of a loaded
# neighbour that missed it in that burst) is not held to a lower level than the others.
PER_INDEX_SPARSE_SPREADS = 6.0
PER_INDEX_SPARSE_MIN_DB = 3.0


def _sparse_per_index(x: np.ndarray, idx: np.ndarray, names) -> tuple[np.ndarray, dict]:
    """(x with each far-off index statistic moved onto the pooled median, the per-index
    levels {index: {name: [its median minus the pooled one, the pooled spread]}}) of
    statistics x float64 (n, len(names)) of SSBs of indices idx (n,); see
    PER_INDEX_SPARSE_SPREADS."""
    groups = {int(i): np.flatnonzero(idx == i) for i in np.unique(idx)}
    meds = {i: np.median(x[g], axis=0) for i, g in groups.items()}
    med_all = np.median(np.stack(list(meds.values())), axis=0)  # the indices' typical level (each index once)
    far = {i: np.abs(m - med_all) >= PER_INDEX_SPARSE_MIN_DB for i, m in meds.items()}
    rest = np.ones(x.shape, bool)
    for i, g in groups.items():
        rest[np.ix_(g, np.flatnonzero(far[i]))] = False
    out = x.copy()
    per_index: dict[int, dict[str, list[float]]] = {}
    for k, n in enumerate(names):
        v = x[rest[:, k], k]
        if v.size < 2:
            continue
        centre = float(np.median(v))
        spread = 1.4826 * float(np.median(np.abs(v - centre)))
        for i, g in groups.items():
            off = float(meds[i][k]) - centre
            worse = -off if n == "snr_est_db" else off  # (the SNR falls where the rest rise)
            if far[i][k] and worse >= max(PER_INDEX_SPARSE_SPREADS * spread, PER_INDEX_SPARSE_MIN_DB):
                out[g, k] += centre - meds[i][k]
                per_index.setdefault(i, {})[n] = [off, spread]
    return out, per_index


def build_config_baseline(scs_khz: int, sample_rate_hz: float, datatype: str, feats: np.ndarray,
                          epnre_abs_db: np.ndarray, pcis: list[int], neighbours=(),
                          cancel_neighbour: bool = True, ssb_index=None, ssb_freq_hz: Optional[float] = None,
                          ssb_offset_hz: Optional[float] = None, aux: Optional[dict] = None) -> ConfigBaseline:
    """Statistics of clean SSBs: feats (n, N_FEATURES), epnre_abs_db (n,);
    aux: statistics kept beside the features (name -> (n,), features.AUX_PSS_SHAPE),
    whose statistics are kept with the features';
    neighbours: the co-channel cells seen (:func:`detector.pipeline.site_cells`),
    whose first was cancelled from feats unless ``cancel_neighbour`` is False;
    ssb_index (n,): each SSB's index, for the per-index levels of a beam sweep
    (PER_INDEX_MIN_SSBS)."""
    cols = [_IDX[n] for n in STAT_FEATURES]
    x = np.asarray(feats, dtype=np.float64)[:, cols]
    names = STAT_FEATURES
    if aux:
        names = STAT_FEATURES + tuple(aux)
        x = np.column_stack([x] + [np.asarray(v, np.float64) for v in aux.values()])
    per_index: dict[int, dict[str, list[float]]] = {}
    sparse = False
    if ssb_index is not None:
        idx = np.asarray(ssb_index)
        groups = {int(i): np.flatnonzero(idx == i) for i in np.unique(idx)}
        groups = {i: g for i, g in groups.items() if g.size >= PER_INDEX_MIN_SSBS}
        if len(groups) >= 2:
            pooled = np.median(x, axis=0)
            x = x.copy()
            meds, spreads = {}, {}
            for i, g in groups.items():
                meds[i] = np.median(x[g], axis=0)
                spreads[i] = 1.4826 * np.median(np.abs(x[g] - meds[i]), axis=0)
                x[g] += pooled - meds[i]  # each index onto the pooled level: the spreads within an index
            centre = np.median(x, axis=0)
            per_index = {i: {n: [float(meds[i][k] - centre[k]), float(spreads[i][k])]
                             for k, n in enumerate(names)} for i in meds}
        elif len(np.unique(idx)) >= 2:
            x, per_index = _sparse_per_index(x, idx, names)
            sparse = bool(per_index)
    stats = {n: FeatureStats.of(x[:, k]) for k, n in enumerate(names)}
    return ConfigBaseline(scs_khz, float(sample_rate_hz), datatype, int(feats.shape[0]),
                          float(np.median(epnre_abs_db)), sorted(set(int(p) for p in pcis)), stats,
                          [int(p) for p in neighbours], bool(cancel_neighbour), per_index,
                          None if ssb_freq_hz is None else float(ssb_freq_hz),
                          None if ssb_offset_hz is None else float(ssb_offset_hz), per_index_sparse=sparse)


def site_neighbours(others) -> list[int]:
    """The co-channel cells of clean observations (each an ``others`` tuple,
    strongest first), the most often strongest first."""
    count: dict[int, int] = {}
    for o in others:
        if o:
            count[int(o[0])] = count.get(int(o[0]), 0) + 1
    return sorted(count, key=lambda p: (-count[p], p))


# The co-channel cells a calibrated site cancels from each SSB's residual: the first
# NB_CANCEL_MAX of its baseline's neighbours (strongest first), the first jointly with the
# serving cell (features._cancel_batch), the others each from what that left
# (features._cancel_extra, ~0.2 ms per SSB each)
NB_CANCEL_MAX = 2


def cancel_pcis(bases) -> list[list[int]]:
    """The neighbours each SSB's residual cancels: its baseline's first
    NB_CANCEL_MAX neighbours, padded with -1 (all -1 without a baseline,
    neighbours or with the cancellation off)."""
    return [cancel_row(b.neighbours if b is not None and b.cancel_neighbour else ()) for b in bases]


def cancel_row(neighbours) -> list[int]:
    """The first NB_CANCEL_MAX of ``neighbours``, padded with -1 to that length."""
    row = [int(p) for p in list(neighbours)[:NB_CANCEL_MAX]]
    return row + [-1] * (NB_CANCEL_MAX - len(row))
