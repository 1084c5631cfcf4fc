"""Burst rules, the fast path for breaking news: fired as the articles arrive, the same alert as the tick's.

A burst rule fires when enough distinct stories from enough outlets pass a stance level within its window.
It is evaluated on arrival for the tick that will first count the articles; the evaluation of that tick
(or a replay that never took the fast path) then finds the alert already firing, with the same id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fixtures import scenarios
from fixtures.scenarios import run_engine
from samples import config_error

from monitor.alerts.engine import AlertEngine, signal_params
from monitor.alerts.lifecycle import alert_id
from monitor.config import MonitorConfig, parse_config
from monitor.events import AlertFiring, AlertResolved

SCENARIO = scenarios.load("breaking_burst")
START = SCENARIO.start
RULE = SCENARIO.rules[0]
BURST = SCENARIO.articles[
    :3
]  # three strained trade stories from two outlets: arrivals 11m30s, 13m30s, 14m30s
LATER = SCENARIO.articles[3]  # much later, a quiet diplomacy story that moves the clock on (arrival 91m30s)


def config(**changes) -> MonitorConfig:
    burst = {**RULE["burst"], **changes.pop("burst", {})}
    return parse_config({"rules": [{**RULE, "burst": burst, **changes}]}, source="test")


def scored(index: int, t: str, story: str, source: str, stance: float, topics=("trade_tariffs",)):
    """Published at ``t`` after START, fetched a minute later, scored 30 s after that (its arrival)."""
    spec = {"t": t, "lag": "1m", "story": story, "source": source, "stance": stance, "topics": list(topics)}
    spec["title"] = f"{source}: story {story}"
    return scenarios.article(START, spec, index=10 + index, prefix=SCENARIO.name)  # the scenario's stories


def fast_path(engine: AlertEngine, articles) -> list:
    """Ingest ``articles`` one by one, taking the fast path after each; the outputs of the fast path."""
    out = []
    for article in articles:
        engine.ingest(article, partition="p0")
        out += engine.on_arrival([article.article_id])
    return out


def alerts(outputs) -> list[AlertFiring | AlertResolved]:
    return [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]


def engine_for(cfg: MonitorConfig) -> AlertEngine:
    return AlertEngine(rules=cfg.rules, params=signal_params(cfg.signals, cfg.rules))


def test_a_burst_fires_on_arrival_before_its_tick_with_the_ticks_alert_id():
    engine = engine_for(config())
    fast = []
    for article in BURST:
        engine.ingest(article, partition="p0")
        assert alerts(engine.advance({"p0"})) == []  # the step and the grace hold the regular path back
        fast += engine.on_arrival([article.article_id])
    [event] = alerts(fast)
    tick = START + timedelta(minutes=15)  # the first tick that counts the third story (arrival 14m30s)
    assert event.state == "firing"
    assert event.alert_id == alert_id("tariff_shock", "trade_tariffs", int(tick.timestamp()) * 1_000_000)
    assert event.at == event.started_at == START + timedelta(minutes=14, seconds=30)
    assert (event.value, event.threshold) == (3.0, 3.0)
    # The evidence: the burst's stories, the most strained first.
    assert [e.story_id for e in event.evidence] == [f"{SCENARIO.name}-{s}" for s in "cab"]
    assert "3 stories from 2 outlets in 1h with stance below -0.40" in event.summary


def test_the_tick_later_finds_it_firing_and_resolves_it_when_the_stories_leave_the_window():
    engine = engine_for(config())
    fast = fast_path(engine, BURST)
    engine.ingest(LATER, partition="p0")
    later = alerts(engine.advance(set()))
    [fired] = alerts(fast)
    # The first story (published at 10m) leaves the 1h window at the tick of 70m: two are left.
    assert [(e.state, e.alert_id, e.at) for e in later] == [
        ("resolved", fired.alert_id, START + timedelta(minutes=70))
    ]


def test_a_replay_without_the_fast_path_fires_the_same_alert_at_the_tick():
    cfg = config()
    [fired] = alerts(fast_path(engine_for(cfg), BURST))
    replayed = alerts(run_engine([*BURST, LATER], cfg, end=False))
    assert [(e.state, e.alert_id, e.at) for e in replayed] == [
        ("firing", fired.alert_id, START + timedelta(minutes=15)),
        ("resolved", fired.alert_id, START + timedelta(minutes=70)),
    ]


@pytest.mark.parametrize(
    "articles",
    [
        # one outlet only
        [
            scored(1, "10m", "a", "Reuters", -0.7),
            *(scored(i, "12m", s, "Reuters", -0.6) for i, s in [(2, "b"), (3, "c")]),
        ],
        # the third story is not strained enough
        [*BURST[:2], scored(3, "13m", "c", "Reuters", -0.2)],
        # two stories, one of them carried by two outlets
        [*BURST[:2], scored(3, "13m", "b", "Reuters", -0.6)],
        # the third story is about something else
        [*BURST[:2], scored(3, "13m", "c", "Reuters", -0.8, topics=("defence",))],
        # the first story is outside the hour by the time the third is published
        [scored(1, "0m", "a", "Reuters", -0.7), BURST[1], scored(3, "61m", "c", "Reuters", -0.8)],
    ],
    ids=["one-outlet", "mild", "two-stories", "other-topic", "too-spread-out"],
)
def test_no_burst_no_alert_on_either_path(articles):
    cfg = config()
    assert alerts(fast_path(engine_for(cfg), articles)) == []
    assert alerts(run_engine([*articles, LATER], cfg)) == []


def test_a_cooperation_burst_and_hysteresis():
    cfg = config(burst={"stance_below": None, "stance_above": 0.5, "clear_stories": 2})
    good = [
        scored(i, t, s, src, 0.8)
        for i, (t, s, src) in enumerate([("10m", "a", "ET"), ("12m", "b", "AP"), ("13m", "c", "ET")], 1)
    ]
    events = alerts(run_engine([*good, LATER], cfg, end=False))
    # With clear_stories 2 it holds while two of the three stories are in the window (until 72m).
    assert [(e.state, e.at) for e in events] == [
        ("firing", START + timedelta(minutes=15)),
        ("resolved", START + timedelta(minutes=75)),
    ]
    assert "stance above +0.50" in events[0].summary


def test_an_article_that_arrives_for_an_evaluated_tick_is_left_to_the_regular_path():
    cfg = config()
    engine = engine_for(cfg)
    for article in BURST[:2]:
        engine.ingest(article, partition="p0")
    engine.ingest(LATER, partition="p0")
    engine.advance(set())  # the clock moves to 85m: the first two stories were evaluated long ago
    assert engine.on_arrival([BURST[0].article_id]) == []


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"signal": "stance_index"}, "rules[0].burst", "use 'signal: stories'"),
        ({"for": "10m"}, "rules[0]", "'for' must be 0"),
        (
            {"burst": {"stories": 3, "stance_below": -0.4, "stance_above": 0.4}},
            "rules[0].burst",
            "exactly one of",
        ),
        ({"burst": {"stories": 3}}, "rules[0].burst", "exactly one of"),
        (
            {"burst": {"stories": 3, "stance_below": -0.4, "clear_stories": 4}},
            "rules[0].burst",
            "must not exceed",
        ),
        (
            {"burst": {"stories": 0, "stance_below": -0.4}},
            "rules[0].burst.stories",
            "greater than or equal to 1",
        ),
        ({"burst": {"stance_below": -1.5}}, "rules[0].burst.stance_below", "greater than or equal to -1"),
        ({"threshold": {"below": 3}}, "rules[0]", "exactly one condition"),
    ],
)
def test_a_burst_rule_that_cannot_work_is_rejected(tmp_path, changes, key, message):
    error = config_error(tmp_path, [{**RULE, **changes}])
    assert error.key == key
    assert message in error.expected
    assert "rule 'tariff_shock'" in error.expected


def test_a_burst_rule_parses_with_its_defaults():
    [rule] = parse_config(
        {"rules": [{**RULE, "burst": {"stance_below": -0.4}, "keep_firing_for": "1h"}]}, source="test"
    ).rules
    assert rule.kind == "burst"
    assert (rule.burst.stories, rule.burst.outlets, rule.burst.clear_level) == (3, 2, 3)
    assert rule.span == timedelta(hours=1)


def test_the_alerter_stage_publishes_a_burst_on_the_batch_that_completes_it(tmp_path):
    """On the in-process bus: each record its own batch; the alert is on news.alerts right after the
    third, while the clock of the regular path is still before the tick that counts it."""
    from prometheus_client import CollectorRegistry

    from monitor.bus import topic_specs
    from monitor.bus.base import Message
    from monitor.bus.memory import InProcessBus
    from monitor.events import decode_alert
    from monitor.settings import AlerterSettings, MetricsSettings, Settings
    from pipelines.alerter import build_alerter

    now = datetime(2026, 6, 1, tzinfo=UTC)
    settings = Settings(
        state_dir=tmp_path,
        alerter=AlerterSettings(idle_advance=False, backfill=False, batch_size=1),
        metrics=MetricsSettings(port=0),
    )
    bus = InProcessBus(clock=now.timestamp)
    bus.create_topics(topic_specs(settings))
    topics = settings.kafka.topics
    bus.producer().publish_all([Message(topics.scored, a.article_id, a.encode()) for a in BURST])
    stage = build_alerter(
        settings, config(), bus, CollectorRegistry(), max_wait=0.0, poll_timeout=0.01, clock=lambda: now
    )
    try:
        published = []
        for _ in BURST:
            assert stage.runner.step() == 1
            published.append(len(bus.records(topics.alerts)))
        assert published == [0, 0, 1]
        [event] = [decode_alert(r.value) for r in bus.records(topics.alerts)]
        assert (event.rule, event.state, event.at) == (
            "tariff_shock",
            "firing",
            START + timedelta(minutes=14, seconds=30),
        )
        # The regular path has evaluated no tick: the first (15m) waits for the clock to pass it plus the
        # grace, and the clock stands at the last arrival, 14m30s.
        assert stage.engine.state.signals.last_tick is None
    finally:
        stage.close()
