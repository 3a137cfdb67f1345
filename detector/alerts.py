"""Alert state machine over per-SSB jamming verdicts, one state per PCI.

``AlertStateMachine.update(...)`` is fed one record per detected SSB (in
stream order) and returns the events it caused: ``JAMMING_STARTED`` when a
PCI goes from "clear" to "jammed", ``JAMMING_CLEARED`` on the way back.  The
object is pure (no clock, no I/O, no threads) and its memory is bounded:
fixed-length deques per PCI and at most ``max_pcis`` PCIs.

Rules
-----
Every call to ``update`` is one SSB of that PCI and advances the PCI's SSB
counter; SSB delays below are differences of that counter.  A record with
``valid=False`` (NaN / all-zero input), or with a non-finite score, is
counted as an SSB but never as clean or jammed and moves no state: it is not
entered in the windows and the CUSUM statistic ignores it.

``method="k_of_n"`` (hysteresis on the verdicts):
  * start: at least ``k`` of the last ``n`` valid SSBs are jammed.  After a
    clear, jammed SSBs from before the clear are not counted again.
  * clear: at least ``clear_n`` valid SSBs since the start, and at most
    ``clear_k`` of the last ``clear_n`` valid SSBs jammed.  The config must
    satisfy ``clear_k / clear_n < k / n`` so the two rules cannot flap.

``method="cusum"`` (on the score, expected in [0, 1]):
  * ``S = min(cap, max(0, S + score - 0.5 - cusum_drift))`` for every valid
    SSB, ``cap = cusum_cap`` (default ``2 * cusum_threshold``; the cap keeps
    the time to clear after long jamming bounded).
  * start: ``S > cusum_threshold``.
  * clear: after the update ``S <= cusum_clear`` (default 0) for
    ``clear_n`` consecutive valid SSBs; the ``clear_n``-th one clears.
  * ``cusum_drift`` must be in [0, 0.5): with a score <= 1 the increment is
    at most ``0.5 - drift``, so 0.5 would never start.  The default 0.1 means
    a jammed SSB with score 0.95 adds 0.35 (start after 12 such SSBs with
    the default threshold 4).

``min_valid_fraction`` (default 0, off): a start (clear) is only declared
when at least this fraction of the last ``n`` (``clear_n``) SSBs of the PCI,
valid or not, were valid.

Event fields
------------
* ``t_s`` / ``sample``: the SSB that triggered the event.
* ``score``: mean score of the window that decided (``JAMMING_STARTED``:
  the last ``n`` valid SSBs for k_of_n, the SSBs of the current excursion of
  S above 0 for cusum; ``JAMMING_CLEARED``: the last ``clear_n`` valid SSBs).
* ``detection_delay_ssb`` / ``detection_delay_s``: for STARTED, from the
  first jammed SSB of the run that led to the alert (k_of_n: the oldest
  jammed SSB counted in the window; cusum: the SSB where S left 0) to the
  alerting SSB, so ``k`` consecutive jammed SSBs give ``k - 1`` and ``k=1``
  gives 0.  For CLEARED, from the first clean SSB after the last jammed one
  (cusum: the first SSB of the run with ``S <= cusum_clear``) to the clear.
* ``duration_s`` (CLEARED only): how long the alert was active, clear
  ``t_s`` minus start ``t_s``.
* ``sjnr_db_est`` / ``jnr_db_est``: mean of the finite per-SSB estimates
  over the jammed SSBs of the start window (STARTED) or of the whole episode
  (CLEARED); ``None`` when none were given.
* ``character``: ``{"band": "narrowband"|"wideband"|"unknown",
  "temporal": "continuous"|"pulsed"|"ssb_synchronous"|"unknown"}`` by
  plurality vote over the same SSBs (ties and no votes give "unknown").  Per
  SSB, from ``features``: ``narrowband_ratio`` > 0.5 votes narrowband, else
  wideband; ``ssb_synchronous`` true votes ssb_synchronous, otherwise
  ``pulsed`` true/false votes pulsed/continuous; absent keys don't vote.
* ``reason``: ``"evicted"`` on a CLEARED emitted because the PCI was
  evicted from tracking while jammed (the tracker holds ``max_pcis``;
  clear PCIs are evicted first, least recently updated first).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, NamedTuple

__all__ = ["AlertConfig", "AlertEvent", "AlertStateMachine"]

JAMMING_STARTED = "JAMMING_STARTED"
JAMMING_CLEARED = "JAMMING_CLEARED"

_MAX_WINDOW = 4096
_NARROWBAND_RATIO = 0.5


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class AlertConfig:
    """Alert rules; see the module docstring.  Invalid values raise
    ``ValueError`` whose message starts with the offending key."""

    method: Literal["k_of_n", "cusum"] = "k_of_n"
    k: int = 3
    n: int = 5
    clear_k: int = 0
    clear_n: int = 10
    cusum_threshold: float = 4.0
    cusum_drift: float = 0.1
    cusum_clear: float = 0.0
    cusum_cap: float | None = None
    min_valid_fraction: float = 0.0
    max_pcis: int = 64

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ValueError:
            return ValueError(f"{key}: {why} (got {getattr(self, key)!r})")

        if self.method not in ("k_of_n", "cusum"):
            raise bad("method", "must be 'k_of_n' or 'cusum'")
        for key in ("k", "n", "clear_k", "clear_n", "max_pcis"):
            if not _is_int(getattr(self, key)):
                raise bad(key, "must be an integer")
        if not 1 <= self.n <= _MAX_WINDOW:
            raise bad("n", f"must be in 1..{_MAX_WINDOW}")
        if not 1 <= self.k <= self.n:
            raise bad("k", "must be in 1..n")
        if not 1 <= self.clear_n <= _MAX_WINDOW:
            raise bad("clear_n", f"must be in 1..{_MAX_WINDOW}")
        if not 0 <= self.clear_k < self.clear_n:
            raise bad("clear_k", "must be in 0..clear_n-1")
        if not self.clear_k * self.n < self.k * self.clear_n:
            raise bad("clear_k", "clear_k/clear_n must be below k/n (hysteresis)")
        for key in ("cusum_threshold", "cusum_drift", "cusum_clear", "min_valid_fraction"):
            if not _is_num(getattr(self, key)):
                raise bad(key, "must be a finite number")
        if not self.cusum_threshold > 0:
            raise bad("cusum_threshold", "must be > 0")
        if not 0 <= self.cusum_drift < 0.5:
            raise bad("cusum_drift", "must be in [0, 0.5) (score - 0.5 - drift must be able to grow)")
        if not 0 <= self.cusum_clear < self.cusum_threshold:
            raise bad("cusum_clear", "must be in [0, cusum_threshold)")
        if self.cusum_cap is not None:
            if not _is_num(self.cusum_cap):
                raise bad("cusum_cap", "must be a finite number or None")
            if not self.cusum_cap > self.cusum_threshold:
                raise bad("cusum_cap", "must be > cusum_threshold")
        if not 0 <= self.min_valid_fraction <= 1:
            raise bad("min_valid_fraction", "must be in [0, 1]")
        if self.max_pcis < 1:
            raise bad("max_pcis", "must be >= 1")

    @property
    def effective_cusum_cap(self) -> float:
        return 2.0 * self.cusum_threshold if self.cusum_cap is None else float(self.cusum_cap)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AlertConfig":
        """Build from a config mapping; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown alert setting; known: {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class AlertEvent:
    kind: Literal["JAMMING_STARTED", "JAMMING_CLEARED"]
    pci: int | None
    t_s: float
    sample: int
    score: float
    sjnr_db_est: float | None
    jnr_db_est: float | None
    character: dict[str, str]
    detection_delay_ssb: int
    detection_delay_s: float
    duration_s: float | None = None
    method: str = "k_of_n"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (non-finite floats become None)."""
        d = asdict(self)
        for key, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[key] = None
        d["character"] = dict(self.character)
        if d["pci"] is not None:
            d["pci"] = int(d["pci"])
        d["sample"] = int(d["sample"])
        return d


class _Rec(NamedTuple):
    seq: int
    t_s: float
    sample: int
    jammed: bool
    score: float
    sjnr: float | None
    jnr: float | None
    band: str | None
    temporal: str | None


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _band_vote(features: dict | None) -> str | None:
    if not features:
        return None
    r = _finite_or_none(features.get("narrowband_ratio"))
    if r is None:
        return None
    return "narrowband" if r > _NARROWBAND_RATIO else "wideband"


def _temporal_vote(features: dict | None) -> str | None:
    if not features:
        return None
    if features.get("ssb_synchronous"):
        return "ssb_synchronous"
    pulsed = features.get("pulsed")
    if pulsed is None:
        return None
    return "pulsed" if bool(pulsed) else "continuous"


def _plurality(votes: Counter) -> str:
    top = votes.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return "unknown"
    return top[0][0]


class _Episode:
    """Running aggregates over the jammed SSBs of one alert (bounded)."""

    def __init__(self) -> None:
        self.sj_sum = 0.0
        self.sj_n = 0
        self.jn_sum = 0.0
        self.jn_n = 0
        self.band: Counter = Counter()
        self.temporal: Counter = Counter()

    def add(self, r: _Rec) -> None:
        if r.sjnr is not None:
            self.sj_sum += r.sjnr
            self.sj_n += 1
        if r.jnr is not None:
            self.jn_sum += r.jnr
            self.jn_n += 1
        if r.band is not None:
            self.band[r.band] += 1
        if r.temporal is not None:
            self.temporal[r.temporal] += 1

    def sjnr(self) -> float | None:
        return self.sj_sum / self.sj_n if self.sj_n else None

    def jnr(self) -> float | None:
        return self.jn_sum / self.jn_n if self.jn_n else None

    def character(self) -> dict[str, str]:
        return {"band": _plurality(self.band), "temporal": _plurality(self.temporal)}


@dataclass
class _PciState:
    recs: deque
    validity: deque
    state: str = "clear"
    seq: int = -1
    last_t_s: float = 0.0
    last_sample: int = 0
    # k_of_n
    floor_seq: int = -1  # jammed SSBs at or before this seq don't count for a start
    since_start: int = 0  # valid SSBs since the start
    clean_since: _Rec | None = None  # first clean SSB after the last jammed one
    # cusum
    s: float = 0.0
    excursion_start: _Rec | None = None
    zero_run: int = 0
    zero_run_start: _Rec | None = None
    # episode
    started: AlertEvent | None = None
    episode: _Episode = field(default_factory=_Episode)


class AlertStateMachine:
    """Per-PCI alert state over per-SSB verdicts.  Not thread-safe."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config if config is not None else AlertConfig()
        self._win = max(self.config.n, self.config.clear_n)
        self._pcis: OrderedDict[Any, _PciState] = OrderedDict()

    # -- public ----------------------------------------------------------------
    def update(
        self,
        *,
        pci: int | None,
        t_s: float,
        sample: int,
        jammed: bool,
        score: float,
        valid: bool = True,
        sjnr_db_est: float | None = None,
        jnr_db_est: float | None = None,
        features: dict | None = None,
    ) -> list[AlertEvent]:
        """Feed one SSB of ``pci``; returns the events it caused (0 or 1,
        plus possibly an eviction CLEARED for another PCI)."""
        events: list[AlertEvent] = []
        st = self._state_for(pci, events)
        st.seq += 1
        st.last_t_s = float(t_s)
        st.last_sample = int(sample)
        score_f = _finite_or_none(score)
        is_valid = bool(valid) and score_f is not None
        st.validity.append(is_valid)
        if not is_valid:
            return events
        rec = _Rec(
            seq=st.seq, t_s=float(t_s), sample=int(sample), jammed=bool(jammed),
            score=float(score_f), sjnr=_finite_or_none(sjnr_db_est),
            jnr=_finite_or_none(jnr_db_est), band=_band_vote(features),
            temporal=_temporal_vote(features),
        )
        st.recs.append(rec)
        if rec.jammed:
            st.clean_since = None
        elif st.clean_since is None:
            st.clean_since = rec
        if st.state == "jammed":
            st.since_start += 1
            if rec.jammed:
                st.episode.add(rec)
        ev = (self._step_cusum if self.config.method == "cusum" else self._step_k_of_n)(pci, st, rec)
        if ev is not None:
            events.append(ev)
        return events

    def state(self, pci: int | None) -> str:
        """"clear" or "jammed" ("clear" for a PCI never seen or evicted)."""
        st = self._pcis.get(pci)
        return "clear" if st is None else st.state

    def reset_states(self) -> None:
        """Forget every PCI (e.g. after a retune or a source restart); no events."""
        self._pcis.clear()

    def tracked_pcis(self) -> list:
        return list(self._pcis)

    def jammed_pcis(self) -> list:
        return [p for p, st in self._pcis.items() if st.state == "jammed"]

    # -- internals -------------------------------------------------------------
    def _state_for(self, pci: Any, events: list[AlertEvent]) -> _PciState:
        st = self._pcis.get(pci)
        if st is not None:
            self._pcis.move_to_end(pci)
            return st
        if len(self._pcis) >= self.config.max_pcis:
            victim = next((p for p, s in self._pcis.items() if s.state == "clear"), None)
            if victim is None:
                victim = next(iter(self._pcis))
            old = self._pcis.pop(victim)
            if old.state == "jammed":
                events.append(self._evicted_event(victim, old))
        st = _PciState(recs=deque(maxlen=self._win), validity=deque(maxlen=self._win))
        self._pcis[pci] = st
        return st

    def _valid_enough(self, st: _PciState, window: int) -> bool:
        frac = self.config.min_valid_fraction
        if frac <= 0:
            return True
        last = list(st.validity)[-window:]
        return bool(last) and sum(last) >= frac * len(last)

    def _step_k_of_n(self, pci: Any, st: _PciState, rec: _Rec) -> AlertEvent | None:
        cfg = self.config
        recs = list(st.recs)
        if st.state == "clear":
            window = recs[-cfg.n:]
            counted = [r for r in window if r.jammed and r.seq > st.floor_seq]
            if len(counted) >= cfg.k and self._valid_enough(st, cfg.n):
                return self._start(pci, st, rec, window, counted[0])
            return None
        if st.since_start >= cfg.clear_n:
            window = recs[-cfg.clear_n:]
            if sum(r.jammed for r in window) <= cfg.clear_k and self._valid_enough(st, cfg.clear_n):
                return self._clear(pci, st, rec, window, st.clean_since)
        return None

    def _step_cusum(self, pci: Any, st: _PciState, rec: _Rec) -> AlertEvent | None:
        cfg = self.config
        prev = st.s
        st.s = min(cfg.effective_cusum_cap, max(0.0, prev + rec.score - 0.5 - cfg.cusum_drift))
        if st.s <= 0.0:
            st.excursion_start = None
        elif prev <= 0.0 or st.excursion_start is None:
            st.excursion_start = rec
        if st.state == "clear":
            if st.s > cfg.cusum_threshold and self._valid_enough(st, cfg.n):
                first = st.excursion_start or rec
                window = [r for r in st.recs if r.seq >= first.seq]
                return self._start(pci, st, rec, window, first)
            return None
        if st.s <= cfg.cusum_clear:
            if st.zero_run == 0:
                st.zero_run_start = rec
            st.zero_run += 1
        else:
            st.zero_run = 0
            st.zero_run_start = None
        if st.zero_run >= cfg.clear_n and self._valid_enough(st, cfg.clear_n):
            window = list(st.recs)[-cfg.clear_n:]
            return self._clear(pci, st, rec, window, st.zero_run_start)
        return None

    def _start(self, pci: Any, st: _PciState, rec: _Rec, window: list[_Rec], first: _Rec) -> AlertEvent:
        jammed = [r for r in window if r.jammed] or window
        ep = _Episode()
        for r in jammed:
            ep.add(r)
        ev = AlertEvent(
            kind=JAMMING_STARTED, pci=pci, t_s=rec.t_s, sample=rec.sample,
            score=sum(r.score for r in window) / len(window),
            sjnr_db_est=ep.sjnr(), jnr_db_est=ep.jnr(), character=ep.character(),
            detection_delay_ssb=rec.seq - first.seq,
            detection_delay_s=rec.t_s - first.t_s,
            method=self.config.method,
        )
        st.state = "jammed"
        st.started = ev
        st.episode = ep
        st.since_start = 0
        st.zero_run = 0
        st.zero_run_start = None
        return ev

    def _clear(self, pci: Any, st: _PciState, rec: _Rec, window: list[_Rec], since: _Rec | None) -> AlertEvent:
        since = since or rec
        ev = AlertEvent(
            kind=JAMMING_CLEARED, pci=pci, t_s=rec.t_s, sample=rec.sample,
            score=sum(r.score for r in window) / len(window),
            sjnr_db_est=st.episode.sjnr(), jnr_db_est=st.episode.jnr(),
            character=st.episode.character(),
            detection_delay_ssb=rec.seq - since.seq,
            detection_delay_s=rec.t_s - since.t_s,
            duration_s=rec.t_s - st.started.t_s if st.started is not None else None,
            method=self.config.method,
        )
        st.state = "clear"
        st.started = None
        st.episode = _Episode()
        st.floor_seq = rec.seq
        st.zero_run = 0
        st.zero_run_start = None
        return ev

    def _evicted_event(self, pci: Any, st: _PciState) -> AlertEvent:
        recs = list(st.recs)[-self.config.clear_n:]
        return AlertEvent(
            kind=JAMMING_CLEARED, pci=pci, t_s=st.last_t_s, sample=st.last_sample,
            score=sum(r.score for r in recs) / len(recs) if recs else float("nan"),
            sjnr_db_est=st.episode.sjnr(), jnr_db_est=st.episode.jnr(),
            character=st.episode.character(), detection_delay_ssb=0, detection_delay_s=0.0,
            duration_s=st.last_t_s - st.started.t_s if st.started is not None else None,
            method=self.config.method, reason="evicted",
        )
