"""``monitor rescore`` and ``monitor eval-alerts`` on a real broker.

The live pipeline's history is the tariff shock scenario (its articles on the articles topic, the live
model's judgements on the scored topic). Re-scored with the same model into a topic of its own, a fresh
``monitor alerter`` reading that topic (its own group, state and alert topic) publishes the alerts the
scenario gives; re-scored by a model that sees no stance, eval-alerts finds the scenario's two stance
episodes only on the live side. The stand-in models are in ``tests/rescoring.py``; the CLI is run once
with the rules baseline (no encoder to load).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from fixtures import scenarios
from integration.test_alerter_kafka import (
    MONITOR,
    REPO,
    environment,
    expected_alerts,
    key,
    names,
    read_alerts,
    run_until,
    settings_for,
)
from prometheus_client import CollectorRegistry
from rescoring import ScenarioModel, StanceBlindModel, fetched

pytestmark = pytest.mark.integration


def history(bootstrap: str, topics: dict[str, str], scenario: scenarios.Scenario):  # type: ignore[no-untyped-def]
    """The topics after the live pipeline ran ``scenario`` (plus one record that is not an article)."""
    from monitor.bus import topic_specs
    from monitor.bus.base import Message
    from monitor.bus.kafka import KafkaBus

    settings = settings_for(bootstrap, topics)
    bus = KafkaBus(settings.kafka)
    bus.create_topics(topic_specs(settings))
    with bus.producer() as producer:
        producer.publish_all(
            [Message(topics["articles"], a.article_id, fetched(a).encode()) for a in scenario.articles]
        )
        producer.publish(topics["articles"], "junk", b"not json")
        producer.publish_all([Message(topics["scored"], a.article_id, a.encode()) for a in scenario.articles])
    return settings, bus


def rescore_into(bus, settings, topics: dict[str, str], model, output: str):  # type: ignore[no-untyped-def]
    from pipelines.rescore import output_spec, rescore

    return rescore(
        bus,
        model,
        articles_topic=topics["articles"],
        scored_topic=topics["scored"],
        output_topic=output,
        deadletter_topic=topics["deadletter"],
        create=[output_spec(settings, output)],
        batch_size=8,
        registry=CollectorRegistry(),
    )


def eval_alerts(env: dict, a: str, b: str) -> dict:
    result = subprocess.run(
        [MONITOR, "eval-alerts", a, b, "--format", "json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict = json.loads(result.stdout)
    return report


def test_rescore_then_a_fresh_alerter_gives_the_live_alerts_and_another_model_the_expected_differences(
    kafka_bootstrap, unique_name, tmp_path
):
    from monitor.events import ArticleScored, DeadLetter, decode

    scenario = scenarios.load("tariff_shock")
    topics = names(unique_name)
    settings, bus = history(kafka_bootstrap, topics, scenario)
    try:
        # The live scorer's group has read everything: a rescore must leave its offsets where they are.
        scorer_group = unique_name("scorer")
        with bus.consumer([topics["articles"]], group_id=scorer_group, member=False) as live:
            records = []
            while any(live.lag().values()):
                records += live.poll(max_records=100, timeout=1.0)
            live.commit(records)
            committed = live.committed()
        assert sum(committed.values()) == len(scenario.articles) + 1

        v2 = unique_name("scored-v2")
        summary = rescore_into(bus, settings, topics, ScenarioModel(scenario.articles), v2)
        assert (summary.read, summary.rescored, summary.deadlettered) == (
            len(scenario.articles) + 1,
            len(scenario.articles),
            1,
        )
        with bus.consumer([topics["articles"]], group_id=scorer_group, member=False) as live:
            assert live.committed() == committed

        from pipelines.rescore import read_all

        live_times = {a.article_id: a.scored_at for a in scenario.articles}
        rescored = [decode(ArticleScored, r.value) for r in read_all(bus, v2)]
        assert sorted(a.article_id for a in rescored) == sorted(live_times)
        assert all(a.scored_at == live_times[a.article_id] and a.rescored_at is not None for a in rescored)
        letters = [decode(DeadLetter, r.value) for r in read_all(bus, topics["deadletter"])]
        assert [(d.stage, d.key) for d in letters] == [("rescore", "junk")]
        assert letters[0].reason.startswith("undecodable")

        # A fresh alerter on the re-scored topic: its own group, state folder and output topics.
        replay_topics = {
            **topics,
            "scored": v2,
            "alerts": unique_name("alerts-v2"),
            "signals": unique_name("signals-v2"),
        }
        expected = expected_alerts(scenario)
        env = environment(kafka_bootstrap, replay_topics, tmp_path / "replay", group=unique_name("replay"))
        run_until(env, kafka_bootstrap, replay_topics["alerts"], len(expected))
        got = read_alerts(kafka_bootstrap, replay_topics["alerts"], at_least=len(expected))
        assert sorted(key(e) for e in got) == expected

        # Same history, same model: eval-alerts finds nothing to tell apart.
        eval_env = environment(kafka_bootstrap, topics, tmp_path / "eval", group=unique_name("unused"))
        same = eval_alerts(eval_env, topics["scored"], v2)
        assert same["differs"] is False and same["counts"]["same"] == 2

        # A model that sees no stance: the scenario's two stance episodes are only on the live side.
        blind = unique_name("scored-blind")
        rescore_into(bus, settings, topics, StanceBlindModel(scenario.articles), blind)
        report = eval_alerts(eval_env, topics["scored"], f"{blind}@stance-blind")
        assert report["b"]["models"] == {"scenario stance-blind": len(scenario.articles)}
        assert report["counts"] == {"same": 0, "changed": 0, "only_a": 2, "only_b": 0}
        assert {(e["rule"], e["kind"]) for e in report["episodes"]} == {
            ("tariff_strain_high", "only_a"),
            ("relationship_shift", "only_a"),
        }
    finally:
        bus.close()


def test_the_rescore_command_on_kafka(kafka_bootstrap, unique_name, tmp_path):
    from monitor.events import ArticleScored, decode
    from pipelines.rescore import read_all

    scenario = scenarios.load("trade_deal")
    topics = names(unique_name)
    _, bus = history(kafka_bootstrap, topics, scenario)
    output = unique_name("scored-rules")
    env = environment(kafka_bootstrap, topics, tmp_path / "state", group=unique_name("unused"))
    env["MONITOR_LOG_LEVEL"] = "INFO"
    try:
        result = subprocess.run(
            [MONITOR, "rescore", "--classifier", "rules", "--output-topic", output],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert summary["model"]["name"] == "rules" and summary["output"] == output
        assert (summary["read"], summary["rescored"], summary["deadlettered"]) == (
            len(scenario.articles) + 1,
            len(scenario.articles),
            1,
        )
        assert (
            f"monitor rescore: {len(scenario.articles) + 1} records on {topics['articles']}" in result.stderr
        )
        out = [decode(ArticleScored, r.value) for r in read_all(bus, output)]
        assert len(out) == len(scenario.articles) and {a.model.name for a in out} == {"rules"}
    finally:
        bus.close()
