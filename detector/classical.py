"""Classical detector: an energy test on the SSB's null REs and its residual
after channel estimation (the first verdict, and the baseline the DT-DDNN is
compared with).

Calibrated mode (a site baseline for this configuration): an SSB is jammed when
its interference-to-signal ratio -- over the null REs (EPNRE) or over all
residual REs -- rises above the site's clean level by more than the clean
SSBs' own upper quantile allows, and never by less than the noise floor may
move between recordings (baseline.NOISE_FLOOR_DRIFT_DB). Both statistics are
relative to the SSB's own power, so a receiver with another gain does not
raise false alarms.

Uncalibrated mode: jammed when the SSB's estimated SNR over its null REs is
below ``uncal_min_snr_db`` (clean cells on air sit 13-40 dB above their null
REs); narrowband and weak jammers need a baseline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .baseline import NOISE_FLOOR_DRIFT_DB, ConfigBaseline
from .features import FEATURE_NAMES

_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class ClassicalConfig:
    uncal_min_snr_db: float = 10.0
    # never test closer than this to the clean median: the noise floor may move by
    # NOISE_FLOOR_DRIFT_DB between the calibration and a later recording
    min_rise_db: float = NOISE_FLOOR_DRIFT_DB + 1.0
    margin_db: float = 0.1  # added to the clean q99.5
    k_spread: float = 3.5  # and at least this many robust standard deviations above it
    slope_db: float = 0.5  # width of the score's logistic around the threshold
    # calibrated mode: features tested beside the EPNRE and the residual, the same way
    extra_features: tuple[str, ...] = ()


# The classical detector as it scores a calibrated site that the DT-DDNN cannot be calibrated
# to (model.DTDDNNDetector.site_falls_back, pipeline.SITE_MISTIMED_RHO2): such a site holds a
# loud co-channel cell off its timing, whose energy the baseline's EPNRE and residual levels
# take in, so that what hides under it passes them; the peak of the interference's profile
# over the SSB's 20 RBs (profile_peak_db) does not -- that cell's residual spreads over them
# all, a tone or narrowband jammer does not. bench/receiver_eval.py mistimed --calibrated
# --sites 6 --seed 13, neighbours 40 CPs early / late: Pd 54.1 -> 62.2 % / 42.3 -> 55.4 %, FAR
# 0/60 and 1/60 both.
SITE_FALLBACK_CONFIG = ClassicalConfig(extra_features=("profile_peak_db",))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


class ClassicalDetector:
    name = "classical"

    def __init__(self, config: ClassicalConfig = ClassicalConfig()):
        self.cfg = config

    def thresholds(self, base: ConfigBaseline) -> dict[str, float]:
        out = {}
        for n in ("epnre_rel_db", "res_all_rel_db") + tuple(f for f in self.cfg.extra_features if f in base.stats):
            st = base.stats[n]
            # a calibration of a few dozen SSBs sees only part of the clean tail: the
            # robust spread (MAD) extrapolates it
            out[n] = st.median + max(self.cfg.min_rise_db, st.q995 - st.median + self.cfg.margin_db,
                                     self.cfg.k_spread * st.spread)
        return out

    def score(self, feats: np.ndarray, base: Optional[ConfigBaseline]) -> tuple[bool, float, str]:
        """(jammed, score in 0..1, mode) of one SSB's feature vector."""
        c = self.cfg
        if base is None:
            snr = float(feats[_IDX["snr_est_db"]])
            z = (c.uncal_min_snr_db - snr) / c.slope_db
            return bool(snr < c.uncal_min_snr_db), _sigmoid(z), "uncalibrated"
        best = -1e9
        for n, thr in self.thresholds(base).items():
            best = max(best, (float(feats[_IDX[n]]) - thr) / c.slope_db)
        return bool(best > 0), _sigmoid(best), "calibrated"


# The one classical detector of SITE_FALLBACK_CONFIG (it holds no state): what scores a site the
# model cannot be calibrated to (model.DTDDNNDetector.score) and a site's own mistimed cell
# (pipeline.SITE_MISTIMED_RHO2).
SITE_FALLBACK = ClassicalDetector(SITE_FALLBACK_CONFIG)
