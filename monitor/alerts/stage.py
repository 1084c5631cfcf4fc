"""The alerter stage: ``news.scored`` in; ``news.signals`` and ``news.alerts`` out.

The signals and alert logic is :class:`monitor.alerts.engine.AlertEngine`; this module delivers what it
decides: to the bus, the routed alert topics, the webhook and Alertmanager, in the checkpoint's order,
with the engine's state kept in an :class:`AlerterStateStore` (SQLite: :mod:`monitor.store.alerts`).
:func:`pipelines.alerter.build_alerter` wires it from the settings and the config file.

Order of effects, and why (DESIGN §6: at-least-once, no alert lost, none fired twice)::

    consume batch -> engine (in memory) -> publish outputs, wait for acks -> save state -> commit offsets

* **outputs acked -> state saved**: the state never runs ahead of what is on the bus, so a crash can only
  make the alerter redo work, never skip an alert. The stage is the checkpoint's
  :class:`~monitor.bus.stage.StageState`: it saves after the acks and before the offsets are committed.
* **state saved -> offsets committed**: a crash between the two redelivers records the state already
  holds; the engine counts each ``article_id`` once, so they change nothing.
* **crash between acks and save** (kill -9 in a window of milliseconds): the restarted alerter redoes the
  batch from the old state and, the engine being deterministic, produces byte-identical events. At start
  it reads the alert topic and remembers every (``alert_id``, ``state``, ``at``) already there; such events
  are not published again. So no alert is published twice, and none is lost.
* A batch that fails in the engine is rolled back to the state before it (the runner then retries record
  by record and dead-letters what still fails); a failed publish rolls back to the last saved state.

The alternative, rebuilding all state from the topics at every start, would need ``news.scored`` kept for
the longest window plus baseline and a full replay per restart; persisting is cheaper and the replay
stays possible (a fresh state file and a new consumer group replay from the beginning, same alert ids).

One active alerter per group (``monitor alerter``, with a :class:`~monitor.bus.base.Lease`): every
process starts as a standby that reads the scored topic without joining the group and never past the
group's committed offsets (:class:`~monitor.bus.follow.Follower`), so its state follows the leader's and
is saved with its input positions; it publishes nothing. The lease holder first reads up to the last
commits ("catching_up"), publishes the alert events it computed that are not on the alert topic (the old
leader died between computing and publishing them: idle-clock outputs, which commit nothing), and from
then on publishes and commits like a group member. A leader that loses the lease rolls back to its saved
state and stands by. Without a lease (``monitor run``) the alerter is a plain member of its group.

"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry

from monitor.alerts.alertmanager import AlertmanagerSink
from monitor.alerts.engine import AlertEngine, AlertEvent, EngineState, Output
from monitor.alerts.lifecycle import STATE_VALUES
from monitor.alerts.routes import RouteConfig, route
from monitor.alerts.rules import RuleConfig
from monitor.alerts.webhook import WebhookSink
from monitor.bus.base import Bus, Consumer, Lease, Message, Producer, Record
from monitor.bus.follow import Follower
from monitor.bus.stage import BatchResult, Failure, Item, StageRunner
from monitor.errors import BusError, DecodeError
from monitor.events import (
    ALL_VIEWPOINTS,
    AlertFiring,
    AlertResolved,
    ArticleScored,
    SignalUpdated,
    decode,
    decode_alert,
    format_time,
)
from monitor.metrics import AlerterMetrics, StageMetrics
from monitor.settings import Settings
from monitor.signals.engine import Ingested, SignalParams, parse_signal_key
from monitor.signals.windows import duration_us, from_us, to_us, window_label

log = logging.getLogger(__name__)

STAGE = "alerter"
# Alert events a standby keeps to check against the alert topic when it takes over (the previous leader
# may have died before publishing the last ones); far more than a takeover can miss.
HELD_BACK_ALERTS = 10_000


class AlerterStateStore(Protocol):
    """Where the alerter keeps the engine's state between batches (SQLite: :mod:`monitor.store.alerts`);
    a store that cannot read or write raises :class:`~monitor.errors.StoreError`."""

    def load(self) -> EngineState: ...

    def is_empty(self) -> bool:
        """Whether nothing was ever saved (a first start)."""
        ...

    def positions(self) -> dict[tuple[str, int], int] | None:
        """The input offsets saved with the state (a standby resumes from them)."""
        ...

    def save(
        self, before: EngineState, after: EngineState, *, positions: dict[tuple[str, int], int] | None = None
    ) -> None:
        """Persist ``after`` (``before``: what the store holds now), with its input ``positions``."""
        ...

    def close(self) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _decode(data: bytes) -> ArticleScored:
    return decode(ArticleScored, data)


def partition_name(record: Record) -> str:
    """The name the engine uses for a record's input partition."""
    return f"{record.topic}[{record.partition}]"


def ledger_key(event: AlertFiring | AlertResolved) -> str:
    """What identifies one published alert event (re-notifications differ by ``at``)."""
    return f"{event.alert_id}/{event.state}/{format_time(event.at)}"


def read_ledger(
    bus: Bus, topic: str, *, timeout: float = 30.0, latest: dict[str, AlertEvent] | None = None
) -> set[str]:
    """The :func:`ledger_key` of every alert event on ``topic`` (read to its end, no consumer group).

    ``latest``: filled with the last event of each ``alert_id`` on the topic.
    """
    keys: set[str] = set()
    deadline = time.monotonic() + timeout
    partitions = getattr(bus, "topic_partitions", None)  # Kafka: a topic that does not exist has no alerts
    if partitions is not None and partitions(topic) == 0:
        return keys
    with bus.consumer([topic], group_id=None, from_beginning=True) as consumer:
        while any(consumer.lag().values()):
            for record in consumer.poll(max_records=1000, timeout=0.5):
                try:
                    event = decode_alert(record.value)
                except DecodeError:
                    continue  # not ours to judge here; `monitor alerts tail` reports such records
                keys.add(ledger_key(event))
                if latest is not None:
                    last = latest.get(event.alert_id)
                    if last is None or (event.at, event.state == "resolved") >= (
                        last.at,
                        last.state == "resolved",
                    ):
                        latest[event.alert_id] = event
            if time.monotonic() > deadline:
                raise BusError(
                    f"could not read the alert topic {topic} to its end in {timeout:.0f}s", retriable=True
                )
    return keys


@dataclass
class _Effects:
    """What a batch does beyond the bus, applied only once its outputs are acknowledged and saved."""

    alerts: list[tuple[Message, AlertEvent]] = field(default_factory=list)
    signals: list[tuple[Message, SignalUpdated]] = field(default_factory=list)
    dropped: int = 0
    copies: dict[int, list[Message]] = field(default_factory=dict)
    """The routed copies of an alert message (by the ``id`` of its message on the alert topic)."""

    def clear(self) -> None:
        self.alerts.clear()
        self.signals.clear()
        self.copies.clear()
        self.dropped = 0


class AlerterRunner(StageRunner[ArticleScored]):
    """The alerter's :class:`StageRunner`: when a poll brings nothing, the stage's idle policy runs."""

    def __init__(
        self,
        alerter: AlerterStage,
        *,
        consumer: Consumer,
        producer: Producer,
        deadletter_topic: str,
        metrics: StageMetrics,
        max_records: int,
        max_wait: float,
        poll_timeout: float,
    ) -> None:
        super().__init__(
            stage=STAGE,
            consumer=consumer,
            producer=producer,
            decode=_decode,
            process=alerter.process,
            deadletter_topic=deadletter_topic,
            metrics=metrics,
            max_records=max_records,
            max_wait=max_wait,
            poll_timeout=poll_timeout,
            state=alerter,
        )
        self._alerter = alerter

    def step(self) -> int:
        self._alerter.follow_lease()
        consumed = super().step()
        if consumed == 0:
            self._alerter.idle()
        self._alerter.last_progress = time.monotonic()
        return consumed


class AlerterStage:
    """The alerter wired to a bus: a :class:`~monitor.bus.stage.Stage`; call :meth:`close` at the end.

    * ``stage.run(stop_event)`` (or ``stage.step()`` in a loop): consume, evaluate, publish.
    * ``stage.flush()``: end of input (``monitor run --once``): evaluate through the last article plus the
      longest ``for`` of the rules (what is decided after the present is stamped at the present and
      marked ``end_of_input``), publish, return the alert events published.
    * ``stage.close()``: stop the webhook and Alertmanager workers, close producer, consumer and state file.
    * ``stage.health()``: for ``MetricsServer(health=...)``.
    """

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        registry: CollectorRegistry,
        *,
        rules: Sequence[RuleConfig],
        routes: Sequence[RouteConfig],
        params: SignalParams,
        store: AlerterStateStore,
        stage_metrics: StageMetrics | None = None,
        on_alert: Callable[[AlertEvent], None] | None = None,
        max_wait: float = 0.5,
        poll_timeout: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        lease: Lease | None = None,
    ) -> None:
        a = settings.alerter
        if clock is None:
            clock = _utc_now
        self._clock = clock
        self._lease = lease
        self._settings = settings
        self._topics = settings.kafka.topics
        self._on_alert = on_alert
        self._rules = tuple(rules)
        self._routes = tuple(routes)
        self.metrics = AlerterMetrics(registry)
        self.store = store  # the stage's from now on: closed with it
        self._sink: WebhookSink | None = None
        self._alertmanager: AlertmanagerSink | None = None
        latest: dict[str, AlertEvent] = {}
        try:
            self.engine = AlertEngine(
                rules=self._rules, params=params, state=self.store.load(), evidence_count=a.evidence_articles
            )
            self._ledger = read_ledger(bus, self._topics.alerts, latest=latest)
            self._copied = self._read_copies(bus)
            self._producer = bus.producer()
            self._follower: Follower | None = None
            if lease is None:
                self._consumer: Consumer = bus.consumer(
                    [self._topics.scored], group_id=a.group_id, from_beginning=True
                )
            else:
                self._follower = self._follow_from(bus, a.group_id)
                self._consumer = self._follower
        except BaseException:
            self.store.close()
            raise
        # "leader": publishes and commits; "standby": follows the group's commits, publishes nothing;
        # "catching_up": holds the lease, reads up to the last commits of the previous leader.
        self.role = "leader" if lease is None else "standby"
        self._saved_positions = self._follower.positions() if self._follower is not None else None
        self._held_back: dict[str, tuple[Message, AlertEvent]] = {}
        self._held_back_signals: dict[str, Message] = {}
        self._catching_up_since = 0.0
        self._saved: EngineState = self.engine.checkpoint()
        # A first start folds the back catalogue in at its event times (see AlerterSettings.backfill):
        # no tick is evaluated until the input present at the start is read, and what is computed for
        # times before the start is marked and not notified.
        self._backfill_until: int | None = None
        if a.backfill and self.engine.state.signals.last_tick is None and self.store.is_empty():
            self._backfill_until = to_us(clock())
        self._backfill_ending = False
        self._effects = _Effects()
        self._duplicates: set[int] = set()  # ids of this batch's messages already on the bus
        self._ledger_stale = False
        self._bus = bus
        if a.webhook_url is not None:
            self._sink = WebhookSink(
                a.webhook_url.get_secret_value(),
                timeout=a.webhook_timeout,
                max_retries=a.webhook_max_retries,
                queue_size=a.webhook_queue_size,
                metrics=self.metrics,
            )
        if a.alertmanager_url is not None:
            self._alertmanager = AlertmanagerSink(
                a.alertmanager_url,
                resolve_timeout=a.alertmanager_resolve_timeout,
                timeout=a.alertmanager_timeout,
                max_retries=a.alertmanager_max_retries,
                queue_size=a.alertmanager_queue_size,
                metrics=self.metrics,
                clock=clock,
            )
            if self.role == "leader":
                self._alertmanager.resume(self._still_firing(latest))
        self.last_progress = time.monotonic()
        self.runner = AlerterRunner(
            self,
            consumer=self._consumer,
            producer=self._producer,
            deadletter_topic=self._topics.deadletter,
            metrics=stage_metrics or StageMetrics(registry),
            max_records=a.batch_size,
            max_wait=max_wait,
            poll_timeout=poll_timeout,
        )
        self.runner.silent = self.role != "leader"
        self.metrics.leader.set(1 if self.role == "leader" else 0)
        if self.role == "leader":
            self._export_state()
        log.info(
            "alerter ready (%s): %d rules, windows %s, step %s, %d alert events already on %s",
            self.role,
            len(self._rules),
            [window_label(w) for w in params.windows],
            a.evaluation_step,
            len(self._ledger),
            self._topics.alerts,
        )

    # -- the batch ------------------------------------------------------------------------------------
    def process(self, items: Sequence[Item[ArticleScored]]) -> BatchResult:
        """Feed a batch to the engine and return the outputs to publish (atomic: all or nothing)."""
        checkpoint = self.engine.checkpoint()
        marks = (len(self._effects.alerts), len(self._effects.signals), self._effects.dropped)
        failures: list[Failure] = []
        accepted: list[str] = []
        now_us = to_us(self._clock())
        try:
            for item in items:
                record = item.record
                # The broker's timestamp, bounded by the wall clock: no record can move the clock past now.
                received = now_us if record.timestamp_ms is None else min(record.timestamp_ms * 1000, now_us)
                result = self.engine.ingest(
                    item.event,
                    partition=partition_name(record),
                    received_us=received,
                    backfill=self._backfill_until is not None,
                )
                if result.outcome == "future":
                    failures.append(Failure(record, self._future_reason(item.event, received)))
                    continue
                self._ingested(result, item)
                if result.outcome == "accepted":
                    accepted.append(result.article_id)
            outputs = self._advance()
            if self._backfill_until is None:  # the fast path (burst rules); live alerting only
                outputs.extend(self.engine.on_arrival(accepted))
        except Exception:
            self.engine.restore(checkpoint)
            self._backfill_ending = False
            del self._effects.alerts[marks[0] :]
            del self._effects.signals[marks[1] :]
            self._effects.dropped = marks[2]
            raise
        return BatchResult(messages=self._messages(outputs), failures=failures)

    def _advance(self) -> list[Output]:
        """Evaluate the ticks the input allows; on a first start, nothing until the input present at the
        start is read, then all of the past at once, its alert events marked as backfill."""
        behind = self._behind()
        if self._backfill_until is None:
            return self.engine.advance(behind)
        if behind is None or behind:
            return []
        return self._end_backfill(self.engine.advance(behind))

    def _end_backfill(self, outputs: list[Output]) -> list[Output]:
        until = self._backfill_until
        assert until is not None
        self._backfill_ending = True  # over once these outputs are published (see _backfill_published)
        marked: list[Output] = [
            o.model_copy(update={"backfill": True})
            if isinstance(o, AlertFiring | AlertResolved) and to_us(o.at) <= until
            else o
            for o in outputs
        ]
        past = sum(1 for o in marked if isinstance(o, AlertFiring | AlertResolved) and o.backfill)
        log.info(
            "first start: the back catalogue folded in (%d articles in the windows, from %s); "
            "%d alert events for the past published as backfill, not notified",
            len(self.engine.state.signals.articles),
            "-"
            if self.engine.state.signals.history_start is None
            else format_time(from_us(self.engine.state.signals.history_start)),
            past,
        )
        return marked

    def _future_reason(self, event: ArticleScored, received_us: int) -> str:
        received = from_us(received_us)
        ahead = event.fetched_at - received
        log.warning(
            "article from the future refused article_id=%s fetched_at=%s received=%s",
            event.article_id,
            format_time(event.fetched_at),
            format_time(received),
        )
        return (
            f"fetched_at {format_time(event.fetched_at)} is {ahead} after the record reached the bus "
            f"({format_time(received)}; tolerance {self.engine.params.future_tolerance})"
        )

    def _ingested(self, result: Ingested, item: Item[ArticleScored]) -> None:
        if result.outcome == "dropped":
            self._effects.dropped += 1
            log.info(
                "late article dropped article_id=%s partition=%s offset=%s lateness=%s (allowed %s)",
                result.article_id,
                item.record.partition,
                item.record.offset,
                result.lateness,
                self.engine.params.allowed_lateness,
            )

    def _behind(self) -> set[str] | None:
        try:
            lag = self._consumer.lag()
        except BusError as exc:
            log.debug("consumer lag unknown (%s); holding the clock at the slowest partition", exc)
            return None
        return {f"{topic}[{partition}]" for (topic, partition), n in lag.items() if n > 0}

    def _messages(self, outputs: Sequence[Output]) -> list[Message]:
        messages = []
        for output in outputs:
            if isinstance(output, SignalUpdated):
                signal_message = Message(self._topics.signals, output.key, output.encode())
                messages.append(signal_message)
                self._effects.signals.append((signal_message, output))
            else:
                message = Message(self._topics.alerts, output.key, output.encode())
                copies = self._routed(output, message)
                messages.append(message)
                messages.extend(copies)
                self._effects.alerts.append((message, output))
                if copies:
                    self._effects.copies[id(message)] = copies
        return messages

    def _read_copies(self, bus: Bus) -> set[tuple[str, str]]:
        """(topic, :func:`ledger_key`) of every alert event already on a routed alert topic."""
        topics = sorted({r.topic for r in self._routes} - {self._topics.alerts})
        return {(topic, key) for topic in topics for key in read_ledger(bus, topic)}

    def _routed(self, event: AlertEvent, message: Message) -> list[Message]:
        """Copies of an alert event's message for the alert topics its routes name."""
        return [
            Message(topic, message.key, message.value)
            for topic in route(self._routes, event)
            if topic != self._topics.alerts
        ]

    def _still_firing(self, latest: dict[str, AlertEvent]) -> list[AlertFiring]:
        """The episodes whose last event on the alert topic is a live firing one (not backfill) and that the
        engine still holds firing (re-posted to Alertmanager when this alerter becomes the active one)."""
        out = []
        for event in latest.values():
            state = self.engine.rule_state(event.rule)
            if (
                isinstance(event, AlertFiring)
                and not event.backfill  # the past is published for the record, never notified
                and state.status == "firing"
                and state.alert_id == event.alert_id
            ):
                out.append(event)
        return out

    # -- acks, then state (the checkpoint's StageState) -------------------------------------------------
    def outgoing(self, messages: Sequence[Message]) -> list[Message]:
        """Of a batch's outputs, those not on the bus yet (a restart redoes what it had published); none
        on a standby (see :meth:`_hold_back`)."""
        self._duplicates.clear()
        if self.role != "leader":
            return []
        if self._ledger_stale:
            self._ledger = read_ledger(self._bus, self._topics.alerts)
            self._copied = self._read_copies(self._bus)
            self._ledger_stale = False
        duplicates = self._duplicates
        for m, event in self._effects.alerts:
            key = ledger_key(event)
            if key in self._ledger:
                duplicates.add(id(m))
            # Each copy against its own topic: a crash between the two acknowledgements left only one.
            duplicates.update(
                id(c) for c in self._effects.copies.get(id(m), ()) if (c.topic, key) in self._copied
            )
        if duplicates:
            log.info(
                "%d alert events are already on %s (published before a restart); not again",
                len(duplicates),
                self._topics.alerts,
            )
        return [m for m in messages if id(m) not in duplicates]

    def save(self) -> None:
        """The outputs are acknowledged: save the state, then notify (webhook, Alertmanager, caller)."""
        if self.role != "leader":
            self._hold_back()
            return
        before = self._save_state()
        self._apply(
            self._duplicates, late=self.engine.state.signals.late_accepted - before.signals.late_accepted
        )

    def discard(self) -> None:
        """Publishing failed; some of the batch may be on the bus: re-read the ledger before the retry."""
        self._ledger_stale = True
        self.engine.restore(self._saved.copy())
        self._effects.clear()
        self._backfill_ending = False

    def _save_state(self) -> EngineState:
        """Persist the engine's state (with its input positions, on a lease); return what was saved before."""
        positions = self._follower.positions() if self._follower is not None else None
        before = self._saved
        self.store.save(before, self.engine.state, positions=positions)
        self._saved = self.engine.checkpoint()
        self._saved_positions = positions
        return before

    def _hold_back(self) -> None:
        """Standby: keep the batch's outputs unpublished (the leader publishes them) and save the state.

        The held-back alert events are checked against the alert topic when this alerter takes over: those
        the previous leader computed but died before publishing are published then, so none is lost.
        """
        assert self._follower is not None
        for message, event in self._effects.alerts:
            self._held_back[ledger_key(event)] = (message, event)
        if len(self._held_back) > HELD_BACK_ALERTS:  # a standby for months: keep the newest events
            newest = sorted(self._held_back.items(), key=lambda item: item[1][1].at)[-HELD_BACK_ALERTS:]
            self._held_back = dict(newest)
        for message, update in self._effects.signals:
            self._held_back_signals[update.key] = message
        self._save_state()
        self._effects.clear()
        self._backfill_published()

    def _apply(self, duplicates: set[int], late: int) -> None:
        effects = self._effects
        if late:
            self.metrics.late_articles.labels("accepted").inc(late)
        if effects.dropped:
            self.metrics.late_articles.labels("dropped").inc(effects.dropped)
        for _message, update in effects.signals:
            self._set_signal(update.signal, update.topic, update.window, update.viewpoint, update.value)
        for message, event in effects.alerts:
            key = ledger_key(event)
            self._ledger.add(key)
            self._copied.update((c.topic, key) for c in effects.copies.get(id(message), ()))
            if id(message) not in duplicates and not event.backfill:
                self._notify(event)
        effects.clear()
        self._export_rule_states()
        self._backfill_published()

    def _backfill_published(self) -> None:
        """The outputs that ended the backfill are saved: from now on, alerting is live."""
        if self._backfill_ending:
            self._backfill_until = None
            self._backfill_ending = False

    def _notify(self, event: AlertEvent) -> None:
        """An alert event is on the bus: count it, hand it to the webhook and the caller."""
        self.metrics.alerts.labels(event.rule, event.severity, event.state).inc()
        if self._sink is not None:
            self._sink.submit(event)
        if self._alertmanager is not None:
            self._alertmanager.submit(event)
        if self._on_alert is not None:
            self._on_alert(event)

    def _set_signal(
        self, signal_name: str, topic: str, window: str, viewpoint: str, value: float | None
    ) -> None:
        number = float("nan") if value is None else value
        if viewpoint == ALL_VIEWPOINTS:
            self.metrics.signal_value.labels(signal_name, topic, window).set(number)
        else:
            self.metrics.viewpoint_signal_value.labels(signal_name, topic, window, viewpoint).set(number)

    def _export_rule_states(self) -> None:
        for rule in self._rules:
            status = self.engine.rule_state(rule.name).status
            self.metrics.alert_state.labels(rule.name, rule.subject, rule.severity).set(STATE_VALUES[status])

    def _export_state(self) -> None:
        for key, (value, _articles, _stories) in self.engine.state.signals.published.items():
            self._set_signal(*parse_signal_key(key), value)
        self._export_rule_states()

    def _publish_outputs(self, outputs: Sequence[Output]) -> list[AlertEvent]:
        """Publish outputs produced outside a consumed batch (idle clock, end of input)."""
        alerts = [event for event in outputs if isinstance(event, AlertFiring | AlertResolved)]
        self.runner.checkpoint.commit(self._messages(outputs))
        return alerts

    # -- clock without input ---------------------------------------------------------------------------
    def idle(self) -> None:
        """The input is quiet: if every partition is read to its end, move the clock with the wall clock."""
        if not self._settings.alerter.idle_advance:
            return
        try:
            lag = self._consumer.lag()
        except BusError as exc:
            log.debug("consumer lag unknown (%s); the clock waits", exc)
            return
        # No assignment yet (a group still forming) is not "caught up": a backlog may be waiting.
        if not lag or any(lag.values()):
            return
        if self._backfill_until is not None:
            if self.engine.state.signals.history_start is None:
                return  # nothing read yet: the back catalogue may still be on its way
            self._publish_outputs(self._end_backfill(self.engine.advance(set())))
            return
        until = to_us(self._clock()) - duration_us(self._settings.alerter.arrival_grace)
        last = self.engine.state.signals.last_tick
        if last is not None and until <= last + self.engine.signals.step_us:
            return
        checkpoint = self.engine.checkpoint()
        try:
            outputs = self.engine.advance_to(until)
        except Exception:
            self.engine.restore(checkpoint)
            raise
        if self.engine.state.signals.last_tick != last:
            self._publish_outputs(outputs)

    def flush(self) -> list[AlertEvent]:
        """End of input: evaluate to the last article plus the longest ``for`` (events decided after the
        present stamped at the present, see :meth:`AlertEngine.end_of_input`); publish; return the alerts."""
        checkpoint = self.engine.checkpoint()
        try:
            outputs = self.engine.end_of_input(now_us=to_us(self._clock()))
            if self._backfill_until is not None:
                outputs = self._end_backfill(outputs)
        except Exception:
            self.engine.restore(checkpoint)
            raise
        return self._publish_outputs(outputs)

    # -- the stage (monitor.bus.stage.Stage) ----------------------------------------------------------
    name = STAGE

    def step(self) -> int:
        """One micro-batch of the scored topic (or, with none, the idle clock); the records consumed."""
        return self.runner.step()

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set (bus errors back off and retry)."""
        self.runner.run(stop)

    @property
    def backfilling(self) -> bool:
        """A first start whose back catalogue is not folded in yet (see ``AlerterSettings.backfill``)."""
        return self._backfill_until is not None

    # -- one active alerter ---------------------------------------------------------------------------
    def _follow_from(self, bus: Bus, group_id: str) -> Follower:
        """Read every partition of the scored topic without joining the group, from where the saved
        state stands (a state saved before positions were recorded stands at the group's commits)."""
        consumer = bus.consumer([self._topics.scored], group_id=group_id, member=False)
        try:
            start = self.store.positions()
            if start is None and not self.store.is_empty():
                start = consumer.committed()
            follower = Follower(consumer)
            follower.seek(start or {})
        except BaseException:
            consumer.close()
            raise
        return follower

    def follow_lease(self) -> None:
        """Before each step: become the active alerter when the lease is ours, stand by when it is not."""
        if self._lease is None:
            return
        held = self._lease.held()
        if not held:
            if self.role != "standby":
                self._stand_by()
            return
        assert self._follower is not None
        if self.role == "standby":
            self.role = "catching_up"
            self._catching_up_since = time.monotonic()
            self._follower.refresh_committed()
            log.info("alerter holds the lease: reading up to the previous leader's last commits")
        if self.role == "catching_up" and self._follower.caught_up():
            self._take_over()

    def _take_over(self) -> None:
        """Publish what the previous leader computed but never published, then publish and commit."""
        assert self._follower is not None
        latest: dict[str, AlertEvent] = {}
        self._ledger = read_ledger(self._bus, self._topics.alerts, latest=latest)
        self._copied = self._read_copies(self._bus)
        held = sorted(self._held_back.items())
        missing = [(m, e) for key, (m, e) in held if key not in self._ledger]
        signals = list(self._held_back_signals.values())
        copies = [c for key, (m, e) in held for c in self._routed(e, m) if (c.topic, key) not in self._copied]
        self._producer.publish_all(
            [m for m, _ in missing] + copies + signals
        )  # a BusError: retried next step
        if self._alertmanager is not None:
            self._alertmanager.resume(self._still_firing(latest))
        self._copied.update((c.topic, key) for key, (m, e) in held for c in self._routed(e, m))
        for _message, event in missing:
            self._ledger.add(ledger_key(event))
            self._notify(event)
        self._held_back.clear()
        self._held_back_signals.clear()
        self._follower.bounded = False
        self.role = "leader"
        self.runner.silent = False
        self.metrics.leader.set(1)
        self.metrics.takeovers.inc()
        self._export_state()
        log.warning(
            "alerter is the active one now (caught up in %.1fs; %d alert events the previous leader had "
            "not published, published now)",
            time.monotonic() - self._catching_up_since,
            len(missing),
        )

    def _stand_by(self) -> None:
        """The lease is gone (or was never caught up to): publish nothing, follow the group's commits."""
        assert self._follower is not None
        was = self.role
        self.role = "standby"
        self.runner.silent = True
        self.metrics.leader.set(0)
        if self._alertmanager is not None:
            self._alertmanager.forget()
        if was == "leader":
            self.engine.restore(self._saved.copy())
            self._effects.clear()
            self._follower.bounded = True
            self._follower.seek(self._saved_positions or {})
            log.warning("alerter lost the lease: standing by, publishing nothing")

    # -- lifecycle ------------------------------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        """Healthy while the loop made progress in the last two minutes (a standby's too)."""
        quiet = time.monotonic() - self.last_progress
        if quiet > 120:
            return False, f"no progress for {quiet:.0f}s"
        return True, "ok" if self.role == "leader" else f"ok ({self.role})"

    def close(self) -> None:
        """Give up the lease, stop the webhook worker, close the consumer, producer and state file."""
        if self._lease is not None:
            try:
                self._lease.close()
            except BusError as exc:
                log.warning("giving up the alerter lease: %s", exc)
        if self._sink is not None:
            self._sink.close()
        if self._alertmanager is not None:
            self._alertmanager.close()
        for close in (self._consumer.close, self._producer.close):
            try:
                close()
            except BusError as exc:
                log.warning("closing the alerter's bus clients: %s", exc)
        self.store.close()
