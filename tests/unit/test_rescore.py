"""``monitor rescore`` and ``monitor eval-alerts`` on the in-process bus, with stand-in models (no encoder).

The history is the tariff shock scenario: what its file says the live alerter fires is what a replay of
the re-scored topic must fire with the same model; a model that sees no stance fires none of its stance
alerts (tariff_strain_high, relationship_shift), and nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry
from rescoring import ScenarioModel, StanceBlindModel, fetched

from monitor.alerts.engine import signal_params
from monitor.alerts.replay import ScoredRecord, compare, format_table, replay_alerts
from monitor.bus.base import Message, Record
from monitor.bus.bounded import Bounded
from monitor.bus.memory import InProcessBus
from monitor.classify.rescore import arrival_time, parse_since
from monitor.config import load_config
from monitor.events import ArticleScored, DeadLetter, decode
from pipelines.rescore import rescore
from pipelines.scorer import GROUP_ID

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOPICS = {"articles": "in", "scored": "live", "deadletter": "dlq"}


@pytest.fixture(scope="module")
def scenario() -> scenarios.Scenario:
    return scenarios.load("tariff_shock")


def history(scenario: scenarios.Scenario) -> InProcessBus:
    """The bus after the live pipeline ran the scenario: its articles, the live scored records, one
    record on the articles topic that is not an article."""
    bus = InProcessBus(default_partitions=3)
    with bus.producer() as producer:
        producer.publish_all([Message("in", a.article_id, fetched(a).encode()) for a in scenario.articles])
        producer.publish("in", "junk", b"not json")
        producer.publish_all([Message("live", a.article_id, a.encode()) for a in scenario.articles])
    return bus


def run(bus: InProcessBus, model, output: str, **kwargs):  # type: ignore[no-untyped-def]
    return rescore(
        bus,
        model,
        articles_topic="in",
        scored_topic="live",
        output_topic=output,
        deadletter_topic="dlq",
        batch_size=5,
        registry=CollectorRegistry(),
        clock=lambda: NOW,
        **kwargs,
    )


def scored_on(bus: InProcessBus, topic: str) -> list[ScoredRecord]:
    return [ScoredRecord(f"p{r.partition}", decode(ArticleScored, r.value)) for r in bus.records(topic)]


def alerts(records: list[ScoredRecord]):  # type: ignore[no-untyped-def]
    config = load_config(None)
    return replay_alerts(
        records, rules=config.rules, params=signal_params(config.signals, config.rules), now_us=None
    )


def test_bounded_reads_what_was_there_at_the_start_and_no_more():
    bus = InProcessBus(default_partitions=3)
    with bus.producer() as producer:
        producer.publish_all([Message("t", f"k{i}", b"%d" % i) for i in range(10)])
        bounded = Bounded(bus.consumer(["t"], group_id=None))
        assert bounded.remaining() == 10
        producer.publish_all([Message("t", f"k{i}", b"late") for i in range(10, 15)])
        assert bounded.remaining() == 10
        got: list[Record] = []
        while not bounded.done:
            got += bounded.poll(max_records=3, timeout=0.1)
    assert sorted(int(r.value) for r in got) == list(range(10))
    assert bounded.remaining() == 0 and bounded.poll(timeout=0.1) == []


def test_bounded_on_an_empty_topic_is_done_at_once():
    bus = InProcessBus(default_partitions=2)
    assert Bounded(bus.consumer(["empty"], group_id=None)).done


def test_same_model_rescored_gives_the_live_alerts(scenario):
    bus = history(scenario)
    summary = run(bus, ScenarioModel(scenario.articles), "v2")
    assert (summary.read, summary.rescored, summary.deadlettered) == (
        len(scenario.articles) + 1,
        len(scenario.articles),
        1,
    )

    live = {a.article_id: a for a in scenario.articles}
    again = [r.event for r in scored_on(bus, "v2")]
    assert sorted(a.article_id for a in again) == sorted(live)
    for a in again:
        assert a.scored_at == live[a.article_id].scored_at  # the arrival time the live alerter counted
        assert a.rescored_at == NOW
        assert (a.stance, a.topics, a.model) == (
            live[a.article_id].stance,
            live[a.article_id].topics,
            live[a.article_id].model,
        )
    # each article in the partition its live record is in
    assert {(r.key, r.partition) for r in bus.records("v2")} == {
        (r.key, r.partition) for r in bus.records("live")
    }

    a_events, b_events = alerts(scored_on(bus, "live")), alerts(scored_on(bus, "v2"))
    assert [(e.rule, e.state, e.at) for e in scenario.expected] == [
        (e.rule, e.state, e.at) for e in b_events[: len(scenario.expected)]
    ]
    comparison = compare(a_events, b_events)
    assert not comparison.differs and comparison.counts()["same"] == 2  # two episodes, fired in both

    letters = [decode(DeadLetter, r.value) for r in bus.records("dlq")]
    assert [(d.stage, d.key, d.topic) for d in letters] == [("rescore", "junk", "in")]
    assert letters[0].reason.startswith("undecodable")
    # no consumer group touched: the live scorer's position is where it was (never committed here)
    assert bus.consumer(["in"], group_id=GROUP_ID).committed() == {}


def test_a_stance_blind_model_fires_none_of_the_stance_alerts(scenario):
    bus = history(scenario)
    run(bus, StanceBlindModel(scenario.articles), "blind")
    blind = scored_on(bus, "blind")
    assert {r.event.model.version for r in blind} == {"stance-blind"}
    comparison = compare(alerts(scored_on(bus, "live")), alerts(blind))
    only_a = comparison.of("only_a")
    assert {(p.rule, p.subject) for p in only_a} == {
        ("tariff_strain_high", "trade_tariffs"),
        ("relationship_shift", "overall"),
    }
    assert comparison.counts() == {"same": 0, "changed": 0, "only_a": 2, "only_b": 0}
    table = format_table(comparison, label_a="live", label_b="blind")
    assert "only_a  tariff_strain_high" in table and table.endswith(
        "0 same, 0 changed, 2 only in A, 0 only in B"
    )


def test_since_leaves_out_what_was_published_before(scenario):
    bus = history(scenario)
    since = scenario.at("1d")
    summary = run(bus, ScenarioModel(scenario.articles), "recent", since=since)
    kept = [a for a in scenario.articles if a.published_at >= since]
    assert 0 < len(kept) < len(scenario.articles)
    assert sorted(r.event.article_id for r in scored_on(bus, "recent")) == sorted(a.article_id for a in kept)
    assert summary.skipped == len(scenario.articles) - len(kept)


def test_a_rerun_into_the_same_topic_keeps_the_first_arrival_times(scenario):
    bus = history(scenario)
    run(bus, ScenarioModel(scenario.articles), "live")  # the default: into the scored topic itself
    first = {}
    for r in scored_on(bus, "live"):
        first.setdefault(r.event.article_id, r.event.scored_at)
    assert all(r.event.scored_at == first[r.event.article_id] for r in scored_on(bus, "live"))


def test_arrival_time_falls_back_to_the_record_time_then_fetched_at(scenario):
    a = fetched(scenario.articles[0])
    later = a.fetched_at + timedelta(seconds=7)
    stamped = Record("in", 0, 0, a.article_id, b"", int(later.timestamp() * 1000))
    assert arrival_time(a, stamped, {}) == later
    assert arrival_time(a, Record("in", 0, 0, a.article_id, b""), {}) == a.fetched_at
    known = a.fetched_at + timedelta(minutes=1)
    assert arrival_time(a, stamped, {a.article_id: known}) == known


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01", datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-01T06:30:00Z", datetime(2026, 2, 1, 6, 30, tzinfo=UTC)),
        ("2026-02-01T12:00:00+05:30", datetime(2026, 2, 1, 6, 30, tzinfo=UTC)),
        ("30d", NOW - timedelta(days=30)),
        ("12h", NOW - timedelta(hours=12)),
    ],
)
def test_since_values(text, expected):
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-02-01T06:30:00", ""])
def test_since_refuses_what_it_cannot_place(text):
    with pytest.raises(ValueError, match="a time"):
        parse_since(text, now=NOW)


def test_eval_alerts_on_files_prints_the_differences_as_json(scenario, tmp_path, capsys, monkeypatch):
    from pipelines.cli import main

    bus = history(scenario)
    run(bus, StanceBlindModel(scenario.articles), "blind")
    files = {}
    for topic in ("live", "blind"):
        files[topic] = tmp_path / f"{topic}.jsonl"
        files[topic].write_bytes(b"".join(r.value + b"\n" for r in bus.records(topic)))
    for name in [k for k in __import__("os").environ if k.startswith(("MONITOR_", "KAFKA_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MONITOR_ALERTER__BACKFILL", "false")
    assert main(["eval-alerts", str(files["live"]), str(files["blind"]), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["differs"] is True
    assert report["a"]["models"] == {"scenario 1": len(scenario.articles)}
    assert report["b"]["models"] == {"scenario stance-blind": len(scenario.articles)}
    assert report["counts"] == {"same": 0, "changed": 0, "only_a": 2, "only_b": 0}
    assert {e["rule"] for e in report["episodes"]} == {"tariff_strain_high", "relationship_shift"}

    # one file against itself, keeping one version only: nothing differs
    assert main(["eval-alerts", f"{files['live']}@1", str(files["live"])]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("2 same, 0 changed, 0 only in A, 0 only in B")


def test_rescore_refuses_an_embedded_bus_another_process_holds(tmp_path, capsys, monkeypatch):
    """A running `monitor run` holds its bus log: rescore says so instead of writing beside it."""
    from monitor.bus import make_bus, topic_specs
    from monitor.settings import Settings
    from pipelines.cli import main

    for name in [k for k in __import__("os").environ if k.startswith(("MONITOR_", "KAFKA_"))]:
        monkeypatch.delenv(name)
    settings = Settings(state_dir=tmp_path / "state")
    held = make_bus(settings, durable=True)  # this process plays the running `monitor run`
    try:
        held.create_topics(topic_specs(settings))
        args = ["rescore", "--classifier", "rules", "--state-dir", str(tmp_path / "state")]
        assert main(args) == 1
        assert "in use by another process" in capsys.readouterr().err
    finally:
        held.close()
    assert main(args) == 0  # given up: free again
    assert json.loads(capsys.readouterr().out)["read"] == 0
