"""The alerter stage on the in-process bus: outputs, state, restarts, replays, crashes, bad records.

What a crash does is simulated at the exact points that matter: after the outputs were acknowledged but
before the state was saved, and after the state was saved but before the offsets were committed. In
both cases the restarted alerter must publish every alert event exactly once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures import scenarios
from fixtures.scenarios import run_engine
from prometheus_client import CollectorRegistry

from monitor.alerts.stage import AlerterStage, ledger_key
from monitor.bus import topic_specs
from monitor.bus.base import Message
from monitor.bus.memory import InProcessBus
from monitor.config import load_config
from monitor.errors import BusError
from monitor.events import AlertFiring, AlertResolved, DeadLetter, SignalUpdated, decode, decode_alert
from monitor.settings import AlerterSettings, MetricsSettings, Settings
from pipelines.alerter import build_alerter

# The wall clock of these tests: after every scenario (dated 2025), whatever day they run on.
NOW = datetime(2026, 6, 1, tzinfo=UTC)
# The in-process bus has everything at once; the stage's clock is NOW.
FAST = {"max_wait": 0.0, "poll_timeout": 0.01, "clock": lambda: NOW}


class Crash(Exception):
    """Stands for kill -9 at a chosen point."""


def settings_for(state_dir: Path, **alerter) -> Settings:
    alerter.setdefault("idle_advance", False)
    # The scenarios are the live path (articles arriving as published); the first-start backfill, which
    # would fold in what the scenarios expect dropped, has tests of its own.
    alerter.setdefault("backfill", False)
    alerter.setdefault("batch_size", 10)
    return Settings(state_dir=state_dir, alerter=AlerterSettings(**alerter), metrics=MetricsSettings(port=0))


def new_bus(settings: Settings) -> InProcessBus:
    bus = InProcessBus(clock=NOW.timestamp)
    bus.create_topics(topic_specs(settings))
    return bus


def publish(bus: InProcessBus, settings: Settings, articles) -> None:
    bus.producer().publish_all(
        [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in articles]
    )


def drain(stage: AlerterStage) -> None:
    while stage.runner.step():
        pass


def alert_events(bus: InProcessBus, settings: Settings) -> list[AlertFiring | AlertResolved]:
    return [decode_alert(r.value) for r in bus.records(settings.kafka.topics.alerts)]


def keyed(events) -> list[tuple]:
    return sorted((e.at, e.rule, e.state, e.alert_id, e.value) for e in events)


def expected_for(scenario) -> list[tuple]:
    outputs = run_engine(scenario.articles, load_config(None))
    return keyed(o for o in outputs if isinstance(o, AlertFiring | AlertResolved))


def run_scenario(tmp_path: Path, name: str, **alerter):
    scenario = scenarios.load(name)
    settings = settings_for(tmp_path, **alerter)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles)
    registry = CollectorRegistry()
    stage = build_alerter(settings, load_config(None), bus, registry, **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    return scenario, settings, bus, registry


@pytest.mark.parametrize("name", ["tariff_shock", "trade_deal", "quiet_week", "late_articles"])
def test_stage_publishes_the_scenario_alerts(tmp_path, name):
    scenario, settings, bus, _ = run_scenario(tmp_path, name)
    events = alert_events(bus, settings)
    assert keyed(events) == expected_for(scenario)
    assert sorted((e.rule, e.state, e.at) for e in events) == sorted(
        (e.rule, e.state, e.at) for e in scenario.expected
    )
    for record in bus.records(settings.kafka.topics.alerts):
        event = decode_alert(record.value)
        assert record.key == f"{event.rule}/{event.subject}"


def test_signals_are_published_keyed_by_series_and_exported_as_gauges(tmp_path):
    _, settings, bus, registry = run_scenario(tmp_path, "syndicated_copies")
    records = bus.records(settings.kafka.topics.signals)
    latest: dict[str, SignalUpdated] = {}
    for record in records:
        update = decode(SignalUpdated, record.value)
        assert record.key == update.key == f"{update.signal}/{update.topic}/{update.window}"
        if update.key not in latest or update.at >= latest[update.key].at:
            latest[update.key] = update
    assert latest["stories/trade_tariffs/24h"].value == 3.0
    assert latest["volume/trade_tariffs/24h"].value == 14.0
    gauge = registry.get_sample_value(
        "monitor_signal_value", {"signal": "stories", "topic": "trade_tariffs", "window": "24h"}
    )
    assert gauge == latest["stories/trade_tariffs/24h"].value
    assert (
        registry.get_sample_value(
            "monitor_signal_value", {"signal": "volume", "topic": "defence", "window": "7d"}
        )
        == 0.0
    )


def test_viewpoint_signals_are_published_under_their_own_keys_and_exported_as_their_own_gauge(tmp_path):
    _, settings, bus, registry = run_scenario(tmp_path, "views_diverge")
    latest: dict[str, SignalUpdated] = {}
    for record in bus.records(settings.kafka.topics.signals):
        update = decode(SignalUpdated, record.value)
        assert record.key == update.key
        if update.key not in latest or update.at >= latest[update.key].at:
            latest[update.key] = update
    # The scenario's 24h window at its end: 3 Indian stories at +0.6; 3 US at -0.4 and 5 at +0.9.
    assert latest["stories/trade_tariffs/24h/india"].value == 3.0
    us = latest["stance_index/trade_tariffs/24h/us"]
    assert (us.viewpoint, us.stories) == ("us", 8)
    assert us.value == pytest.approx((3 * -0.4 + 5 * 0.9) / 8)
    assert latest["volume/trade_tariffs/24h"].value == 11.0  # viewpoint all: every outlet
    labels = {"signal": "stance_index", "topic": "trade_tariffs", "window": "24h"}
    assert (
        registry.get_sample_value("monitor_viewpoint_signal_value", {**labels, "viewpoint": "us"}) == us.value
    )
    assert (
        registry.get_sample_value("monitor_viewpoint_signal_value", {**labels, "viewpoint": "india"}) == 0.6
    )
    assert (
        registry.get_sample_value("monitor_signal_value", labels)
        == latest["stance_index/trade_tariffs/24h"].value
    )


def test_alert_metrics_count_published_lifecycle_events(tmp_path):
    scenario, _, _, registry = run_scenario(tmp_path, "tariff_shock")
    firing = sum(1 for e in scenario.expected if e.rule == "tariff_strain_high" and e.state == "firing")
    labels = {"rule": "tariff_strain_high", "severity": "critical"}
    assert registry.get_sample_value("monitor_alerts_total", {**labels, "state": "firing"}) == firing
    assert registry.get_sample_value("monitor_alerts_total", {**labels, "state": "resolved"}) == 1
    state = registry.get_sample_value(
        "monitor_alert_state",
        {"rule": "tariff_strain_high", "subject": "trade_tariffs", "severity": "critical"},
    )
    assert state == 0  # resolved by the end


def test_late_and_dropped_articles_are_counted(tmp_path):
    _, _, _, registry = run_scenario(tmp_path, "late_articles")
    assert registry.get_sample_value("monitor_late_articles_total", {"disposition": "dropped"}) == 3
    assert registry.get_sample_value("monitor_late_articles_total", {"disposition": "accepted"}) == 2


def test_replay_into_a_fresh_alerter_gives_the_same_alert_ids(tmp_path):
    scenario, settings, bus, _ = run_scenario(tmp_path / "first", "tariff_shock")
    first = [e.alert_id for e in sorted(alert_events(bus, settings), key=lambda e: (e.at, e.rule, e.state))]
    # A fresh alerter (empty state) on a new bus holding the same scored records, partition by partition.
    replay_settings = settings_for(tmp_path / "replay")
    replay_bus = new_bus(replay_settings)
    replay_bus.producer().publish_all(
        [
            Message(replay_settings.kafka.topics.scored, r.key, r.value)
            for r in bus.records(settings.kafka.topics.scored)
        ]
    )
    stage = build_alerter(replay_settings, load_config(None), replay_bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    again = [
        e.alert_id
        for e in sorted(alert_events(replay_bus, replay_settings), key=lambda e: (e.at, e.rule, e.state))
    ]
    assert again == first
    assert len(first) == len(scenario.expected)


@pytest.mark.parametrize("split", [0.3, 0.5, 0.8])
def test_restart_mid_scenario_gives_the_same_alerts(tmp_path, split):
    scenario = scenarios.load("trade_deal")
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    cut = int(len(scenario.articles) * split)
    publish(bus, settings, scenario.articles[:cut])
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.close()
    publish(bus, settings, scenario.articles[cut:])
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)  # same state file
    drain(stage)
    stage.flush()
    stage.close()
    assert keyed(alert_events(bus, settings)) == expected_for(scenario)


def test_redelivered_records_are_not_counted_twice(tmp_path):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles)
    publish(bus, settings, scenario.articles[5:15])  # at-least-once upstream: the same records again
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    assert keyed(alert_events(bus, settings)) == expected_for(scenario)


def crash_run(tmp_path: Path, monkeypatch, where: str) -> tuple[Settings, InProcessBus, list]:
    """Run until the first batch that published an alert, crash at ``where``, restart, finish."""
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path, batch_size=4)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles)
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    if where == "after_ack_before_save":
        original = stage.store.save

        def save(before, after, **kwargs):
            if alert_events(bus, settings):
                raise Crash
            original(before, after, **kwargs)

        monkeypatch.setattr(stage.store, "save", save)
    else:
        original_commit = stage._consumer.commit

        def commit(records):
            if alert_events(bus, settings):
                raise Crash
            original_commit(records)

        monkeypatch.setattr(stage._consumer, "commit", commit)
    with pytest.raises(Crash):
        drain(stage)
    published_before_crash = alert_events(bus, settings)
    stage.close()  # the process is gone: its consumer leaves the group without committing
    restarted = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(restarted)
    restarted.flush()
    restarted.close()
    return settings, bus, published_before_crash


@pytest.mark.parametrize("where", ["after_ack_before_save", "after_save_before_commit"])
def test_a_crash_neither_loses_nor_repeats_an_alert(tmp_path, monkeypatch, where):
    scenario = scenarios.load("tariff_shock")
    settings, bus, before = crash_run(tmp_path, monkeypatch, where)
    assert before, "the crash should come after some alerts were published"
    events = alert_events(bus, settings)
    counts = Counter(ledger_key(e) for e in events)
    assert max(counts.values()) == 1, "an alert event was published twice"
    assert keyed(events) == expected_for(scenario)


def test_failed_publish_rolls_back_and_the_batch_is_redone(tmp_path, monkeypatch):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path, batch_size=4)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles)
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    real = stage._producer.publish_all
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        if calls["n"] == 3:
            real(list(messages)[:1])  # part of the batch reaches the bus, then the broker goes away
            raise BusError("broker gone", retriable=True)
        real(messages)

    monkeypatch.setattr(stage._producer, "publish_all", flaky)
    with pytest.raises(BusError):
        drain(stage)
    drain(stage)  # the runner would retry after a backoff; the records were rewound
    stage.flush()
    stage.close()
    events = alert_events(bus, settings)
    assert max(Counter(ledger_key(e) for e in events).values()) == 1
    assert keyed(events) == expected_for(scenario)


def test_undecodable_records_go_to_the_dead_letter_topic_and_the_stream_moves_on(tmp_path):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    topic = settings.kafka.topics.scored
    bus.producer().publish_all(
        [Message(topic, "junk", b"{not json"), Message(topic, "x", b'{"schema_version": 1}')]
    )
    publish(bus, settings, scenario.articles)
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    letters = [decode(DeadLetter, r.value) for r in bus.records(settings.kafka.topics.deadletter)]
    assert sorted(d.key for d in letters) == ["junk", "x"]
    assert all(d.stage == "alerter" and d.reason.startswith("undecodable") for d in letters)
    assert keyed(alert_events(bus, settings)) == expected_for(scenario)


def test_on_alert_is_called_after_acknowledgement(tmp_path):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles)
    seen = []

    def on_alert(event):
        # The event is already on the bus when the callback runs.
        assert ledger_key(event) in {ledger_key(e) for e in alert_events(bus, settings)}
        seen.append(event)

    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), on_alert=on_alert, **FAST)
    drain(stage)
    flushed = stage.flush()
    stage.close()
    assert keyed(seen) == expected_for(scenario)
    assert all(e in seen for e in flushed)


def test_idle_clock_resolves_alerts_without_new_articles(tmp_path):
    # With the wall clock far beyond the scenario (2025), an idle, fully read input lets time pass:
    # every alert resolves and the signals empty out, without any new article.
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path, idle_advance=True)
    bus = new_bus(settings)
    publish(bus, settings, scenario.articles[:20])
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    assert stage.runner.step() == 0  # an idle step: the clock follows the wall clock
    stage.close()
    events = alert_events(bus, settings)
    firing = {e.alert_id for e in events if e.state == "firing"}
    resolved = {e.alert_id for e in events if e.state == "resolved"}
    assert firing and firing == resolved
    assert stage.engine.state.signals.articles == {}


def test_state_file_and_ledger_survive_a_restart_without_new_input(tmp_path):
    _, settings, bus, _ = run_scenario(tmp_path, "tariff_shock")
    before = len(alert_events(bus, settings))
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    assert len(alert_events(bus, settings)) == before


def test_without_the_ledger_the_crash_would_publish_an_alert_twice(tmp_path, monkeypatch):
    """The control for the test above: the alert topic's ledger is what prevents the duplicate."""
    import monitor.alerts.stage

    monkeypatch.setattr(monitor.alerts.stage, "read_ledger", lambda bus, topic, **kw: set())
    settings, bus, _ = crash_run(tmp_path, monkeypatch, "after_ack_before_save")
    counts = Counter(ledger_key(e) for e in alert_events(bus, settings))
    assert max(counts.values()) == 2


def test_idle_clock_waits_while_the_consumer_has_no_partitions(tmp_path, monkeypatch):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path, idle_advance=True)
    bus = new_bus(settings)
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    publish(bus, settings, scenario.articles[:5])
    stage.engine.ingest(scenario.articles[0], partition="news.scored[0]")  # something to move the clock for
    monkeypatch.setattr(
        stage._consumer, "lag", dict
    )  # a Kafka consumer before its group assigned it partitions
    stage.idle()
    assert stage.engine.state.signals.last_tick is None
    stage.close()


def test_webhook_receives_every_published_alert_event(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        scenario = scenarios.load("tariff_shock")
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        settings = settings_for(tmp_path, webhook_url=url)
        bus = new_bus(settings)
        publish(bus, settings, scenario.articles)
        registry = CollectorRegistry()
        stage = build_alerter(settings, load_config(None), bus, registry, **FAST)
        drain(stage)
        stage.flush()
        stage.close()  # delivers what is still queued
    finally:
        server.shutdown()
        server.server_close()
    on_topic = sorted(ledger_key(e) for e in alert_events(bus, settings))
    assert sorted(ledger_key(decode_alert(body)) for body in received) == on_topic
    assert registry.get_sample_value("monitor_webhook_deliveries_total", {"outcome": "ok"}) == len(on_topic)


def from_the_future(article, year: int = 2999):
    """A schema-valid copy of ``article`` dated ``year`` (published, fetched and scored)."""
    shift = article.fetched_at.replace(year=year) - article.fetched_at
    return article.model_copy(
        update={
            "article_id": f"{article.article_id}-future",
            "story_id": f"{article.story_id}-future",
            "published_at": article.published_at + shift,
            "fetched_at": article.fetched_at + shift,
            "scored_at": (article.scored_at or article.fetched_at) + shift,
        }
    )


def test_a_record_from_the_future_is_dead_lettered_and_cannot_move_the_clock(tmp_path):
    scenario = scenarios.load("tariff_shock")
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    half = len(scenario.articles) // 2
    poison = from_the_future(scenario.articles[half])
    publish(bus, settings, [*scenario.articles[:half], poison, *scenario.articles[half:]])
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **FAST)
    drain(stage)
    stage.flush()
    stage.close()
    letters = [decode(DeadLetter, r.value) for r in bus.records(settings.kafka.topics.deadletter)]
    assert [d.key for d in letters] == [poison.article_id]
    assert "fetched_at 2999-" in letters[0].reason and "after the record reached the bus" in letters[0].reason
    # The rest of the stream is untouched: the same alerts as without the poison record.
    assert keyed(alert_events(bus, settings)) == expected_for(scenario)
    last_article = max(a.scored_at or a.fetched_at for a in scenario.articles)
    signals = [decode(SignalUpdated, r.value) for r in bus.records(settings.kafka.topics.signals)]
    assert max(s.at for s in signals) < last_article + timedelta(days=1)


def test_record_times_are_bounded_by_the_receipt_time(tmp_path):
    """A producer whose clock runs ahead (within the tolerance) cannot put arrivals past the wall clock."""
    settings = settings_for(tmp_path)
    bus = new_bus(settings)
    now = NOW - timedelta(hours=1)  # the bus stamps the record at NOW, an hour after this clock
    base = scenarios.load("tariff_shock").articles[0]
    ahead = base.model_copy(
        update={"published_at": now, "fetched_at": now + timedelta(minutes=8), "scored_at": None}
    )
    publish(bus, settings, [ahead])
    (record,) = bus.records(settings.kafka.topics.scored)
    stage = build_alerter(
        settings, load_config(None), bus, CollectorRegistry(), **{**FAST, "clock": lambda: now}
    )
    drain(stage)
    state = stage.engine.state.signals
    stage.close()
    assert bus.records(settings.kafka.topics.deadletter) == []
    # received = min(broker timestamp, clock) = the stage's clock, although the record claims 8 minutes more
    assert state.frontiers == {f"{record.topic}[{record.partition}]": int(now.timestamp() * 1_000_000)}


def test_end_of_input_stamps_no_alert_or_signal_after_the_present(tmp_path):
    # The input ends at the arrival (07:20:30) that starts the tariff episode: pending from the 07:25 tick,
    # the rules' `for` (30m) runs out at 07:55, after the present (07:26). The end of input decides the
    # episode then: stamped at the present, marked, the signals left standing at the present.
    scenario = scenarios.load("tariff_shock")
    head = [a for a in scenario.articles if a.scored_at <= datetime(2025, 8, 4, 7, 21, tzinfo=UTC)]
    present = datetime(2025, 8, 4, 7, 26, tzinfo=UTC)
    uncapped = [o for o in run_engine(head, load_config(None)) if isinstance(o, AlertFiring)]
    assert {a.rule for a in uncapped} == {"tariff_strain_high", "relationship_shift"}
    assert all(a.at == datetime(2025, 8, 4, 7, 55, tzinfo=UTC) and not a.end_of_input for a in uncapped)

    now = [present]

    def bus_clock() -> float:  # reads now[0] at each call: the test moves it
        return now[0].timestamp()

    settings = settings_for(tmp_path)
    bus = InProcessBus(clock=bus_clock)
    bus.create_topics(topic_specs(settings))
    publish(bus, settings, head)
    clocked = {**FAST, "clock": lambda: now[0]}
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **clocked)
    drain(stage)
    flushed = stage.flush()
    stage.close()

    fired = alert_events(bus, settings)
    assert sorted(e.alert_id for e in fired) == sorted(a.alert_id for a in uncapped)
    assert flushed == fired
    for event in fired:
        assert event.state == "firing" and event.end_of_input
        assert event.at == present
        assert event.started_at == datetime(2025, 8, 4, 7, 25, tzinfo=UTC)
    signals = [decode(SignalUpdated, r.value) for r in bus.records(settings.kafka.topics.signals)]
    assert signals and max(s.at for s in signals) <= present

    # A later run, 14 minutes on, with one more article: its signals are published at the ticks that
    # have happened (the clock was not left at 07:55), and the episode is not fired again.
    now[0] = later = present + timedelta(minutes=14)
    extra = head[-1].model_copy(
        update={
            "article_id": "tariff-extra",
            "story_id": "tariff-extra",
            "published_at": datetime(2025, 8, 4, 7, 30, tzinfo=UTC),
            "fetched_at": datetime(2025, 8, 4, 7, 35, tzinfo=UTC),
            "scored_at": datetime(2025, 8, 4, 7, 35, 30, tzinfo=UTC),
        }
    )
    publish(bus, settings, [extra])
    stage = build_alerter(settings, load_config(None), bus, CollectorRegistry(), **clocked)
    drain(stage)
    stage.flush()
    stage.close()
    signals = [decode(SignalUpdated, r.value) for r in bus.records(settings.kafka.topics.signals)]
    at_40 = [s for s in signals if s.at == datetime(2025, 8, 4, 7, 40, tzinfo=UTC)]
    assert any(s.topic == "trade_tariffs" and s.signal == "volume" and s.window == "24h" for s in at_40)
    assert max(s.at for s in signals) <= later
    assert Counter(e.alert_id for e in alert_events(bus, settings) if e.state == "firing") == Counter(
        a.alert_id for a in uncapped
    )
