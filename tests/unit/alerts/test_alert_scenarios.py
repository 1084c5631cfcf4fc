"""Scenario fixtures through the alert engine: exactly the expected alerts, in order, and no flapping.

The engine is also fed the same articles spread over three partitions, read in different interleavings
and batch sizes: the alerts (ids, ticks, values) must not change, which is what makes a replay of
``news.scored`` reproduce the same alerts.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from fixtures import scenarios
from fixtures.scenarios import run_engine

from monitor.config import MonitorConfig, SignalsConfig, load_config, parse_config
from monitor.events import AlertFiring, AlertResolved, SignalUpdated


def config_for(scenario: scenarios.Scenario) -> MonitorConfig:
    if scenario.rules is not None:
        return parse_config({"rules": scenario.rules}, source=scenario.name)
    return load_config(None)


def alerts(outputs) -> list[AlertFiring | AlertResolved]:
    return [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]


def summary(events) -> list[tuple]:
    return [(e.rule, e.state, e.at, e.value) for e in events]


@pytest.mark.parametrize("name", scenarios.names())
def test_scenario_gives_exactly_the_expected_alerts_in_order(name):
    scenario = scenarios.load(name)
    events = alerts(run_engine(scenario.articles, config_for(scenario)))
    expected = [(e.rule, e.state, e.at, e.value) for e in scenario.expected]
    assert summary(events) == expected


@pytest.mark.parametrize("name", scenarios.names())
def test_no_flapping_one_id_per_episode(name):
    """Per rule: firing (re-notifications keep the id) then resolved; an id never comes back after that."""
    scenario = scenarios.load(name)
    by_rule: dict[str, list] = defaultdict(list)
    for event in alerts(run_engine(scenario.articles, config_for(scenario))):
        by_rule[event.rule].append(event)
    for rule, events in by_rule.items():
        finished: set[str] = set()
        current = None
        for event in events:
            assert event.alert_id not in finished, f"{rule}: {event.alert_id} fired again after resolving"
            if event.state == "firing":
                assert current in (None, event.alert_id), f"{rule}: a second episode while one is firing"
                current = event.alert_id
            else:
                assert event.alert_id == current, f"{rule}: resolved an alert that was not firing"
                finished.add(event.alert_id)
                current = None
        episodes = {e.alert_id for e in events}
        assert len(episodes) <= 1, f"{rule} flapped: {len(episodes)} episodes"


def test_hysteresis_is_what_stops_the_flapping():
    scenario = scenarios.load("flapping")
    base = load_config(None)
    plain = [
        r.model_copy(
            update={
                "threshold": r.threshold.model_copy(update={"clear_above": None}),
                "keep_firing_for": timedelta(0),
            }
        )
        for r in base.rules
        if r.name == "tariff_strain_high"
    ]
    with_hysteresis = [r for r in base.rules if r.name == "tariff_strain_high"]
    flappy = alerts(run_engine(scenario.articles, base.model_copy(update={"rules": tuple(plain)})))
    steady = alerts(run_engine(scenario.articles, base.model_copy(update={"rules": tuple(with_hysteresis)})))
    assert len({e.alert_id for e in flappy}) >= 3
    assert len({e.alert_id for e in steady}) == 1


@pytest.mark.parametrize(
    "name", ["tariff_shock", "trade_deal", "late_articles", "flapping", "minerals_surge"]
)
def test_partitions_interleaving_and_batching_do_not_change_the_alerts(name):
    scenario = scenarios.load(name)
    config = config_for(scenario)
    reference = summary(alerts(run_engine(scenario.articles, config)))
    ids = [e.alert_id for e in alerts(run_engine(scenario.articles, config))]
    rng = random.Random(name)
    variants = [
        {"partitions": 3},
        {"partitions": 3, "batch": 7},
        {"partitions": 3, "batch": 1000},
        {"partitions": 3, "pick": lambda remaining: remaining[0]},  # one partition after the other
        {"partitions": 3, "pick": lambda remaining: remaining[-1]},
        {"partitions": 3, "pick": rng.choice, "batch": 3},
        {"partitions": 5, "pick": rng.choice, "batch": 11},
    ]
    for variant in variants:
        events = alerts(run_engine(scenario.articles, config, **variant))
        assert summary(events) == reference, variant
        assert [e.alert_id for e in events] == ids, variant


def test_syndicated_copies_count_once_in_the_signals():
    scenario = scenarios.load("syndicated_copies")
    outputs = run_engine(scenario.articles, load_config(None))
    latest = {}
    for o in outputs:
        if isinstance(o, SignalUpdated) and o.topic == "trade_tariffs" and o.window == "24h":
            latest[o.signal] = o
    assert latest["volume"].value == 14.0
    assert latest["stories"].value == 3.0
    assert latest["stance_index"].value == pytest.approx((0.15 + 0.2 - 0.85) / 3, abs=1e-6)
    assert latest["strained_share"].value == pytest.approx(1 / 3, abs=1e-6)
    # Counted per copy, the index would be deep in strain territory.
    per_copy = (0.15 + 0.2 - 0.85 * 12) / 14
    assert per_copy < -0.35


def test_stale_articles_would_have_tripped_the_alert_early():
    scenario = scenarios.load("late_articles")
    strict = alerts(run_engine(scenario.articles, load_config(None)))
    lenient_config = load_config(None).model_copy(
        update={"signals": SignalsConfig(allowed_lateness=timedelta(hours=12))}
    )
    lenient = alerts(run_engine(scenario.articles, lenient_config))
    assert strict[0].at - scenario.start == timedelta(hours=7, minutes=55)
    assert lenient[0].at < strict[0].at  # the stale stories, if counted, fire the alert hours earlier
    assert lenient[0].alert_id != strict[0].alert_id


def test_alert_events_carry_evidence_and_a_readable_summary():
    scenario = scenarios.load("tariff_shock")
    first = alerts(run_engine(scenario.articles, load_config(None)))[0]
    assert first.rule == "tariff_strain_high" and first.severity == "critical"
    assert first.signal == "stance_index" and first.window == "24h" and first.subject == "trade_tariffs"
    assert first.threshold == -0.35 and first.baseline is None
    assert first.started_at == scenario.at("7h25m")
    # The most strained story first, with its evidence sentence.
    assert [e.title for e in first.evidence] == [
        "Exporters warn of job losses as US tariffs bite",
        "US announces 25% additional tariff on Indian goods",
        "India says new US duties are unjustified",
    ]
    assert first.evidence[0].stance == -0.8
    assert first.evidence[0].evidence == first.evidence[0].title
    assert first.summary.startswith("India-US trade and tariffs: the 24h stance index is -0.40")
    assert first.summary.endswith(".") and first.summary.count(". ") == 0


@pytest.mark.parametrize("name", scenarios.names())
def test_reusing_unchanged_windows_changes_no_output(name, monkeypatch):
    """The engine skips recomputing windows that did not change; doing the full work gives the same bytes."""
    scenario = scenarios.load(name)
    config = config_for(scenario)
    fast = [o.encode() for o in run_engine(scenario.articles, config, partitions=3)]
    from monitor.signals.engine import SignalEngine

    monkeypatch.setattr(SignalEngine, "_unchanged", lambda self, tick, visible, fresh: False)
    slow = [o.encode() for o in run_engine(scenario.articles, config, partitions=3)]
    assert fast == slow
