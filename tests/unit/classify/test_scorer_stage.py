"""The scorer stage on the in-process bus, with the rule classifier (a real classifier with no model).

What is checked here is the stage's wiring: micro-batches, ArticleScored records valid against the shipped
JSON Schema, dead letters for undecodable and unscorable records, a classifier failure isolated to the
record that caused it, commits only after publishing, and the metrics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from prometheus_client import CollectorRegistry

from monitor.bus.memory import InProcessBus
from monitor.classify import Classifier, Scores, TextItem
from monitor.classify.lexicon import RuleClassifier
from monitor.errors import ModelError
from monitor.events import ArticleFetched, ArticleScored, DeadLetter, ModelInfo, Source, decode
from monitor.schemas import load_schema
from monitor.settings import KafkaSettings, ScorerSettings, Settings, TopicNames
from pipelines.scorer import GROUP_ID, build_scorer

NOW = datetime(2026, 2, 5, 12, 0, tzinfo=UTC)


def article(n: int, title: str, summary: str = "") -> ArticleFetched:
    return ArticleFetched(
        article_id=f"a{n:03d}",
        story_id=f"s{n:03d}",
        url=f"https://example.test/{n}",
        title=title,
        summary=summary,
        published_at=NOW - timedelta(hours=1),
        fetched_at=datetime.now(UTC) - timedelta(seconds=2),
        language="en",
        source=Source(feed_id="f", name="Feed", url="https://example.test/feed"),
        relevance_hint=0.5,
    )


ARTICLES = [
    article(1, "India and US agree trade deal cutting tariffs", "The pact will boost exports."),
    article(2, "EU and US reach trade deal", "Brussels agreed to 15% tariffs."),
    article(3, "Trump's H-1B fee shock rattles Indian techies", "Families fear the steep hike."),
    article(4, "India, US sign defence framework", "Rajnath Singh and Hegseth signed the pact."),
    article(5, "Quad summit in doubt as Trump may skip", "Uncertainty grows over the Indo-Pacific grouping."),
]


@pytest.fixture
def settings() -> Settings:
    return Settings(
        kafka=KafkaSettings(topics=TopicNames(articles="in", scored="out", deadletter="dlq")),
        scorer=ScorerSettings(batch_size=4, max_wait="50ms"),
    )


def run_until_idle(runner) -> int:  # type: ignore[no-untyped-def]
    total = 0
    while n := runner.step():
        total += n
    return total


def publish(bus: InProcessBus, values: Sequence[tuple[str | None, bytes]]) -> None:
    with InProcessBus.producer(bus) as producer:  # a working one, also on a BrokenBus
        for key, value in values:
            producer.publish("in", key, value)


def test_articles_in_scored_records_out(settings: Settings) -> None:
    bus, registry = InProcessBus(default_partitions=2), CollectorRegistry()
    runner = build_scorer(settings, bus, registry, classifier=RuleClassifier())
    publish(bus, [(a.article_id, a.encode()) for a in ARTICLES])
    assert run_until_idle(runner) == len(ARTICLES)
    out = bus.records("out")
    assert sorted(r.key for r in out) == [a.article_id for a in ARTICLES]
    schema = load_schema("ArticleScored")
    by_id = {}
    for record in out:
        jsonschema.validate(json.loads(record.value), schema)
        scored = decode(ArticleScored, record.value)
        assert record.key == scored.article_id
        by_id[scored.article_id] = scored
    deal, eu = by_id["a001"], by_id["a002"]
    assert deal.title == ARTICLES[0].title and deal.fetched_at == ARTICLES[0].fetched_at
    assert (
        deal.relevance == 1.0 and deal.topics["trade_tariffs"] == 1.0 and deal.stance.label == "cooperation"
    )
    assert deal.model == ModelInfo(name="rules", version=deal.model.version) and deal.evidence
    assert deal.scored_at is not None and deal.scored_at >= deal.fetched_at
    assert eu.relevance == 0.0 and eu.stance.label == "neutral"
    assert bus.records("dlq") == []
    # metrics
    sample = registry.get_sample_value
    assert sample("monitor_articles_scored_total", {"stance": "cooperation"}) >= 1
    assert (
        sum(
            sample("monitor_articles_scored_total", {"stance": s}) or 0
            for s in ("strain", "cooperation", "neutral")
        )
        == 5
    )
    assert sample("monitor_scorer_batch_size_count") >= 2  # 5 records, batches of at most 4
    assert sample("monitor_scorer_batch_size_sum") == 5
    assert sample("monitor_scorer_inference_seconds_count") >= 2
    assert sample("monitor_scorer_end_to_end_lag_seconds_count") == 5
    assert sample("monitor_scorer_end_to_end_lag_seconds_sum") >= 5 * 2.0
    assert sample("monitor_model_info", {"name": "rules", "version": deal.model.version}) == 1.0
    assert sample("monitor_records_published_total", {"stage": "scorer", "topic": "out"}) == 5
    # everything committed: a new member of the group gets nothing
    runner.close()
    with bus.consumer(["in"], group_id=GROUP_ID) as again:
        assert again.poll(timeout=0.05) == []


def test_poison_and_empty_records_are_dead_lettered_and_the_stream_goes_on(settings: Settings) -> None:
    bus, registry = InProcessBus(default_partitions=1), CollectorRegistry()
    runner = build_scorer(settings, bus, registry, classifier=RuleClassifier())
    empty = article(9, "", "")
    publish(
        bus,
        [
            ("a001", ARTICLES[0].encode()),
            ("bad", b"\xff not json"),
            ("a009", empty.encode()),
            ("a003", ARTICLES[2].encode()),
        ],
    )
    run_until_idle(runner)
    assert sorted(r.key for r in bus.records("out")) == ["a001", "a003"]
    letters = {r.key: decode(DeadLetter, r.value) for r in bus.records("dlq")}
    assert set(letters) == {"bad", "a009"}
    assert (
        letters["bad"].reason.startswith("undecodable") and letters["bad"].original_value == b"\xff not json"
    )
    assert "neither title nor summary" in letters["a009"].reason
    assert letters["a009"].stage == "scorer" and letters["a009"].topic == "in"
    assert registry.get_sample_value("monitor_deadletters_total", {"stage": "scorer", "topic": "in"}) == 2


class FailsOn(Classifier):
    """The rule classifier, except that it cannot score one headline (as a broken model might)."""

    def __init__(self, bad_title: str) -> None:
        self._rules = RuleClassifier()
        self._bad = bad_title

    @property
    def info(self) -> ModelInfo:
        return self._rules.info

    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        if any(item.title == self._bad for item in items):
            raise ModelError("cannot score this one")
        return self._rules.score(items)


def test_a_classifier_failure_dead_letters_only_its_record(settings: Settings) -> None:
    bus, registry = InProcessBus(default_partitions=1), CollectorRegistry()
    runner = build_scorer(settings, bus, registry, classifier=FailsOn(ARTICLES[1].title))
    publish(bus, [(a.article_id, a.encode()) for a in ARTICLES[:4]])
    run_until_idle(runner)
    assert sorted(r.key for r in bus.records("out")) == ["a001", "a003", "a004"]
    (letter,) = [decode(DeadLetter, r.value) for r in bus.records("dlq")]
    assert letter.key == "a002" and "cannot score this one" in letter.reason


class BrokenProducer:
    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.fail = inner, True

    def publish_all(self, messages) -> None:  # type: ignore[no-untyped-def]
        if self.fail:
            from monitor.errors import BusError

            raise BusError("broker away", retriable=True)
        self.inner.publish_all(messages)

    @property
    def max_message_bytes(self) -> int:
        return int(self.inner.max_message_bytes)

    def close(self) -> None:
        self.inner.close()


class BrokenBus(InProcessBus):
    """An in-process bus whose next producer fails until told otherwise (``broken.fail = False``)."""

    broken: BrokenProducer | None = None

    def producer(self):  # type: ignore[no-untyped-def]
        self.broken = BrokenProducer(super().producer())
        return self.broken


def test_nothing_is_committed_when_publishing_fails(settings: Settings) -> None:
    from monitor.errors import BusError

    bus = BrokenBus(default_partitions=1)
    publish(bus, [(a.article_id, a.encode()) for a in ARTICLES[:3]])  # before the scorer's producer
    runner = build_scorer(settings, bus, CollectorRegistry(), classifier=RuleClassifier())
    broken = bus.broken
    assert broken is not None
    with pytest.raises(BusError):
        runner.step()
    assert bus.records("out") == []
    broken.fail = False
    run_until_idle(runner)  # the rewound batch comes again
    assert sorted(r.key for r in bus.records("out")) == ["a001", "a002", "a003"]
