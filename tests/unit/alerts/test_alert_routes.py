"""Alert routes: the ``routes:`` section of the config, which alert topics an event goes to, the stage
publishing the routed copies (once, also across a restart), and the checks at start."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry

from monitor.alerts.routes import route, routed_topics
from monitor.alerts.stage import ledger_key
from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.memory import InProcessBus
from monitor.config import load_config, parse_config
from monitor.errors import ConfigError
from monitor.events import decode_alert
from monitor.settings import AlerterSettings, MetricsSettings, Settings
from pipelines.alerter import build_alerter, check_routes

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FAST = {"max_wait": 0.0, "poll_timeout": 0.01, "clock": lambda: NOW}
ROUTES = [
    {"topic": "news.alerts.critical", "severity": "critical"},
    {"topic": "news.alerts.trade_tariffs", "subject": "trade_tariffs"},
    {
        "topic": "news.alerts.desk",
        "rule": ["relationship_shift", "tariff_strain_high"],
        "severity": "warning",
    },
    {"topic": "news.alerts.critical", "subject": ["trade_tariffs", "overall"], "severity": "critical"},
]


def config_with(routes):
    default = load_config(None)
    return parse_config(
        {
            "rules": [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in default.rules],
            "routes": routes,
        },
        source="monitor.yaml",
    )


@pytest.mark.parametrize(
    ("route_spec", "message"),
    [
        ({"topic": "bad topic!"}, "routes[0].topic: expected a Kafka topic name"),
        ({"topic": "defence"}, "routes[0].topic: expected a topic name that is not a subject label"),
        ({"topic": "t", "severity": "urgent"}, "routes[0].severity[0]: expected one of 'info', 'warning' or"),
        ({"topic": "t", "subject": "moon"}, "routes[0].subject: expected topics among"),
        (
            {"topic": "t", "rule": "no_such_rule"},
            "routes[0].rule: expected a rule named in this file's rules",
        ),
        ({"topic": "t", "team": "trade"}, "routes[0].team: expected no such key"),
        ({"severity": "critical"}, "routes[0].topic: expected this key"),
    ],
)
def test_a_bad_route_is_a_one_line_config_error(route_spec, message):
    with pytest.raises(ConfigError) as caught:
        config_with([route_spec])
    text = str(caught.value)
    assert text.startswith(f"monitor.yaml: {message}"), text
    assert "\n" not in text


def test_routes_match_by_severity_subject_and_rule():
    config = config_with(ROUTES)
    assert routed_topics(config.routes) == [
        "news.alerts.critical",
        "news.alerts.trade_tariffs",
        "news.alerts.desk",
    ]
    scenario = scenarios.load("tariff_shock")
    from fixtures.scenarios import run_engine

    events = [o for o in run_engine(scenario.articles, config) if hasattr(o, "alert_id")]
    by_rule = {e.rule: route(config.routes, e) for e in events}
    assert by_rule["tariff_strain_high"] == ["news.alerts.critical", "news.alerts.trade_tariffs"]
    assert by_rule["relationship_shift"] == ["news.alerts.desk"]


def settings_for(state_dir: Path) -> Settings:
    return Settings(
        state_dir=state_dir,
        alerter=AlerterSettings(idle_advance=False, batch_size=10, backfill=False),  # the live path
        metrics=MetricsSettings(port=0),
    )


def with_scenario(bus: InProcessBus, settings: Settings, config) -> InProcessBus:
    """``bus`` with the pipeline's and the routed topics, and tariff_shock on the scored topic."""
    bus.create_topics(topic_specs(settings, routed=routed_topics(config.routes)))
    scenario = scenarios.load("tariff_shock")
    bus.producer().publish_all(
        [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in scenario.articles]
    )
    return bus


def test_the_stage_publishes_every_alert_on_the_alert_topic_and_copies_on_the_routed_ones(tmp_path):
    config = config_with(ROUTES)
    settings = settings_for(tmp_path)
    bus = with_scenario(InProcessBus(clock=NOW.timestamp), settings, config)
    stage = build_alerter(settings, config, bus, CollectorRegistry(), **FAST)
    while stage.runner.step():
        pass
    stage.close()
    everything = [(r.key, r.value) for r in bus.records("news.alerts")]
    assert len(everything) == 6
    for topic in routed_topics(config.routes):
        copies = [(r.key, r.value) for r in bus.records(topic)]
        expected = [(k, v) for k, v in everything if topic in route(config.routes, decode_alert(v))]
        assert copies == expected, topic  # the same records (key and bytes), each once
    assert len(bus.records("news.alerts.critical")) == 4
    assert len(bus.records("news.alerts.desk")) == 2

    # A restart (same state, same bus) neither republishes the alerts nor their copies.
    before = {t: len(bus.records(t)) for t in ["news.alerts", *routed_topics(config.routes)]}
    again = build_alerter(settings, config, bus, CollectorRegistry(), **FAST)
    while again.runner.step():
        pass
    again.flush()
    again.close()
    assert {t: len(bus.records(t)) for t in before} == before
    assert len({ledger_key(decode_alert(v)) for _, v in everything}) == 6


class Crash(Exception):
    """Stands for kill -9 at a chosen point."""


class _DiesBetweenAcks(InProcessBus):
    """A bus whose producers, the first time a batch holds routed copies, publish everything but the
    copies and then die: kill -9 after ``news.alerts`` acknowledged an alert, before its copies were."""

    died = False

    def producer(self):
        inner = super().producer()
        bus = self

        class Producer:
            def publish_all(self, messages):
                copies = [m for m in messages if m.topic.startswith("news.alerts.")]
                if copies and not bus.died:
                    bus.died = True
                    inner.publish_all([m for m in messages if m not in copies])
                    raise Crash
                inner.publish_all(messages)

            def __getattr__(self, name):
                return getattr(inner, name)

        return Producer()


def test_a_crash_between_the_alert_and_its_copies_publishes_the_copies_after_the_restart(tmp_path):
    config = config_with(ROUTES)
    settings = settings_for(tmp_path)
    bus = with_scenario(_DiesBetweenAcks(clock=NOW.timestamp), settings, config)
    stage = build_alerter(settings, config, bus, CollectorRegistry(), **FAST)
    with pytest.raises(Crash):
        while stage.runner.step():
            pass
    stage.close()
    assert bus.died and bus.records("news.alerts") and not bus.records("news.alerts.critical")
    restarted = build_alerter(settings, config, bus, CollectorRegistry(), **FAST)
    while restarted.runner.step():
        pass
    restarted.close()
    everything = [(r.key, r.value) for r in bus.records("news.alerts")]
    assert len({ledger_key(decode_alert(v)) for _, v in everything}) == len(everything) == 6
    for topic in routed_topics(config.routes):
        copies = sorted((r.key, r.value) for r in bus.records(topic))
        expected = sorted((k, v) for k, v in everything if topic in route(config.routes, decode_alert(v)))
        assert copies == expected, topic  # none lost, none twice


class _KafkaLikeBus(InProcessBus):
    """The in-process bus answering ``topic_partitions`` as the Kafka adapter does (0: no such topic)."""

    def topic_partitions(self, topic: str) -> int:
        return len(self._topics[topic].partitions) if topic in self._topics else 0


def test_a_route_to_a_missing_topic_stops_the_alerter_at_start(tmp_path):
    config = config_with([*ROUTES, {"topic": "news.scored", "severity": "info"}])
    settings = settings_for(tmp_path).model_copy(update={"config": Path("/etc/monitor/monitor.yaml")})
    bus = _KafkaLikeBus(clock=NOW.timestamp)
    bus.create_topics(topic_specs(settings, routed=["news.alerts.critical"]))
    with pytest.raises(ConfigError) as caught:
        check_routes(bus, settings, config)
    text = str(caught.value)
    assert text.startswith(
        "/etc/monitor/monitor.yaml: routes[1].topic: expected an existing Kafka topic "
        "(`monitor topics create` creates it), got 'news.alerts.trade_tariffs'"
    ), text
    assert "routes[2].topic" in text and "news.alerts.desk" in text
    assert "routes[4].topic: expected an alert topic of its own" in text
    assert "\n" not in text
    with pytest.raises(ConfigError):
        build_alerter(settings, config, bus, CollectorRegistry(), **FAST)
    # Created by `monitor topics create` (topic_specs with the routed topics): the alerter starts.
    fine = config_with(ROUTES)
    bus.create_topics(topic_specs(settings, routed=routed_topics(fine.routes)))
    build_alerter(settings, fine, bus, CollectorRegistry(), **FAST).close()


def test_topic_specs_lay_routed_topics_out_like_the_alert_topic():
    settings = Settings()
    specs = {s.name: s for s in topic_specs(settings, routed=["news.alerts.critical", "news.alerts"])}
    assert [n for n in specs if n.startswith("news.alerts")].count("news.alerts") == 1
    routed, alerts = specs["news.alerts.critical"], specs["news.alerts"]
    assert (routed.partitions, routed.replication_factor, routed.config) == (
        alerts.partitions,
        alerts.replication_factor,
        alerts.config,
    )
