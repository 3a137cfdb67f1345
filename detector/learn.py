"""The site baseline learned by the daemon over a declared quiet period.

``ssbwatch calibrate`` learns a site's baseline from recordings declared clean
(DESIGN.md §6). On an edge node the daemon can do the same on its own stream,
without writing the recording to disk (10 s at 30.72 Msps are 1.2 GB of ci16):
with ``detector.learn_baseline_s`` > 0 and no file yet at ``detector.baseline``,
the first ``learn_baseline_s`` seconds of stream are the quiet period. The SSBs
of that period are scored uncalibrated as usual; their observations are also
kept (up to LEARN_MAX_SSBS, a uniform sample of the period, in stream order)
and, once the period is over and at least LEARN_MIN_SSBS are kept, turned into
a baseline exactly as ``calibrate`` turns a recording's
(:func:`detector.pipeline.config_baseline`, in a thread beside the scoring),
written atomically to ``detector.baseline`` and used from the next SSB on. An
existing file is loaded instead and never replaced: a restart of the service
does not learn again (delete the file to learn anew).

A quiet period that is not quiet poisons the baseline. A jamming alert raised
during it (the uncalibrated verdicts) starts the period over, with nothing kept
from before, and it cannot end while an alert is active; a jammer the
uncalibrated detector cannot see (a white barrage) is the operator's to rule
out, as for ``calibrate``.

:class:`BaselineLearner` is the stateful part (fed the pipeline's observations
through ``ScoringPipeline.observation_tap`` and the stream position by the
daemon); it does no I/O but the baseline file it writes.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import numpy as np

from .baseline import SiteBaseline
from .pipeline import calibration_observations, config_baseline
from .receiver import SSBObservation

# observations kept over the period (a uniform sample beyond that: reservoir sampling). Building
# the baseline costs ~0.8 ms per SSB on one core here (features with the neighbour cancelled,
# band excess), 0.4 s for 512, in a thread beside the scoring; 512 hold 64 SSBs of each of 8 beams
# (the per-SSB-index levels need 16 of each)
LEARN_MAX_SSBS = 512
# as `ssbwatch calibrate` recommends (replay.RECOMMENDED_CAL_SSBS): the period goes on until
# this many valid SSBs of the cell are kept
LEARN_MIN_SSBS = 10


class BaselineLearner:
    """Learns a site baseline from a stream's first ``seconds`` (see the module doc).

    Parameters
    ----------
    seconds : the quiet period, seconds of stream
    path : where the baseline is written
    sample_rate_hz, center_freq_hz, datatype : the stream's
    label : the source, named in the baseline's ``sources``
    max_ssbs, min_ssbs : LEARN_MAX_SSBS, LEARN_MIN_SSBS
    seed : the reservoir sample's random generator
    background : build the baseline in a thread (a live stream goes on meanwhile);
        False: in :meth:`advance` itself (deterministic)

    The daemon calls :meth:`take` with each push's observations (the pipeline's
    ``observation_tap``), :meth:`advance` with the stream position after each
    push, :meth:`restart` on a jamming alert, and :meth:`result` to collect the
    baseline once built (``state`` "done"; "failed" with ``error`` when it could
    not be built or written).
    """

    def __init__(self, seconds: float, path: str | Path, sample_rate_hz: float, center_freq_hz: Optional[float],
                 datatype: str, label: str = "", *, max_ssbs: int = LEARN_MAX_SSBS, min_ssbs: int = LEARN_MIN_SSBS,
                 seed: int = 0, background: bool = True, detector=None) -> None:
        if not seconds > 0:
            raise ValueError(f"seconds={seconds}: the quiet period must be > 0 s")
        self.seconds = float(seconds)
        self.path = Path(path)
        self.fs = float(sample_rate_hz)
        self.center_freq_hz = center_freq_hz
        self.datatype = datatype
        self.label = label
        self.max_ssbs = int(max_ssbs)
        self.min_ssbs = max(2, int(min_ssbs))
        self._rng = np.random.default_rng(seed)
        self.background = background
        self.detector = detector  # the DT-DDNN the site is scored with: its scores of the clean SSBs kept
        self.state = "learning"  # learning -> building -> done | failed
        self.error = ""
        self.restarts = 0
        self.baseline: Optional[SiteBaseline] = None
        self._thread: Optional[threading.Thread] = None
        self._start: Optional[int] = None  # the period's first sample (set by the first advance)
        self._pos = 0
        self._seen = 0  # valid observations of the period (kept or not)
        self._kept: list[SSBObservation] = []
        self._offset_hz: Optional[float] = None  # the SSB's offset from the capture centre (the receiver's)
        self.n_used = 0  # the SSBs the baseline is built from (once the period is over)

    # -- feeding ---------------------------------------------------------------
    def take(self, obs: list[SSBObservation], offset_hz: Optional[float] = None) -> None:
        """A push's observations (the valid ones are kept, as calibration keeps
        them: a uniform sample of at most ``max_ssbs`` over the period)."""
        if self.state != "learning":
            return
        if offset_hz is not None:
            self._offset_hz = float(offset_hz)
        slots = []  # (where in _kept, observation): reservoir sampling
        for o in obs:
            if not o.valid:
                continue
            self._seen += 1
            if len(self._kept) + len(slots) < self.max_ssbs:
                slots.append((len(self._kept) + len(slots), o))
            else:
                j = int(self._rng.integers(0, self._seen))
                if j < self.max_ssbs:
                    slots.append((j, o))
        if not slots:
            return
        kept = calibration_observations([o for _, o in slots])  # (only these: their readings cost)
        for (j, _), o in zip(slots, kept):
            if j < len(self._kept):
                self._kept[j] = o
            else:
                self._kept.append(o)

    def advance(self, start_sample: int, end_sample: int) -> bool:
        """Samples [start_sample, end_sample) of the stream have been processed;
        True when this ends the quiet period and the baseline's build starts (in a
        thread, or done when not ``background``)."""
        if self._start is None:
            self._start = int(start_sample)
        self._pos = int(end_sample)
        if self.state != "learning" or self.elapsed_s < self.seconds or len(self._kept) < self.min_ssbs:
            return False
        kept = sorted(self._kept, key=lambda o: o.sample)
        self._kept = []
        self.n_used = len(kept)
        self.state = "building"
        if self.background:
            self._thread = threading.Thread(target=self._build, args=(kept,), name="ssbwatch-learn", daemon=True)
            self._thread.start()
        else:
            self._build(kept)
        return True

    def restart(self, count: bool = True) -> None:
        """The period starts over at the current position, nothing kept (a jamming
        alert during it; ``count``: a new one, counted in ``restarts``). No effect
        once the build has started."""
        if self.state != "learning":
            return
        self.restarts += bool(count)
        self._start = self._pos
        self._seen = 0
        self._kept = []

    # -- state -----------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Seconds of stream in the period so far."""
        return 0.0 if self._start is None else (self._pos - self._start) / self.fs

    @property
    def position(self) -> int:
        """The stream position processed so far (samples)."""
        return self._pos

    @property
    def n_kept(self) -> int:
        return len(self._kept)

    def result(self, wait_s: float = 0.0) -> Optional[SiteBaseline]:
        """The baseline once built and written (state "done"), else None."""
        if self._thread is not None and wait_s > 0:
            self._thread.join(wait_s)
        return self.baseline if self.state == "done" else None

    def _build(self, obs: list[SSBObservation]) -> None:
        try:
            groups: dict[int, list[SSBObservation]] = {}
            for o in obs:
                groups.setdefault(o.scs_khz, []).append(o)
            off = self._offset_hz
            f_hz = (self.center_freq_hz + off) if (self.center_freq_hz and off is not None) else None
            configs = {}
            for scs, g in groups.items():
                if len(g) >= self.min_ssbs:
                    cb = config_baseline(g, scs, self.fs, self.datatype, ssb_freq_hz=f_hz, ssb_offset_hz=off,
                                         detector=self.detector)
                    configs[cb.key] = cb
            if not configs:
                raise ValueError(f"fewer than {self.min_ssbs} SSBs of one subcarrier spacing")
            base = SiteBaseline(configs, sources=[f"{self.label} (learned by ssbwatch run over "
                                                  f"{self.elapsed_s:.1f} s of stream)"])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            base.save(self.path)
            self.baseline = base
            self.state = "done"
        except Exception as exc:  # noqa: BLE001 - reported by the daemon, which goes on uncalibrated
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
