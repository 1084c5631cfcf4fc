"""The scorer stage: ``news.articles`` in, ``news.scored`` out (``monitor scorer``).

Wiring only: the classifier is :mod:`monitor.classify`; the loop (micro-batch -> decode -> score ->
publish, wait for acks -> commit) is :class:`~monitor.bus.stage.StageRunner`. Micro-batches hold at most
``scorer.batch_size`` records and wait at most ``scorer.max_wait`` after the first one. Undecodable records
and articles without any text go to the dead-letter topic with the reason; a batch the classifier fails on
is retried record by record and only the failing records are dead-lettered. Offsets are committed only
after the scored records are acknowledged, so a scorer killed mid-batch re-scores that batch on restart
(duplicates possible, losses not; consumers dedup by ``article_id``).

:func:`build_scorer` is what ``monitor run`` composes; :func:`main` is ``monitor scorer`` on Kafka.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from monitor.bus import Bus, make_bus, topic_specs
from monitor.bus.base import Consumer, Message, Producer
from monitor.bus.stage import BatchResult, Failure, Item, StageRunner
from monitor.classify import Classifier, load_classifier
from monitor.classify.scoring import Unscorable, score_articles
from monitor.events import ArticleFetched, decode
from monitor.metrics import ScorerMetrics, StageMetrics, build_info
from monitor.settings import Settings
from pipelines.process import claim_metrics_port, require_kafka, serving_metrics, stop_on_signals

log = logging.getLogger(__name__)

STAGE = "scorer"
GROUP_ID = "monitor-scorer"  # the default of settings.scorer.group_id


def _decode(data: bytes) -> ArticleFetched:
    return decode(ArticleFetched, data)


class Scorer:
    """Scores micro-batches of :class:`ArticleFetched` into ``ArticleScored`` messages, with metrics."""

    def __init__(self, classifier: Classifier, *, scored_topic: str, metrics: ScorerMetrics) -> None:
        self.classifier = classifier
        self._topic = scored_topic
        self._metrics = metrics
        metrics.set_model(name=classifier.info.name, version=classifier.info.version)

    def process(self, items: Sequence[Item[ArticleFetched]]) -> BatchResult:
        """Score ``items``; the messages to publish and the records that cannot be scored."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        results = score_articles(self.classifier, [item.event for item in items], now=now)
        elapsed = time.perf_counter() - started
        out = BatchResult()
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Unscorable):
                log.warning(
                    "unscorable article article_id=%s topic=%s partition=%s offset=%s: %s",
                    item.event.article_id,
                    item.record.topic,
                    item.record.partition,
                    item.record.offset,
                    result.reason,
                )
                out.failures.append(Failure(item.record, result.reason))
                continue
            out.messages.append(Message(self._topic, result.article_id, result.encode(), source=item.record))
        # Counted when the batch is scored; a batch whose publish fails is scored (and counted) again.
        self._metrics.batch_size.observe(len(items))
        self._metrics.inference_seconds.observe(elapsed)
        for result in results:
            if not isinstance(result, Unscorable):
                self._metrics.scored.labels(result.stance.label).inc()
                lag = (now - result.fetched_at).total_seconds()
                self._metrics.end_to_end_lag.observe(max(lag, 0.0))
        return out


class ScorerRunner(StageRunner[ArticleFetched]):
    """The scorer's :class:`StageRunner`; :meth:`close` leaves the consumer group and closes the producer."""

    def __init__(
        self,
        scorer: Scorer,
        *,
        consumer: Consumer,
        producer: Producer,
        deadletter_topic: str,
        metrics: StageMetrics,
        max_records: int,
        max_wait: float,
    ) -> None:
        super().__init__(
            stage=STAGE,
            consumer=consumer,
            producer=producer,
            decode=_decode,
            process=scorer.process,
            deadletter_topic=deadletter_topic,
            metrics=metrics,
            max_records=max_records,
            max_wait=max_wait,
        )
        self.scorer = scorer
        self._own = (consumer, producer)

    def health(self) -> tuple[bool, str]:
        info = self.scorer.classifier.info
        return True, f"ok: scorer with {info.name} {info.version}"

    def close(self) -> None:
        consumer, producer = self._own
        try:
            consumer.close()
        finally:
            producer.close()


def build_scorer(
    settings: Settings,
    bus: Bus,
    registry: CollectorRegistry,
    *,
    classifier: Classifier | None = None,
    stage_metrics: StageMetrics | None = None,
) -> ScorerRunner:
    """The scorer stage on ``bus``: group ``settings.scorer.group_id`` on the articles topic, scored out.

    ``classifier`` defaults to :func:`monitor.classify.load_classifier` of ``settings.scorer`` (pass one
    to share it); ``stage_metrics`` to share the stage metrics of a process running several stages.
    """
    topics = settings.kafka.topics
    if classifier is None:
        classifier = load_classifier(settings.scorer)
    scorer = Scorer(classifier, scored_topic=topics.scored, metrics=ScorerMetrics(registry))
    consumer = bus.consumer([topics.articles], group_id=settings.scorer.group_id, from_beginning=True)
    producer = bus.producer()
    log.info(
        "scorer ready: %s %s, batches of up to %d waiting up to %.2fs, %s -> %s as group %s",
        classifier.info.name,
        classifier.info.version,
        settings.scorer.batch_size,
        settings.scorer.max_wait.total_seconds(),
        topics.articles,
        topics.scored,
        settings.scorer.group_id,
    )
    return ScorerRunner(
        scorer,
        consumer=consumer,
        producer=producer,
        deadletter_topic=topics.deadletter,
        metrics=stage_metrics or StageMetrics(registry),
        max_records=settings.scorer.batch_size,
        max_wait=settings.scorer.max_wait.total_seconds(),
    )


def main(args: argparse.Namespace, settings: Settings) -> int:
    """``monitor scorer``: the stage on Kafka until SIGTERM or SIGINT (then finish the batch, exit 0)."""
    require_kafka(
        settings,
        why="the Kafka bootstrap servers (the scorer stage reads Kafka; `monitor run` needs none)",
    )
    claim_metrics_port(settings)  # before the model loads
    stop = stop_on_signals("stopping the scorer after the current batch")
    registry = CollectorRegistry()
    build_info(registry, stage=STAGE)
    bus = make_bus(settings)
    wanted = {settings.kafka.topics.articles, settings.kafka.topics.scored, settings.kafka.topics.deadletter}
    bus.create_topics([spec for spec in topic_specs(settings) if spec.name in wanted])
    log.info("loading the classifier")
    classifier = load_classifier(settings.scorer)
    runner = build_scorer(settings, bus, registry, classifier=classifier)
    try:
        with serving_metrics(settings, registry, health=runner.health):
            runner.run(stop)
    finally:
        runner.close()
        bus.close()
    log.info("scorer stopped")
    return 0
