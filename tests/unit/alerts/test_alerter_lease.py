"""One active alerter, a hot standby: the lease logic on the in-process bus.

The in-process lease goes to the first alerter that asks and passes on when its holder closes it: that
stands for the leader's death (kill -9 on Kafka is tested in tests/integration/test_alerter_lease.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry
from unit.alerts.test_alerter_stage import (
    FAST,
    alert_events,
    drain,
    expected_for,
    keyed,
    new_bus,
    publish,
    settings_for,
)

from monitor.alerts.stage import AlerterStage, ledger_key
from monitor.bus.base import Lease
from monitor.bus.memory import InProcessBus
from monitor.bus.stage import StageRunner
from monitor.config import load_config
from monitor.settings import Settings
from pipelines.alerter import build_alerter


def lease_for(bus: InProcessBus, settings: Settings) -> Lease:
    a = settings.alerter
    return bus.lease(settings.kafka.topics.alerter_lease, f"{a.group_id}.lease", timeout=10)


def alerter(bus: InProcessBus, settings: Settings, lease: Lease) -> tuple[AlerterStage, CollectorRegistry]:
    registry = CollectorRegistry()
    return build_alerter(settings, load_config(None), bus, registry, lease=lease, **FAST), registry


def published(registry: CollectorRegistry, topic: str) -> float:
    labels = {"stage": "alerter", "topic": topic}
    return registry.get_sample_value("monitor_records_published_total", labels) or 0.0


def test_only_the_lease_holder_publishes_and_the_standby_takes_over_where_it_stopped(tmp_path: Path) -> None:
    scenario = scenarios.load("trade_deal")
    first, second = settings_for(tmp_path / "a"), settings_for(tmp_path / "b")
    topics = first.kafka.topics
    bus = new_bus(first)
    cut = len(scenario.articles) // 2
    publish(bus, first, scenario.articles[:cut])
    lease_a, lease_b = lease_for(bus, first), lease_for(bus, second)
    a, a_registry = alerter(bus, first, lease_a)
    b, b_registry = alerter(bus, second, lease_b)
    assert (a.role, b.role) == ("standby", "standby")  # nobody publishes before the lease is checked

    drain(a)
    on_topic = len(bus.records(topics.alerts)), len(bus.records(topics.signals))
    assert a.role == "leader" and on_topic[1] > 0
    drain(b)
    assert b.role == "standby"
    # The standby published nothing (its engine computed the same signal points).
    assert (len(bus.records(topics.alerts)), len(bus.records(topics.signals))) == on_topic
    assert len(bus.records(topics.deadletter)) == 0
    assert published(a_registry, topics.signals) == on_topic[1]
    assert published(b_registry, topics.alerts) == 0 and published(b_registry, topics.signals) == 0
    assert b_registry.get_sample_value("monitor_alerter_leader") == 0
    # Its state follows the leader's commits exactly.
    commits = bus.consumer([topics.scored], group_id=first.alerter.group_id, member=False)
    assert b._follower is not None and b._follower.positions() == commits.committed()
    assert b.engine.state.signals.articles.keys() == a.engine.state.signals.articles.keys()
    commits.close()

    a.close()  # the leader goes away; the rest of the input arrives
    publish(bus, first, scenario.articles[cut:])
    drain(b)
    b.flush()
    b.close()
    assert b.role == "leader"
    assert b_registry.get_sample_value("monitor_alerter_takeovers_total") == 1
    events = alert_events(bus, first)
    assert keyed(events) == expected_for(scenario)
    assert max(Counter(ledger_key(e) for e in events).values()) == 1


@pytest.mark.parametrize("leader_published_it", [True, False])
def test_outputs_the_leader_never_published_are_published_on_takeover(
    tmp_path: Path, leader_published_it: bool
) -> None:
    # The idle clock resolves the scenario's alerts with no new record (nothing to commit): a leader that
    # dies just before publishing them leaves them to the standby, which computed them too.
    scenario = scenarios.load("tariff_shock")
    first = settings_for(tmp_path / "a", idle_advance=True)
    second = settings_for(tmp_path / "b", idle_advance=True)
    bus = new_bus(first)
    publish(bus, first, scenario.articles[:20])
    a, _ = alerter(bus, first, lease_for(bus, first))
    b, b_registry = alerter(bus, second, lease_for(bus, second))
    a.follow_lease()
    while StageRunner.step(a.runner):  # the records only: the leader does not take its idle step yet
        pass
    drain(b)
    assert b.runner.step() == 0  # the standby's idle step: the alerts resolve in its state, unpublished
    if leader_published_it:
        assert a.runner.step() == 0
    resolved_before = [e for e in alert_events(bus, first) if e.state == "resolved"]
    assert bool(resolved_before) == leader_published_it
    a.close()
    b.runner.step()
    b.close()
    assert b.role == "leader"
    events = alert_events(bus, first)
    firing = {e.alert_id for e in events if e.state == "firing"}
    resolved = [e.alert_id for e in events if e.state == "resolved"]
    assert firing and sorted(resolved) == sorted(firing)  # each resolved exactly once
    assert max(Counter(ledger_key(e) for e in events).values()) == 1
    notified = (
        b_registry.get_sample_value(
            "monitor_alerts_total",
            {"rule": "tariff_strain_high", "severity": "critical", "state": "resolved"},
        )
        or 0
    )
    assert notified == (0 if leader_published_it else 1)


def test_a_leader_that_loses_the_lease_stands_by_and_publishes_nothing(tmp_path: Path) -> None:
    scenario = scenarios.load("trade_deal")
    first, second = settings_for(tmp_path / "a"), settings_for(tmp_path / "b")
    topics = first.kafka.topics
    bus = new_bus(first)
    third = len(scenario.articles) // 3
    publish(bus, first, scenario.articles[:third])
    lease_a = lease_for(bus, first)
    a, a_registry = alerter(bus, first, lease_a)
    b, _ = alerter(bus, second, lease_for(bus, second))
    drain(a)
    lease_a.close()  # a's lease expired (a long pause, a partition from the coordinator)
    drain(b)
    assert b.role == "leader"
    publish(bus, first, scenario.articles[third : 2 * third])
    a.runner.step()
    assert a.role == "standby" and a_registry.get_sample_value("monitor_alerter_leader") == 0
    before = published(a_registry, topics.alerts), published(a_registry, topics.signals)
    drain(a)
    assert (published(a_registry, topics.alerts), published(a_registry, topics.signals)) == before
    drain(b)
    publish(bus, first, scenario.articles[2 * third :])
    drain(b)
    drain(a)  # follows b's commits to the end
    assert a.engine.state.signals.articles.keys() == b.engine.state.signals.articles.keys()
    b.flush()
    a.close()
    b.close()
    events = alert_events(bus, first)
    assert keyed(events) == expected_for(scenario)
    assert max(Counter(ledger_key(e) for e in events).values()) == 1


def test_a_restarted_standby_resumes_from_its_saved_positions(tmp_path: Path) -> None:
    scenario = scenarios.load("trade_deal")
    first, second = settings_for(tmp_path / "a"), settings_for(tmp_path / "b")
    bus = new_bus(first)
    half = len(scenario.articles) // 2
    publish(bus, first, scenario.articles[:half])
    a, _ = alerter(bus, first, lease_for(bus, first))
    b, _ = alerter(bus, second, lease_for(bus, second))
    drain(a)
    drain(b)
    positions = b._follower.positions() if b._follower else None
    b.close()
    publish(bus, first, scenario.articles[half:])
    drain(a)
    b, _ = alerter(bus, second, lease_for(bus, second))  # same state file
    assert b._follower is not None and b._follower.positions() == positions
    drain(b)
    assert b.engine.state.signals.articles.keys() == a.engine.state.signals.articles.keys()
    a.close()
    b.close()
