"""The alert lifecycle of one rule: inactive -> pending -> firing -> resolved (-> inactive).

* **inactive -> pending**: the firing condition holds at a tick; that tick starts the episode.
* **pending -> firing**: the condition has held at every tick for at least ``for`` (zero: at once).
  **pending -> inactive**: it stopped holding before that (nothing is published).
* **firing**: stays while the hold condition (the clear level not crossed back) is true; re-notifies every
  ``renotify`` interval; once the hold condition fails, it keeps firing for ``keep_firing_for`` more,
  and resolves if the condition has not come back by then.

Times are ticks of the alerter's clock (never the wall clock); the alert id is derived from the rule, the
subject and the episode's start, so the same input always gives the same ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

from monitor.alerts.conditions import Observation, Side
from monitor.alerts.rules import RuleConfig
from monitor.events import format_time
from monitor.signals.windows import duration_us, from_us

Status = Literal["inactive", "pending", "firing"]
Transition = Literal["fire", "renotify", "resolve"]

STATE_VALUES: dict[Status, int] = {"inactive": 0, "pending": 1, "firing": 2}
"""The value of the ``monitor_alert_state`` gauge per status."""


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule stands."""

    status: Status = "inactive"
    since_us: int | None = None
    """Start of the episode: the first tick the condition held."""
    alert_id: str | None = None
    fired_us: int | None = None
    clear_since_us: int | None = None
    """While firing: the first tick of the current run of ticks where the condition did not hold."""
    notified_us: int | None = None
    direction: Side | None = None


INACTIVE = RuleState()


def alert_id(rule: str, subject: str, started_us: int) -> str:
    """Deterministic id of an alert episode: a digest of rule, subject and episode start."""
    text = f"{rule}|{subject}|{format_time(from_us(started_us))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def step(
    rule: RuleConfig, state: RuleState, tick_us: int, obs: Observation
) -> tuple[RuleState, Transition | None]:
    """The rule's next state after observing ``obs`` at ``tick_us``, and what to publish (if anything)."""
    if state.status == "inactive":
        if not obs.fire:
            return state, None
        state = RuleState(status="pending", since_us=tick_us, direction=obs.direction)
    if state.status == "pending":
        assert state.since_us is not None
        if not obs.fire:
            return INACTIVE, None
        if tick_us - state.since_us < duration_us(rule.for_):
            return state, None
        fired = replace(
            state,
            status="firing",
            alert_id=alert_id(rule.name, rule.subject, state.since_us),
            fired_us=tick_us,
            notified_us=tick_us,
            direction=obs.direction,
        )
        return fired, "fire"
    # firing
    if obs.hold:
        state = replace(state, clear_since_us=None)
        assert state.notified_us is not None
        if rule.renotify is not None and tick_us - state.notified_us >= duration_us(rule.renotify):
            return replace(state, notified_us=tick_us), "renotify"
        return state, None
    clear_since = state.clear_since_us if state.clear_since_us is not None else tick_us
    if tick_us - clear_since >= duration_us(rule.keep_firing_for):
        return INACTIVE, "resolve"
    return replace(state, clear_since_us=clear_since), None
