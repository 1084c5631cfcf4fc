"""``monitor status``: the table is checked against what the alerter published and what its state holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures import scenarios
from prometheus_client import CollectorRegistry

from monitor.bus import make_bus, topic_specs
from monitor.bus.base import Message
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.events import AlertFiring, SignalUpdated, decode, decode_alert
from monitor.settings import AlerterSettings, MetricsSettings, Settings
from monitor.signals import SUBJECTS
from monitor.signals.windows import from_us
from monitor.status import STEADY, direction_of, status_windows
from pipelines import cli
from pipelines.alerter import build_alerter
from pipelines.status import embedded_status

NOW = datetime(2026, 6, 1, tzinfo=UTC)  # the stage's clock: after the scenario (2025), whatever the date


def test_direction_compares_the_short_window_with_the_long_one() -> None:
    assert direction_of(0.30, 0.20) == ("rising", pytest.approx(0.10))
    assert direction_of(-0.40, -0.10) == ("falling", pytest.approx(-0.30))
    assert direction_of(0.10 + STEADY / 2, 0.10)[0] == "steady"
    assert direction_of(None, 0.1) == (None, None)
    assert direction_of(0.1, None) == (None, None)


def test_status_windows_are_24h_and_7d_where_configured() -> None:
    assert status_windows([timedelta(hours=6), timedelta(days=1), timedelta(days=7)]) == ("24h", "7d")
    assert status_windows([timedelta(hours=6), timedelta(hours=12)]) == ("6h", "12h")


def run_embedded(state_dir: Path, until: datetime) -> tuple[Settings, list[SignalUpdated], list[AlertFiring]]:
    """The alerter of ``monitor run`` (durable in-process bus) over the tariff scenario's articles scored
    before ``until``; returns the signal points and alert events it published."""
    settings = Settings(
        state_dir=state_dir,
        alerter=AlerterSettings(idle_advance=False, batch_size=10),
        metrics=MetricsSettings(port=0),
    )
    articles = [a for a in scenarios.load("tariff_shock").articles if a.scored_at <= until]
    bus = make_bus(settings, durable=True)
    try:
        bus.create_topics(topic_specs(settings))
        bus.producer().publish_all(
            [Message(settings.kafka.topics.scored, a.article_id, a.encode()) for a in articles]
        )
        stage = build_alerter(
            settings,
            load_config(None),
            bus,
            CollectorRegistry(),
            max_wait=0.0,
            poll_timeout=0.01,
            clock=lambda: NOW,
        )
        while stage.runner.step():
            pass
        stage.close()
        signals = [decode(SignalUpdated, r.value) for r in bus.records(settings.kafka.topics.signals)]
        alerts = [decode_alert(r.value) for r in bus.records(settings.kafka.topics.alerts)]
    finally:
        bus.close()
    return settings, signals, alerts


def test_embedded_status_matches_what_the_alerter_published(tmp_path: Path) -> None:
    # Mid-episode: the tariff alert fired at 07:55 and is still firing at 12:20.
    settings, signals, alerts = run_embedded(tmp_path / "state", datetime(2025, 8, 4, 12, 21, tzinfo=UTC))
    latest = {s.key: s for s in sorted(signals, key=lambda s: s.at)}
    last_event = {a.alert_id: a for a in sorted(alerts, key=lambda a: a.at)}
    firing = {i for i, a in last_event.items() if isinstance(a, AlertFiring)}
    assert any(last_event[i].rule == "tariff_strain_high" for i in firing)

    status = embedded_status(settings)
    assert status.as_of is not None and status.as_of >= max(s.at for s in signals)
    assert [row.subject for row in status.subjects] == list(SUBJECTS)
    for row in status.subjects:
        for window, figures in (("24h", row.short), ("7d", row.long)):
            stance = latest.get(f"stance_index/{row.subject}/{window}")
            volume = latest.get(f"volume/{row.subject}/{window}")
            assert figures.stance_index == (None if stance is None else stance.value)
            assert figures.articles == (0 if volume is None else volume.articles)
            assert figures.stories == (0 if volume is None else volume.stories)
    assert {a.alert_id for a in status.firing} == firing
    trade = next(r for r in status.subjects if r.subject == "trade_tariffs")
    assert {a.alert_id for a in trade.firing} == {
        i for i in firing if last_event[i].subject == "trade_tariffs"
    }
    overall = next(r for r in status.subjects if r.subject == "overall")
    assert trade.direction == "steady"  # every trade story of the scenario is within the last day
    assert overall.direction == "falling"  # the tariff day against a calm week of diplomacy stories


def test_status_command_prints_the_table_and_json(tmp_path: Path, capsys, monkeypatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONITOR_KAFKA__BOOTSTRAP_SERVERS", "MONITOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    _, signals, alerts = run_embedded(state, datetime(2025, 8, 4, 12, 21, tzinfo=UTC))
    latest = {s.key: s for s in sorted(signals, key=lambda s: s.at)}
    tariff = next(a for a in alerts if a.rule == "tariff_strain_high")

    assert cli.main(["status", "--state-dir", str(state), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    row = next(r for r in shown["subjects"] if r["subject"] == "trade_tariffs")
    assert row["24h"]["stance_index"] == latest["stance_index/trade_tariffs/24h"].value
    assert row["7d"]["articles"] == latest["volume/trade_tariffs/7d"].articles
    assert tariff.alert_id in row["firing"]
    assert tariff.alert_id in {a["alert_id"] for a in shown["alerts_firing"]}

    assert cli.main(["status", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("trade_tariffs"))
    assert f"{latest['stance_index/trade_tariffs/24h'].value:+.2f}" in line
    assert tariff.summary in text


def test_status_without_state_says_how_to_get_some(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `monitor run` first"):
        embedded_status(Settings(state_dir=tmp_path / "nothing"))
    assert not (tmp_path / "nothing").exists()


def test_status_reads_the_state_as_of_its_last_tick(tmp_path: Path) -> None:
    settings, _, _ = run_embedded(tmp_path / "state", datetime(2025, 7, 30, 1, 0, tzinfo=UTC))
    status = embedded_status(settings)
    from monitor.store.alerts import AlerterStore

    store = AlerterStore(settings.state_path("alerter.sqlite3"))
    try:
        last_tick = store.load().signals.last_tick
    finally:
        store.close()
    assert last_tick is not None and status.as_of == from_us(last_tick)
    assert status.firing == ()


def test_status_shows_the_stance_of_indian_and_us_outlets() -> None:
    from monitor.alerts.engine import AlertEngine, signal_params
    from monitor.config import parse_config
    from monitor.status import build_status, format_text, to_json

    scenario = scenarios.load("views_diverge")
    config = parse_config({"rules": scenario.rules}, source="views_diverge")
    engine = AlertEngine(rules=config.rules, params=signal_params(config.signals, config.rules))
    for article in scenario.articles:
        engine.ingest(article, partition="p0")
    engine.end_of_input()  # everything read is all there is: evaluate past the last article
    status = build_status(
        engine.state.signals.published,
        windows=[timedelta(days=1), timedelta(days=7)],
        firing=[],
        as_of=NOW,
        source="t",
    )
    trade = next(r for r in status.subjects if r.subject == "trade_tariffs")
    # The scenario's last day: 3 Indian stories at +0.6; 3 US stories at -0.4 and 5 at +0.9.
    assert trade.viewpoints["india"].stance_index == pytest.approx(0.6)
    assert trade.viewpoints["us"].stance_index == pytest.approx((3 * -0.4 + 5 * 0.9) / 8)
    assert (trade.viewpoints["india"].stories, trade.viewpoints["us"].stories) == (3, 8)
    defence = next(r for r in status.subjects if r.subject == "defence")
    assert defence.viewpoints["india"].stance_index is None
    shown = next(r for r in to_json(status)["subjects"] if r["subject"] == "trade_tariffs")
    assert shown["viewpoints"]["us"]["24h"]["stories"] == 8
    text = format_text(status)
    assert "india 24h" in text.splitlines()[2] and "us 24h" in text.splitlines()[2]
    line = next(x for x in text.splitlines() if x.startswith("trade_tariffs"))
    assert line.split()[-2:] == ["+0.60", "+0.41"]
