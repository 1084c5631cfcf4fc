"""``monitor rescore`` and ``monitor eval-alerts``: judge a model on history before it goes live.

``monitor rescore`` reads the articles topic (Kafka, or the embedded bus in ``state/bus.sqlite3``) from
the beginning up to the end offsets it finds when it starts, scores every article with the current model
and publishes the results to ``--output-topic`` (default: the scored topic), keyed by ``article_id`` like
the live scorer's. It reads without a consumer group and commits nothing, so the live scorer is not
disturbed. Each record keeps as ``scored_at`` the time the article first reached the live scored topic
(so a fresh alerter replaying the output counts it at the same tick as the live one did) and carries
``rescored_at``; see :mod:`monitor.classify.rescore`. Undecodable records and articles without text go to
the dead-letter topic with the reason, as in the scorer (:class:`~monitor.bus.stage.StageRunner`).

``monitor eval-alerts A B`` replays two scored histories (topics, ``TOPIC@VERSION`` for one model's
records, or JSON Lines files) through the alert engine, as fresh alerters would, and prints how their
alerts differ (:mod:`monitor.alerts.replay`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.alerts.replay import ScoredRecord, compare, format_table, replay_alerts
from monitor.bus import BUS_LOG_FILE, Bus, make_bus, topic_specs
from monitor.bus.base import Message, Record, TopicSpec, partition_for
from monitor.bus.bounded import Bounded
from monitor.bus.buslog import read_topic
from monitor.bus.stage import BatchResult, Failure, Item, StageRunner
from monitor.classify import Classifier
from monitor.classify.rescore import (
    Skipped,
    arrival_time,
    describe_progress,
    first_scored_at,
    parse_since,
    rescore_articles,
)
from monitor.classify.scoring import Unscorable
from monitor.config import load_config
from monitor.errors import ConfigError, DecodeError
from monitor.events import ArticleFetched, ArticleScored, decode
from monitor.metrics import StageMetrics
from monitor.settings import Settings
from monitor.signals.windows import to_us
from pipelines.alerter import engine_params

log = logging.getLogger(__name__)

STAGE = "rescore"
PROGRESS_EVERY = 5.0
"""Seconds between progress lines on stderr."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _decode(data: bytes) -> ArticleFetched:
    return decode(ArticleFetched, data)


def iter_records(bus: Bus, topic: str) -> Iterator[Record]:
    """Every record of ``topic`` as it stands now, partition by partition as they come (no consumer
    group; a topic that does not exist has none)."""
    partitions = getattr(bus, "topic_partitions", None)  # Kafka: reading a missing topic is an error
    if partitions is not None and partitions(topic) == 0:
        return
    consumer = Bounded(bus.consumer([topic], group_id=None, from_beginning=True))
    try:
        while not consumer.done:
            yield from consumer.poll(max_records=1000, timeout=1.0)
    finally:
        consumer.close()


def read_all(bus: Bus, topic: str) -> list[Record]:
    """:func:`iter_records` as a list."""
    return list(iter_records(bus, topic))


class Rescorer:
    """The ``process`` of the re-scoring :class:`StageRunner`: arrival times kept, ``rescored_at`` set."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        output_topic: str,
        known: dict[str, datetime],
        since: datetime | None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.classifier = classifier
        self._topic = output_topic
        self._known = known
        self._since = since
        self._clock = clock

    def process(self, items: Sequence[Item[ArticleFetched]]) -> BatchResult:
        pairs = [(item.event, arrival_time(item.event, item.record, self._known)) for item in items]
        results = rescore_articles(self.classifier, pairs, now=self._clock(), since=self._since)
        out = BatchResult()
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Skipped):
                continue
            if isinstance(result, Unscorable):
                out.failures.append(Failure(item.record, result.reason))
                continue
            out.messages.append(Message(self._topic, result.article_id, result.encode(), source=item.record))
        return out


@dataclass
class RescoreSummary:
    """What a re-scoring did (counted once the outputs were acknowledged)."""

    read: int = 0
    rescored: int = 0
    deadlettered: int = 0
    known_arrivals: int = 0

    @property
    def skipped(self) -> int:
        return self.read - self.rescored - self.deadlettered


def rescore(
    bus: Bus,
    classifier: Classifier,
    *,
    articles_topic: str,
    scored_topic: str,
    output_topic: str,
    deadletter_topic: str,
    since: datetime | None = None,
    create: Sequence[TopicSpec] = (),
    batch_size: int = 32,
    registry: CollectorRegistry | None = None,
    progress: Callable[[str], None] = lambda line: None,
    clock: Callable[[], datetime] = _utc_now,
) -> RescoreSummary:
    """Re-score ``articles_topic`` as it stands now into ``output_topic`` (see the module docstring).

    ``scored_topic``: the live scored topic, read first for the arrival time of each article. ``create``:
    topics to create first where missing (the output topic laid out like the scored topic, so that each
    article lands in the partition its live record is in, in the same order). Returns when
    every record present at the start is scored (or dead-lettered) and acknowledged; raises
    :class:`~monitor.errors.BusError` if the bus fails (nothing is committed: run it again).
    """
    registry = registry or CollectorRegistry()
    if create:
        bus.create_topics(create)
    known = first_scored_at(iter_records(bus, scored_topic))
    metrics = StageMetrics(registry)
    rescorer = Rescorer(classifier, output_topic=output_topic, known=known, since=since, clock=clock)
    consumer = Bounded(bus.consumer([articles_topic], group_id=None, from_beginning=True))
    producer = bus.producer()
    try:
        total = consumer.remaining()
        runner = StageRunner(
            stage=STAGE,
            consumer=consumer,
            producer=producer,
            decode=_decode,
            process=rescorer.process,
            deadletter_topic=deadletter_topic,
            metrics=metrics,
            max_records=batch_size,
            max_wait=0.0,
        )
        info = classifier.info
        progress(
            f"{total} records on {articles_topic} -> {output_topic} with {info.name} {info.version} "
            f"({len(known)} arrival times from {scored_topic})"
        )
        started = last = time.monotonic()
        done = 0
        while not consumer.done:
            done += runner.step()
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                progress(describe_progress(done, total, elapsed=timedelta(seconds=last - started)))
    finally:
        try:
            consumer.close()
        finally:
            producer.close()

    def count(name: str, topic: str) -> int:
        value = registry.get_sample_value(name, {"stage": STAGE, "topic": topic})
        return int(value or 0)

    summary = RescoreSummary(
        read=count("monitor_records_consumed_total", articles_topic),
        rescored=count("monitor_records_published_total", output_topic),
        deadlettered=count("monitor_deadletters_total", articles_topic),
        known_arrivals=len(known),
    )
    progress(
        f"done in {time.monotonic() - started:.1f}s: {summary.read} read, {summary.rescored} re-scored, "
        f"{summary.skipped} before --since, {summary.deadlettered} dead-lettered"
    )
    return summary


def _classifier(name: str, settings: Settings) -> Classifier:
    if name == "rules":
        from monitor.classify.lexicon import RuleClassifier

        return RuleClassifier()
    from monitor.classify import load_classifier

    return load_classifier(settings.scorer)


def output_spec(settings: Settings, name: str) -> TopicSpec:
    """The output topic laid out like the scored topic (partitions, retention)."""
    scored = next(s for s in topic_specs(settings) if s.name == settings.kafka.topics.scored)
    return TopicSpec(name, scored.partitions, scored.replication_factor, dict(scored.config))


def _open_bus(settings: Settings, command: str) -> Bus:
    if not settings.uses_kafka and not settings.state_path(BUS_LOG_FILE).exists():
        raise ConfigError(
            source="settings",
            key="MONITOR_STATE_DIR",
            expected=f"the state folder of `monitor run` (no {BUS_LOG_FILE} there) or Kafka bootstrap "
            f"servers for `monitor {command}`",
            got=str(settings.state_dir),
        )
    return make_bus(settings, durable=True)


def _stderr(command: str) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"monitor {command}: {line}", file=sys.stderr, flush=True)

    return say


def main(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor rescore [--output-topic TOPIC] [--since TIME] [--classifier model|rules]``.

    Prints one JSON summary on stdout; progress on stderr. Without Kafka it works on the embedded bus
    (``state/bus.sqlite3``): `monitor run` must not be running on that state folder meanwhile.
    """
    topics = settings.kafka.topics
    output = args.output_topic or topics.scored
    if output in (topics.articles, topics.signals, topics.alerts, topics.deadletter, topics.alerter_lease):
        raise ConfigError(
            source="command line", key="--output-topic", expected="a topic for scored records", got=output
        )
    since = None
    if args.since:
        try:
            since = parse_since(args.since, now=_utc_now())
        except ValueError as exc:
            raise ConfigError(source="command line", key="--since", expected=str(exc)) from exc
    classifier = _classifier(args.classifier, settings)
    bus = _open_bus(settings, "rescore")
    try:
        deadletter = [s for s in topic_specs(settings) if s.name == topics.deadletter]
        summary = rescore(
            bus,
            classifier,
            articles_topic=topics.articles,
            scored_topic=topics.scored,
            output_topic=output,
            deadletter_topic=topics.deadletter,
            since=since,
            create=[*deadletter, output_spec(settings, output)],
            batch_size=settings.scorer.batch_size,
            progress=_stderr("rescore"),
        )
    finally:
        bus.close()
    info = classifier.info
    print(
        json.dumps(
            {
                "model": {"name": info.name, "version": info.version},
                "input": topics.articles,
                "output": output,
                "since": None if since is None else since.isoformat().replace("+00:00", "Z"),
                "read": summary.read,
                "rescored": summary.rescored,
                "skipped": summary.skipped,
                "deadlettered": summary.deadlettered,
            }
        )
    )
    return 0


# -- eval-alerts ---------------------------------------------------------------------------------------


@dataclass
class History:
    """The scored records of one side of ``monitor eval-alerts``."""

    label: str
    records: int = 0
    models: Counter[str] = field(default_factory=Counter)
    undecodable: int = 0
    other_versions: int = 0

    def to_json_dict(self) -> dict[str, object]:
        return {
            "input": self.label,
            "records": self.records,
            "models": dict(sorted(self.models.items())),
            "undecodable": self.undecodable,
            "other_versions": self.other_versions,
        }


def _split(spec: str) -> tuple[str, str | None]:
    """``TOPIC_OR_FILE[@VERSION]``."""
    name, at, version = spec.rpartition("@")
    return (name, version) if at and name and version else (spec, None)


def _is_file(name: str) -> bool:
    return name.endswith((".jsonl", ".json")) or "/" in name or name == "-"


def _raw(name: str, settings: Settings) -> Iterator[tuple[str | None, bytes, int | None]]:
    """``(partition name, value, receipt time in µs)`` of each record of a topic or file, in order (a
    file's lines have no partition: None)."""
    if _is_file(name):
        path = Path(name)
        try:
            with sys.stdin.buffer if name == "-" else path.open("rb") as f:
                for line in f:
                    if line.strip():
                        yield None, line, None
        except OSError as exc:
            raise ConfigError(source=name, key="", expected="a readable JSON Lines file") from exc
        return

    def stamped(records: Iterable[Record]) -> Iterator[tuple[str | None, bytes, int | None]]:
        for r in records:
            yield f"p{r.partition}", r.value, None if r.timestamp_ms is None else r.timestamp_ms * 1000

    if settings.uses_kafka:
        bus = make_bus(settings)
        try:
            yield from stamped(iter_records(bus, name))
        finally:
            bus.close()
    else:  # read-only, safe beside a running `monitor run`
        yield from stamped(read_topic(settings.state_path(BUS_LOG_FILE), name))


def scored_records(spec: str, settings: Settings, history: History, *, now_us: int) -> Iterator[ScoredRecord]:
    """The scored records named by ``spec``, counted in ``history`` as they are read: a topic, a JSON
    Lines file (a path, ``.jsonl``), either with ``@VERSION`` to keep only the records of that model
    version. A file's lines are read as the partitions of a topic with ``kafka.partitions`` partitions
    would hold them (by key, in file order)."""
    name, version = _split(spec)
    for partition, value, received in _raw(name, settings):
        try:
            event = decode(ArticleScored, value)
        except DecodeError:
            history.undecodable += 1
            continue
        if version is not None and event.model.version != version:
            history.other_versions += 1
            continue
        history.records += 1
        history.models[f"{event.model.name} {event.model.version}"] += 1
        # a file's line: in the partition the bus would have put its key in
        where = partition or f"p{partition_for(event.article_id, settings.kafka.partitions)}"
        bounded = None if received is None else min(received, now_us)
        yield ScoredRecord(where, event, bounded)


def eval_alerts(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor eval-alerts A B [--format text|json]``: the alerts A and B give, and how they differ.

    Exit 0 when compared (whatever the differences); the table or JSON object is on stdout.
    """
    config = load_config(settings.config)
    params = engine_params(settings, config)
    now_us = to_us(_utc_now())
    sides = [History(args.a), History(args.b)]
    alerts = [
        replay_alerts(
            scored_records(side.label, settings, side, now_us=now_us),
            rules=config.rules,
            params=params,
            now_us=now_us,
            backfill=settings.alerter.backfill,
            evidence_count=settings.alerter.evidence_articles,
        )
        for side in sides
    ]
    for side in sides:
        if side.undecodable:
            log.warning("%s: %d records are not scored articles; left out", side.label, side.undecodable)
    comparison = compare(alerts[0], alerts[1])
    if args.format == "json":
        print(
            json.dumps(
                {
                    "a": sides[0].to_json_dict() | {"alert_events": len(alerts[0])},
                    "b": sides[1].to_json_dict() | {"alert_events": len(alerts[1])},
                    "differs": comparison.differs,
                    "counts": comparison.counts(),
                    "episodes": [p.to_json_dict() for p in comparison.pairings],
                }
            )
        )
    else:
        for tag, side in zip("AB", sides, strict=True):
            models = ", ".join(f"{m} ({n})" for m, n in sorted(side.models.items())) or "no records"
            print(f"{tag}: {side.label}: {side.records} scored records: {models}")
        print(format_table(comparison, label_a=sides[0].label, label_b=sides[1].label))
    return 0
