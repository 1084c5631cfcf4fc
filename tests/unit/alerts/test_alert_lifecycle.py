"""The lifecycle: pending -> firing -> resolved, with for, keep_firing_for, re-notify and stable ids."""

from __future__ import annotations

from monitor.alerts.conditions import Observation
from monitor.alerts.lifecycle import INACTIVE, RuleState, alert_id, step
from monitor.alerts.rules import RuleConfig
from monitor.signals.windows import WindowStats

M = 60 * 1_000_000
EMPTY = WindowStats(0, 0, None, None, None, ())


def rule(**values) -> RuleConfig:
    base = {
        "name": "r",
        "subject": "defence",
        "signal": "stance_index",
        "window": "6h",
        "threshold": {"above": 0.5, "clear_below": 0.2},
    }
    return RuleConfig.model_validate({**base, **values})


def obs(fire: bool, hold: bool | None = None) -> Observation:
    return Observation(0.6 if fire else 0.1, 0.5, None, fire, fire if hold is None else hold, "up", EMPTY)


def run(r: RuleConfig, pattern: str, step_minutes: int = 5) -> list[tuple[int, str | None, str]]:
    """Feed ``pattern`` (F: fire, H: holds only, .: neither), a tick each; -> (minute, transition, status)."""
    state: RuleState = INACTIVE
    out = []
    for i, c in enumerate(pattern):
        o = obs(c == "F", c in "FH")
        state, transition = step(r, state, i * step_minutes * M, o)
        out.append((i * step_minutes, transition, state.status))
    return out


def transitions(result):
    return [(minute, t) for minute, t, _ in result if t is not None]


def test_fires_at_once_without_for_and_resolves_when_the_condition_clears():
    assert transitions(run(rule(), "..FFF..")) == [(10, "fire"), (25, "resolve")]


def test_pending_until_for_has_passed():
    result = run(rule(**{"for": "10m"}), ".FFFF.")
    assert [s for _, _, s in result] == ["inactive", "pending", "pending", "firing", "firing", "inactive"]
    assert transitions(result) == [(15, "fire"), (25, "resolve")]


def test_pending_that_stops_holding_publishes_nothing():
    assert transitions(run(rule(**{"for": "15m"}), ".FF.FF.FF.")) == []


def test_hysteresis_keeps_it_firing_between_the_levels():
    assert transitions(run(rule(), "FHHHHHF..")) == [(0, "fire"), (35, "resolve")]


def test_keep_firing_for_bridges_short_gaps():
    r = rule(keep_firing_for="10m")
    assert transitions(run(r, "FF.FF..FF...")) == [(0, "fire"), (55, "resolve")]


def test_renotify_while_firing():
    r = rule(renotify="10m")
    assert transitions(run(r, "FFFFFF.")) == [
        (0, "fire"),
        (10, "renotify"),
        (20, "renotify"),
        (30, "resolve"),
    ]


def test_alert_id_is_stable_per_episode():
    r = rule()
    state, _ = step(r, INACTIVE, 0, obs(True))
    assert state.alert_id == alert_id("r", "defence", 0)
    again, _ = step(r, INACTIVE, 0, obs(True))
    assert again.alert_id == state.alert_id
    later, _ = step(r, INACTIVE, 5 * M, obs(True))
    assert later.alert_id != state.alert_id
    assert alert_id("r", "overall", 0) != state.alert_id


def test_episode_start_is_when_the_condition_began():
    r = rule(**{"for": "10m"})
    state = INACTIVE
    for minute in (5, 10, 15):
        state, transition = step(r, state, minute * M, obs(True))
    assert transition == "fire"
    assert (state.since_us, state.fired_us) == (5 * M, 15 * M)
    assert state.alert_id == alert_id("r", "defence", 5 * M)
