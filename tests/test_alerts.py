"""Tests of detector.alerts (pure, deterministic)."""

from __future__ import annotations

import json
import math

import pytest

from detector.alerts import AlertConfig, AlertEvent, AlertStateMachine

PERIOD_S = 0.02  # SSB burst periodicity
SPS = 30720  # samples per ms at 30.72 MHz


class Feeder:
    """Feeds patterns: 'J' jammed, 'C' clean, 'I' invalid (NaN input)."""

    def __init__(self, sm: AlertStateMachine):
        self.sm = sm
        self.i: dict = {}

    def feed(self, pattern: str, pci=1, features=None, score_j=0.95, score_c=0.05, **kw):
        out = []
        for ch in pattern:
            i = self.i.get(pci, 0)
            self.i[pci] = i + 1
            jammed = ch == "J"
            evs = self.sm.update(
                pci=pci, t_s=i * PERIOD_S, sample=i * 20 * SPS, jammed=jammed,
                score=(score_j if jammed else score_c) if ch != "I" else float("nan"),
                valid=ch != "I", features=features, **kw,
            )
            out.extend((i, e) for e in evs)
        return out


def kinds(events):
    return [(i, e.kind) for i, e in events]


def test_k_of_n_starts_after_exactly_k_jammed():
    f = Feeder(AlertStateMachine(AlertConfig(k=3, n=5)))
    assert f.feed("CCCJJ") == []
    assert f.sm.state(1) == "clear"
    ev = f.feed("J")
    assert kinds(ev) == [(5, "JAMMING_STARTED")]
    e = ev[0][1]
    assert e.pci == 1 and e.t_s == pytest.approx(5 * PERIOD_S) and e.sample == 5 * 20 * SPS
    assert e.detection_delay_ssb == 2  # first jammed SSB #3, alert on #5
    assert e.detection_delay_s == pytest.approx(2 * PERIOD_S)
    assert e.score == pytest.approx((2 * 0.05 + 3 * 0.95) / 5)  # mean over the last n
    assert e.duration_s is None
    assert f.sm.state(1) == "jammed"
    # k of n, not consecutive: J C J C J starts on the third J
    f2 = Feeder(AlertStateMachine(AlertConfig(k=3, n=5)))
    ev = f2.feed("JCJCJ")
    assert kinds(ev) == [(4, "JAMMING_STARTED")]
    assert ev[0][1].detection_delay_ssb == 4
    # but J C C J C C J has only 2 of any 5
    f3 = Feeder(AlertStateMachine(AlertConfig(k=3, n=5)))
    assert f3.feed("JCCJCCJCCJ") == []


def test_k_equals_one_has_zero_delay():
    f = Feeder(AlertStateMachine(AlertConfig(k=1, n=1, clear_k=0, clear_n=2)))
    ev = f.feed("CJ")
    assert kinds(ev) == [(1, "JAMMING_STARTED")]
    assert ev[0][1].detection_delay_ssb == 0 and ev[0][1].detection_delay_s == 0


def test_no_flapping_and_clear_rule():
    f = Feeder(AlertStateMachine(AlertConfig(k=3, n=5, clear_k=0, clear_n=10)))
    ev = f.feed("JJJ")
    assert kinds(ev) == [(2, "JAMMING_STARTED")]
    # intermittent jamming at clear time: never 10 clean in a row -> stays jammed
    assert f.feed("CJ" * 20 + "CCCCCCCCCJ" + "CCCCJCCCCCC") == []  # up to SSB #63
    assert f.sm.state(1) == "jammed"
    ev = f.feed("CCCC")  # 10th clean SSB after the last jammed one (#57)
    assert kinds(ev) == [(67, "JAMMING_CLEARED")]
    e = ev[0][1]
    assert e.detection_delay_ssb == 9  # from the first clean SSB of the clean run
    assert e.duration_s == pytest.approx((67 - 2) * PERIOD_S)
    assert e.score == pytest.approx(0.05)
    assert f.sm.state(1) == "clear"
    assert f.feed("C" * 20) == []  # nothing more


def test_clear_k_tolerates_some_jammed_and_start_does_not_reuse_old_jammed():
    f = Feeder(AlertStateMachine(AlertConfig(k=3, n=5, clear_k=1, clear_n=6)))
    assert kinds(f.feed("JJJ")) == [(2, "JAMMING_STARTED")]
    assert f.feed("JJCCC") == []  # last 6 = J J J C C C -> 3 jammed
    assert f.feed("JC") == []  # last 6 = J C C C J C -> 2 jammed
    ev = f.feed("C")  # last 6 = C C C J C C -> 1 jammed <= clear_k
    assert kinds(ev) == [(10, "JAMMING_CLEARED")]
    # right after the clear, the jammed SSB #8 still in the window is not
    # counted again: J C C J J has 3 jammed but only 2 since the clear
    assert f.feed("JJ") == []
    assert kinds(f.feed("J")) == [(13, "JAMMING_STARTED")]


def test_clear_needs_clear_n_ssbs_of_alert():
    # clear_k/clear_n = 3/10 < k/n = 3/5, but the window right after the
    # start still holds clean SSBs from before it: must not clear at once
    f = Feeder(AlertStateMachine(AlertConfig(k=3, n=5, clear_k=3, clear_n=10)))
    assert kinds(f.feed("CCCCCCCJJJ")) == [(9, "JAMMING_STARTED")]
    assert f.feed("C" * 9) == []
    assert kinds(f.feed("C")) == [(19, "JAMMING_CLEARED")]


def test_invalid_records_do_not_move_the_state():
    f = Feeder(AlertStateMachine(AlertConfig(k=3, n=5, clear_n=4)))
    assert f.feed("JJ" + "I" * 50) == []
    assert f.sm.state(1) == "clear"
    ev = f.feed("J")  # the two jammed before the invalid run still count
    assert kinds(ev) == [(52, "JAMMING_STARTED")]
    assert ev[0][1].detection_delay_ssb == 52  # SSB count includes invalid ones
    assert f.feed("I" * 100) == []
    assert f.sm.state(1) == "jammed"
    assert f.feed("CCC" + "I" * 10) == []
    assert kinds(f.feed("C")) == [(166, "JAMMING_CLEARED")]
    # valid=True with a NaN score is invalid too
    sm = AlertStateMachine(AlertConfig(k=1, n=1))
    assert sm.update(pci=1, t_s=0, sample=0, jammed=True, score=float("nan")) == []
    assert sm.state(1) == "clear"


def test_min_valid_fraction():
    f = Feeder(AlertStateMachine(AlertConfig(k=2, n=4, min_valid_fraction=0.75)))
    assert f.feed("JIJI") == []  # 2 of 4 updates valid < 75 %
    assert f.feed("J") == []  # last 4 updates I J I J: 50 %
    assert kinds(f.feed("J")) == [(5, "JAMMING_STARTED")]  # J I J J: 75 %
    with pytest.raises(ValueError, match="min_valid_fraction"):
        AlertConfig(min_valid_fraction=1.5)


def test_per_pci_independence_and_reset():
    sm = AlertStateMachine(AlertConfig(k=2, n=3, clear_n=3))
    f = Feeder(sm)
    f.feed("JC", pci=1)
    f.feed("CJ", pci=2)
    assert sm.state(1) == sm.state(2) == "clear"
    ev = f.feed("J", pci=2)
    assert [(e.pci, e.kind) for _, e in ev] == [(2, "JAMMING_STARTED")]
    assert sm.state(1) == "clear"
    assert sm.state(None) == "clear"
    f.feed("J", pci=None)
    ev = f.feed("J", pci=None)
    assert [(e.pci, e.kind) for _, e in ev] == [(None, "JAMMING_STARTED")]
    assert sorted(sm.jammed_pcis(), key=str) == [2, None]
    ev = f.feed("CCC", pci=2)
    assert [(e.pci, e.kind) for _, e in ev] == [(2, "JAMMING_CLEARED")]
    assert sm.state(None) == "jammed"
    sm.reset_states()
    assert sm.tracked_pcis() == [] and sm.state(None) == "clear"


def test_bounded_pcis_evicts_clear_first_then_emits_evicted_clear():
    sm = AlertStateMachine(AlertConfig(k=1, n=1, max_pcis=3))
    sm.update(pci=0, t_s=0.0, sample=0, jammed=True, score=1.0)  # pci 0 jammed
    sm.update(pci=1, t_s=0.1, sample=1, jammed=False, score=0.0)
    sm.update(pci=2, t_s=0.2, sample=2, jammed=False, score=0.0)
    assert sm.update(pci=3, t_s=0.3, sample=3, jammed=False, score=0.0) == []
    assert sm.tracked_pcis() == [0, 2, 3]  # pci 1: oldest clear one
    sm.update(pci=2, t_s=0.4, sample=4, jammed=True, score=1.0)
    sm.update(pci=3, t_s=0.5, sample=5, jammed=True, score=1.0)
    ev = sm.update(pci=4, t_s=0.6, sample=6, jammed=False, score=0.0)
    assert [(e.pci, e.kind, e.reason) for e in ev] == [(0, "JAMMING_CLEARED", "evicted")]
    assert ev[0].t_s == 0.0 and len(sm.tracked_pcis()) == 3
    json.dumps(ev[0].to_dict())


def test_cusum_start_and_clear():
    cfg = AlertConfig(method="cusum", cusum_threshold=4.0, cusum_drift=0.1, clear_n=10)
    f = Feeder(AlertStateMachine(cfg))
    assert f.feed("C" * 20) == []  # S stays 0
    # each jammed SSB adds 0.95 - 0.5 - 0.1 = 0.35: S > 4 after 12 of them
    assert f.feed("J" * 11) == []
    ev = f.feed("J")
    assert kinds(ev) == [(31, "JAMMING_STARTED")]
    e = ev[0][1]
    assert e.method == "cusum"
    assert e.detection_delay_ssb == 11  # S left 0 on SSB #20
    assert e.score == pytest.approx(0.95)
    # long jamming: S is capped at 2 * threshold = 8
    assert f.feed("J" * 100) == []
    # clean SSBs take 0.55 each: 8 / 0.55 -> S = 0 on the 15th, then 10 in a row
    assert f.feed("C" * 23) == []
    ev = f.feed("C")
    assert kinds(ev) == [(131 + 24, "JAMMING_CLEARED")]
    assert ev[0][1].detection_delay_ssb == 9


def test_cusum_does_not_fire_on_sporadic_jammed():
    f = Feeder(AlertStateMachine(AlertConfig(method="cusum")))
    assert f.feed("JC" * 200 + "JJCC" * 100) == []  # +0.35 / -0.55 per SSB: back to 0


def test_character_majority():
    sm = AlertStateMachine(AlertConfig(k=3, n=5, clear_n=3))
    f = Feeder(sm)
    nb_pulsed = {"narrowband_ratio": 0.8, "pulsed": True}
    wb_cont = {"narrowband_ratio": 0.2, "pulsed": False}
    f.feed("J", features=nb_pulsed)
    f.feed("C", features=wb_cont)  # clean SSBs do not vote
    f.feed("C", features=wb_cont)
    f.feed("J", features=wb_cont)
    ev = f.feed("J", features=nb_pulsed)
    assert kinds(ev) == [(4, "JAMMING_STARTED")]
    assert ev[0][1].character == {"band": "narrowband", "temporal": "pulsed"}
    # the episode then votes ssb_synchronous three times and wideband...
    f.feed("JJJ", features={"ssb_synchronous": True, "narrowband_ratio": 0.1})
    ev = f.feed("CCC")
    assert kinds(ev) == [(10, "JAMMING_CLEARED")]
    assert ev[0][1].character == {"band": "wideband", "temporal": "ssb_synchronous"}


def test_character_unknown_when_absent_or_tied():
    f = Feeder(AlertStateMachine(AlertConfig(k=2, n=2)))
    ev = f.feed("JJ")
    assert ev[0][1].character == {"band": "unknown", "temporal": "unknown"}
    g = Feeder(AlertStateMachine(AlertConfig(k=2, n=2)))
    g.feed("J", features={"narrowband_ratio": 0.9, "pulsed": True})
    ev = g.feed("J", features={"narrowband_ratio": float("nan"), "pulsed": False})
    assert ev[0][1].character == {"band": "narrowband", "temporal": "unknown"}


def test_estimates_and_to_dict():
    sm = AlertStateMachine(AlertConfig(k=2, n=3, clear_n=2))
    sm.update(pci=7, t_s=0.0, sample=0, jammed=True, score=0.9, sjnr_db_est=-3.0, jnr_db_est=10.0)
    sm.update(pci=7, t_s=0.02, sample=10, jammed=False, score=0.1, sjnr_db_est=20.0)
    ev = sm.update(pci=7, t_s=0.04, sample=20, jammed=True, score=0.8, sjnr_db_est=-5.0,
                   jnr_db_est=float("nan"))
    e = ev[0]
    assert e.sjnr_db_est == pytest.approx(-4.0)  # jammed SSBs only
    assert e.jnr_db_est == pytest.approx(10.0)  # NaN ignored
    d = e.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) >= {"kind", "pci", "t_s", "sample", "score", "sjnr_db_est", "jnr_db_est",
                      "character", "detection_delay_ssb", "detection_delay_s", "duration_s"}
    sm.update(pci=7, t_s=0.06, sample=30, jammed=False, score=0.1)
    ev = sm.update(pci=7, t_s=0.08, sample=40, jammed=False, score=0.1)
    assert ev[0].kind == "JAMMING_CLEARED" and ev[0].duration_s == pytest.approx(0.04)
    assert ev[0].sjnr_db_est == pytest.approx(-4.0)
    nan_ev = AlertEvent("JAMMING_STARTED", 1, 0.0, 0, float("nan"), None, None, {}, 0, 0.0)
    assert nan_ev.to_dict()["score"] is None


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(method="bayes"), "method"),
        (dict(k=0), "k"),
        (dict(k=6, n=5), "k"),
        (dict(n=0), "n"),
        (dict(k=2.5), "k"),
        (dict(clear_n=0), "clear_n"),
        (dict(clear_k=10, clear_n=10), "clear_k"),
        (dict(clear_k=-1), "clear_k"),
        (dict(k=1, n=5, clear_k=2, clear_n=10), "clear_k"),  # no hysteresis
        (dict(cusum_threshold=0.0), "cusum_threshold"),
        (dict(cusum_drift=0.5), "cusum_drift"),
        (dict(cusum_drift=float("nan")), "cusum_drift"),
        (dict(cusum_clear=5.0), "cusum_clear"),
        (dict(cusum_cap=3.0), "cusum_cap"),
        (dict(max_pcis=0), "max_pcis"),
    ],
)
def test_config_validation_names_the_key(kwargs, key):
    with pytest.raises(ValueError) as ei:
        AlertConfig(**kwargs)
    assert str(ei.value).startswith(key + ":")


def test_config_from_dict():
    assert AlertConfig.from_dict({"k": 2, "n": 4}).k == 2
    with pytest.raises(ValueError, match="^kk:"):
        AlertConfig.from_dict({"kk": 2})
    assert math.isclose(AlertConfig().effective_cusum_cap, 8.0)
