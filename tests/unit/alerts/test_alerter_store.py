"""The alerter's SQLite state: what is saved is what loads, bit for bit, through incremental saves."""

from __future__ import annotations

import sqlite3

import pytest
from fixtures import scenarios

from monitor.alerts.engine import AlertEngine, EngineState, signal_params
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.store.alerts import AlerterStore


def comparable(state: EngineState):
    s = state.signals
    return (
        s.articles,
        s.seen,
        s.frontiers,
        s.last_tick,
        s.history_start,
        s.published,
        s.max_event_us,
        state.rules,
    )


def test_incremental_saves_load_back_exactly(tmp_path):
    scenario = scenarios.load("tariff_shock")
    config = load_config(None)
    engine = AlertEngine(rules=config.rules, params=signal_params(config.signals, config.rules))
    store = AlerterStore(tmp_path / "alerter.sqlite3")
    saved = store.load()
    assert comparable(saved) == comparable(EngineState())
    saved_with_rules = 0
    for i, article in enumerate(scenario.articles):
        engine.ingest(article, partition=f"p{i % 3}")
        engine.advance(set())
        if i % 4 == 3:
            store.save(saved, engine.state)
            saved = engine.checkpoint()
            assert comparable(store.load()) == comparable(engine.state)
            saved_with_rules += bool(engine.state.rules)
    assert saved_with_rules, "some saves should hold a pending or firing rule"
    store.save(saved, engine.state)
    store.close()
    reopened = AlerterStore(tmp_path / "alerter.sqlite3")
    assert comparable(reopened.load()) == comparable(engine.state)
    reopened.close()


def test_a_restored_engine_continues_exactly_like_the_original(tmp_path):
    scenario = scenarios.load("trade_deal")
    config = load_config(None)
    params = signal_params(config.signals, config.rules)
    original = AlertEngine(rules=config.rules, params=params)
    half = len(scenario.articles) // 2
    for article in scenario.articles[:half]:
        original.ingest(article, partition="p0")
        original.advance(set())
    store = AlerterStore(tmp_path / "s.sqlite3")
    store.save(EngineState(), original.state)
    restored = AlertEngine(rules=config.rules, params=params, state=store.load())
    outputs = []
    for engine in (original, restored):
        out = []
        for article in scenario.articles[half:]:
            engine.ingest(article, partition="p0")
            out += engine.advance(set())
        out += engine.end_of_input()
        outputs.append([o.encode() for o in out])
    assert outputs[0] == outputs[1]


def test_a_state_file_of_another_version_is_refused(tmp_path):
    path = tmp_path / "alerter.sqlite3"
    AlerterStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match="alerter state version 1"):
        AlerterStore(path)


def test_an_unwritable_state_path_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"alerter\.state_path"):
        AlerterStore(blocker / "alerter.sqlite3")
