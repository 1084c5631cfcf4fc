"""The alerter's core: scored articles in; signal updates and alert lifecycle events out. No I/O.

:class:`AlertEngine` combines the event-time signals (:mod:`monitor.signals.engine`), the rules'
conditions (:mod:`monitor.alerts.conditions`) and the lifecycle (:mod:`monitor.alerts.lifecycle`). At each
tick it publishes the signals that changed, then steps every rule in config order. Its whole state is one
:class:`EngineState` that can be copied (cheap checkpoints for rollback) and persisted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from monitor.alerts.conditions import Observation, observe, usable_buckets
from monitor.alerts.describe import evidence, firing_summary, resolved_summary
from monitor.alerts.lifecycle import INACTIVE, RuleState, Transition, step
from monitor.alerts.rules import RuleConfig
from monitor.events import AlertFiring, AlertResolved, ArticleScored, SignalUpdated
from monitor.signals.config import SignalsConfig
from monitor.signals.engine import Ingested, SignalEngine, SignalParams, SignalState
from monitor.signals.windows import Article, TickView, duration_us, from_us, window_label

log = logging.getLogger(__name__)

AlertEvent = AlertFiring | AlertResolved
_PAST = {"fire": "fired", "renotify": "re-notified", "resolve": "resolved"}
Output = SignalUpdated | AlertFiring | AlertResolved


@dataclass(slots=True)
class EngineState:
    """The signals' state plus each rule's lifecycle state."""

    signals: SignalState = field(default_factory=SignalState)
    rules: dict[str, RuleState] = field(default_factory=dict)

    def copy(self) -> EngineState:
        return EngineState(self.signals.copy(), dict(self.rules))


def signal_params(
    signals: SignalsConfig,
    rules: Sequence[RuleConfig],
    *,
    step: timedelta = timedelta(minutes=5),
    grace: timedelta = timedelta(minutes=3),
    topic_threshold: float = 0.5,
    min_relevance: float = 0.5,
    future_tolerance: timedelta = timedelta(minutes=10),
) -> SignalParams:
    """Signal parameters for ``signals`` (windows and lateness) with a span covering every rule."""
    spans = [*signals.windows, *(rule.span for rule in rules)]
    edges: set[timedelta] = set()
    for rule in rules:
        edges.add(rule.window)
        if rule.change is not None:
            edges.add(rule.change.baseline)
        if rule.anomaly is not None:
            buckets = int(rule.anomaly.baseline / rule.window)
            edges.update(rule.window * i for i in range(1, buckets + 2))
    return SignalParams(
        windows=tuple(signals.windows),
        allowed_lateness=signals.allowed_lateness,
        span=max(spans),
        step=step,
        grace=grace,
        topic_threshold=topic_threshold,
        min_relevance=min_relevance,
        boundaries=tuple(sorted(edges)),
        future_tolerance=future_tolerance,
    )


class AlertEngine:
    """Deterministic signals and alerts from scored articles (see :mod:`monitor.signals.engine`)."""

    def __init__(
        self,
        *,
        rules: Sequence[RuleConfig],
        params: SignalParams,
        state: EngineState | None = None,
        evidence_count: int = 3,
    ) -> None:
        self.rules = tuple(rules)
        self.params = params
        self.evidence_count = evidence_count
        self._state = state if state is not None else EngineState()
        self.signals = SignalEngine(params, self._state.signals)
        # Rules that could fire on an empty window must see every tick.
        self._always_active = any(r.min_stories == 0 for r in self.rules)
        # Each rule's last observation, reused while the windows do not change (not state).
        self._observed: dict[str, tuple[tuple[object, ...], Observation]] = {}

    # -- state ---------------------------------------------------------------------------------------
    @property
    def state(self) -> EngineState:
        return self._state

    def checkpoint(self) -> EngineState:
        """A copy of the current state, for :meth:`restore` if what follows fails."""
        return self._state.copy()

    def restore(self, state: EngineState) -> None:
        """Go back to a state from :meth:`checkpoint` (or from the store)."""
        self._state = state
        self.signals = SignalEngine(self.params, state.signals)
        self._observed = {}

    def rule_state(self, name: str) -> RuleState:
        return self._state.rules.get(name, INACTIVE)

    def active(self) -> bool:
        """Whether any alert is pending or firing (or a rule may fire on empty windows)."""
        return self._always_active or any(s.status != "inactive" for s in self._state.rules.values())

    # -- input and clock -----------------------------------------------------------------------------
    def ingest(
        self, event: ArticleScored, *, partition: str, received_us: int | None = None, backfill: bool = False
    ) -> Ingested:
        """Take one scored article; see :meth:`SignalEngine.ingest`."""
        return self.signals.ingest(event, partition=partition, received_us=received_us, backfill=backfill)

    def advance(self, behind: Collection[str] | None) -> list[Output]:
        """Evaluate every tick the input allows (``behind``: partitions with unread records)."""
        watermark = self.signals.watermark(behind)
        return [] if watermark is None else self.advance_to(watermark)

    def advance_to(self, until_us: int) -> list[Output]:
        """Evaluate every tick before ``until_us`` (the caller vouches that nothing earlier is to come)."""
        out: list[Output] = []
        for view in self.signals.ticks(until_us, active=self.active):
            out.extend(self._evaluate(view))
        return out

    def end_of_input(self, *, now_us: int | None = None) -> list[Output]:
        """Everything read so far is all there is: evaluate to the last arrival plus the longest ``for``.

        Used by ``monitor run --once``: an alert whose condition holds at the end gets the time it needs.
        ``now_us`` is the present. Ticks after it have not happened: evaluating them only decides the
        rules whose ``for`` the end of input cuts short. Alert events they produce are stamped at
        ``now_us`` (``started_at`` no later) and marked ``end_of_input``; they publish no signal points,
        and afterwards the signals stand at the present again (the rules keep what was decided), so a
        later run starts from now. ``None``: the input is history, with no present to stop at.
        """
        horizon = max([timedelta(0), *(r.for_ for r in self.rules)])
        until = self.signals.end_of_input(horizon)
        if now_us is None or until <= now_us + 1:
            return self.advance_to(until)
        out = self.advance_to(now_us + 1)
        present = self._state.signals.copy()
        for view in self.signals.ticks(until, active=self.active):
            out.extend(self._evaluate(view, present_us=now_us))
        self._state.signals = present
        self.signals = SignalEngine(self.params, present)
        self._observed = {}
        return out

    def on_arrival(self, article_ids: Collection[str]) -> list[Output]:
        """The fast path: evaluate the ``burst`` rules as soon as these (just ingested) articles arrive.

        A burst is evaluated for the tick that will first count the articles (the next multiple of the
        step), with the articles that have arrived so far. The evaluation at that tick, when its time
        comes, sees these and any that arrive before it: a burst that holds now holds then (more
        articles never mean fewer stories), so the alert fired here is the one the tick, or a replay,
        would fire, with the same ``alert_id``. The tick is still to come: the event is stamped at the
        arrival of the article that completed the burst (read from the records, so a redelivery after a
        crash gives the same event).
        """
        bursts = [r for r in self.rules if r.burst is not None]
        if not bursts:
            return []
        st = self._state.signals
        last = st.last_tick
        ticks = sorted(
            {
                self.signals.ceil_tick(article.arrival_us)
                for article in (st.articles.get(i) for i in article_ids)
                if article is not None
            }
        )
        out: list[Output] = []
        for tick in ticks:
            if last is not None and tick <= last:
                continue  # already evaluated by the regular path
            waiting = [r for r in bursts if self.rule_state(r.name).status == "inactive"]
            if not waiting:
                break
            visible = [a for a in st.articles.values() if a.arrival_us <= tick]
            view = TickView(tick, visible)
            for rule in waiting:
                obs = observe(rule, view, coverage_start_us=self.signals.coverage_start_us)
                after, transition = step(rule, INACTIVE, tick, obs)
                if transition is None:
                    continue
                self._state.rules[rule.name] = after
                at_us = self._completed_at(rule, view, visible)
                out.append(self._event(rule, after, transition, obs, tick_us=tick, at_us=at_us, ahead=False))
        return out

    def _completed_at(self, rule: RuleConfig, view: TickView, visible: list[Article]) -> int:
        """The arrival time of the article that completed the burst seen in ``view``."""
        assert rule.burst is not None
        counted = view.articles(rule.subject, duration_us(rule.window))
        arrivals = sorted({a.arrival_us for a in counted if rule.burst.qualifies(a.stance)})
        tick = view.tick_us
        coverage = self.signals.coverage_start_us
        for arrival in arrivals:
            view = TickView(tick, [a for a in visible if a.arrival_us <= arrival])
            if observe(rule, view, coverage_start_us=coverage).fire:
                return arrival
        return tick

    # -- evaluation ----------------------------------------------------------------------------------
    def _evaluate(self, view: TickView, *, present_us: int | None = None) -> list[Output]:
        """Step every rule at ``view``'s tick. A tick after ``present_us`` has not happened (see
        :meth:`end_of_input`): no signal points, and alert events stamped at the present."""
        ahead = present_us is not None and view.tick_us > present_us
        out: list[Output] = [] if view.same_as_previous or ahead else list(self.signals.signal_updates(view))
        coverage = self.signals.coverage_start_us
        rules = self._state.rules
        for rule in self.rules:
            before = rules.get(rule.name, INACTIVE)
            if rule.burst is not None and before.since_us is not None and before.since_us > view.tick_us:
                continue  # fired on arrival for a later tick (see on_arrival)
            episode = before.direction if before.status == "firing" else None
            key = (episode, coverage, usable_buckets(rule, view.tick_us, coverage))
            cached = self._observed.get(rule.name)
            if view.same_as_previous and cached is not None and cached[0] == key:
                obs = cached[1]
            else:
                obs = observe(rule, view, coverage_start_us=coverage, episode=episode)
                self._observed[rule.name] = (key, obs)
            after, transition = step(rule, before, view.tick_us, obs)
            if after == INACTIVE:
                rules.pop(rule.name, None)
            else:
                rules[rule.name] = after
            if transition is None:
                continue
            state = after if transition != "resolve" else before
            at_us = view.tick_us if present_us is None else min(view.tick_us, present_us)
            out.append(
                self._event(rule, state, transition, obs, tick_us=view.tick_us, at_us=at_us, ahead=ahead)
            )
        return out

    def _event(
        self,
        rule: RuleConfig,
        state: RuleState,
        transition: Transition,
        obs: Observation,
        *,
        tick_us: int,
        at_us: int,
        ahead: bool,
    ) -> AlertEvent:
        """The alert event of ``transition`` (``state``: the episode's), published at ``at_us``."""
        assert state.alert_id is not None and state.since_us is not None
        started_us = min(state.since_us, at_us)
        common = {
            "alert_id": state.alert_id,
            "rule": rule.name,
            "severity": rule.severity,
            "subject": rule.subject,
            "signal": rule.signal,
            "value": obs.value,
            "threshold": obs.threshold,
            "baseline": obs.baseline,
            "window": window_label(rule.window),
            "started_at": from_us(started_us),
            "at": from_us(at_us),
            "end_of_input": ahead,
        }
        items = evidence(rule, obs, count=self.evidence_count)
        event: AlertEvent
        if transition == "resolve":
            event = AlertResolved(
                **common, evidence=items, summary=resolved_summary(rule, obs, started_us=started_us)
            )
        else:
            event = AlertFiring(**common, evidence=items, summary=firing_summary(rule, obs, items))
        log.info(
            "alert %s rule=%s subject=%s alert_id=%s value=%s at=%s tick=%s",
            _PAST[transition],
            rule.name,
            rule.subject,
            state.alert_id,
            obs.value,
            from_us(at_us),
            from_us(tick_us),
        )
        return event
