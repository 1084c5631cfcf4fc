"""A first start folds the feeds' back catalogue into the windows at its event times: the past days show
at once, the alerts computed for the past are published marked ``backfill`` and notified to no one, and
live alerting begins from the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixtures import scenarios
from prometheus_client import CollectorRegistry

from monitor.alerts.engine import signal_params
from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.memory import InProcessBus
from monitor.config import load_config
from monitor.events import AlertFiring, ArticleScored, SignalUpdated, decode, decode_alert
from monitor.settings import AlerterSettings, MetricsSettings, Settings

# The first poll: every article of the tariff scenario (published 2025-07-29 .. 2025-08-05 22:00) is
# fetched at once, as a feed's back catalogue is.
POLL = datetime(2025, 8, 6, 0, 0, tzinfo=UTC)
START = POLL + timedelta(minutes=1)


def back_catalogue() -> list[ArticleScored]:
    return [
        a.model_copy(update={"fetched_at": POLL, "scored_at": POLL + timedelta(seconds=30)})
        for a in scenarios.load("tariff_shock").articles
    ]


def first_start(tmp_path: Path, articles: list[ArticleScored], *, backfill: bool):
    from pipelines.alerter import build_alerter

    settings = Settings(
        state_dir=tmp_path,
        alerter=AlerterSettings(idle_advance=False, batch_size=7, backfill=backfill),
        metrics=MetricsSettings(port=0),
    )
    bus = InProcessBus(clock=START.timestamp)
    bus.create_topics(topic_specs(settings))
    bus.producer().publish_all(
        [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in articles]
    )
    notified: list[object] = []
    registry = CollectorRegistry()
    stage = build_alerter(
        settings,
        load_config(None),
        bus,
        registry,
        on_alert=notified.append,
        max_wait=0.0,
        poll_timeout=0.01,
        clock=lambda: START,
    )
    while stage.runner.step():
        pass
    return settings, bus, stage, notified, registry


def test_a_first_start_shows_the_past_week_and_notifies_nothing(tmp_path):
    articles = back_catalogue()
    settings, bus, stage, notified, _ = first_start(tmp_path, articles, backfill=True)
    try:
        assert not stage.backfilling
        signals = [decode(SignalUpdated, r.value) for r in bus.records(settings.kafka.topics.signals)]
        alerts = [decode_alert(r.value) for r in bus.records(settings.kafka.topics.alerts)]
    finally:
        stage.close()

    # A week of signals, at the ticks the articles were published, none after the start. Folded in: what
    # lies within the longest span the rules look at (the 7d baseline of a 24h window: 8 days).
    default = load_config(None)
    span = signal_params(default.signals, default.rules).span
    assert span == timedelta(days=8)
    first_published = min(a.published_at for a in articles if POLL - a.published_at < span)
    assert first_published <= min(s.at for s in signals) <= first_published + timedelta(minutes=5)
    assert max(s.at for s in signals) <= START
    assert len({s.at.date() for s in signals}) >= 7
    # The last 7d volume counts every relevant article published in the 7 days before it.
    last = max(s.at for s in signals if s.key == "volume/overall/7d")
    point = next(s for s in signals if s.key == "volume/overall/7d" and s.at == last)
    assert point.articles == sum(
        1 for a in articles if a.relevance >= 0.5 and last - timedelta(days=7) < a.published_at <= last
    )

    # The tariff episode of the scenario is computed (the rules it is written for), marked, not notified.
    assert {a.rule for a in alerts if isinstance(a, AlertFiring)} == {
        "tariff_strain_high",
        "relationship_shift",
    }
    assert all(a.backfill and a.at <= START for a in alerts)
    assert notified == []


def test_without_backfill_the_back_catalogue_beyond_the_lateness_is_dropped(tmp_path):
    articles = back_catalogue()
    lateness = load_config(None).signals.allowed_lateness
    settings, bus, stage, _, registry = first_start(tmp_path, articles, backfill=False)
    stage.close()
    dropped = sum(1 for a in articles if POLL - a.published_at > lateness)
    assert registry.get_sample_value("monitor_late_articles_total", {"disposition": "dropped"}) == dropped
    assert not list(bus.records(settings.kafka.topics.alerts))


def test_after_the_backfill_alerting_is_live(tmp_path):
    articles = back_catalogue()
    settings, bus, stage, _, registry = first_start(tmp_path, articles, backfill=True)
    default = load_config(None)
    span = signal_params(default.signals, default.rules).span
    beyond = sum(1 for a in articles if POLL - a.published_at >= span)  # too old even for the backfill
    try:
        # An old article arriving after the start is late again, and dropped like any other.
        old = articles[0].model_copy(update={"article_id": "old-after-start", "story_id": "old-after-start"})
        bus.producer().publish_all([Message(settings.kafka.topics.scored, old.article_id, old.encode())])
        while stage.runner.step():
            pass
        dropped = registry.get_sample_value("monitor_late_articles_total", {"disposition": "dropped"})
        assert dropped == beyond + 1
    finally:
        stage.close()

    # A restart is no first start: the state is there.
    from pipelines.alerter import build_alerter

    again = build_alerter(settings, load_config(None), bus, CollectorRegistry(), clock=lambda: START)
    try:
        assert not again.backfilling
    finally:
        again.close()
