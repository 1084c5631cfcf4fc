"""Settings from the environment and the YAML config file: clear errors, nothing half-configured."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.durations import format_duration, parse_duration
from monitor.errors import ConfigError
from monitor.settings import env_var_names, load_settings


def test_defaults_without_environment():
    settings = load_settings({})
    assert not settings.uses_kafka
    assert settings.scorer.batch_size == 32
    assert settings.poller.read_timeout == timedelta(seconds=30)


def test_prefixed_nested_variables_and_standard_kafka_variable(monkeypatch):
    monkeypatch.setenv("MONITOR_SCORER__BATCH_SIZE", "8")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    import os

    settings = load_settings(os.environ)
    assert settings.scorer.batch_size == 8
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.kafka.partitions == 3  # the rest of the section keeps its defaults
    monkeypatch.setenv("MONITOR_KAFKA__BOOTSTRAP_SERVERS", "other:9092")
    assert load_settings(os.environ).kafka.bootstrap_servers == "other:9092"


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("MONITOR_POLLER__READ_TIMEOUT", "soon")
    import os

    with pytest.raises(ConfigError) as info:
        load_settings(os.environ)
    assert info.value.key == "MONITOR_POLLER__READ_TIMEOUT"
    assert "duration" in str(info.value)


def test_settings_are_frozen():
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.state_dir = Path("/tmp")  # type: ignore[misc]


def test_env_var_names_cover_nested_settings():
    names = env_var_names()
    assert {"MONITOR_METRICS__PORT", "MONITOR_KAFKA__TOPICS__ALERTS", "KAFKA_BOOTSTRAP_SERVERS"} <= names


def test_packaged_default_config_is_valid():
    config = load_config(None)
    assert config.signals.windows == (timedelta(hours=6), timedelta(hours=24), timedelta(days=7))


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("feeds:\n  - {id: a, url: 'ftp://x', name: A}\n", "feeds[0].url", "http"),
        ("feeds:\n  - {id: a, name: A}\n", "feeds[0].url", "required"),
        ("feeds:\n  - {id: a, url: 'http://x', name: A, interval: soon}\n", "feeds[0].interval", "duration"),
        ("signals:\n  windows: [6h, -1h]\n", "signals.windows", "positive"),
        ("feeds: []\ncolour: blue\n", "colour", "no such key"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path, text, key, expected):
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert expected in info.value.expected
    assert str(path) in str(info.value)


def test_duplicate_feed_ids_are_rejected():
    feed = {"id": "a", "url": "http://x", "name": "A"}
    with pytest.raises(ConfigError, match="duplicated"):
        parse_config({"feeds": [feed, feed]}, source="m.yaml")


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="readable file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds: [\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("7d", 604800), ("1h30m", 5400), (45, 45)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_duration_round_trip_and_errors():
    assert format_duration(timedelta(hours=6)) == "6h"
    assert format_duration(timedelta(minutes=90)) == "90m"
    for bad in ("", "6x", "h", "1h 2", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_settings_read_only_the_given_mapping(monkeypatch):
    monkeypatch.setenv("MONITOR_METRICS__PORT", "1234")
    assert load_settings({}).metrics.port == 9100  # the process environment is not read behind our back
    settings = load_settings({"MONITOR_METRICS__PORT": "9101", "monitor_scorer__batch_size": "4"})
    assert settings.metrics.port == 9101 and settings.scorer.batch_size == 4


def test_command_line_overrides_win():
    settings = load_settings({"MONITOR_STATE_DIR": "/var/x"}, state_dir=Path("/tmp/y"))
    assert settings.state_dir == Path("/tmp/y")


def test_metrics_listen_on_loopback_by_default():
    assert load_settings({}).metrics.host == "127.0.0.1"
    assert load_settings({"MONITOR_METRICS__HOST": "0.0.0.0"}).metrics.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MONITOR_POLLER__READ_TIMEOUT", "0s"),
        ("MONITOR_POLLER__READ_TIMEOUT", "-5s"),
        ("MONITOR_POLLER__TOTAL_TIMEOUT", "0s"),
        ("MONITOR_POLLER__BACKOFF_BASE", "-1m"),
        ("MONITOR_POLLER__CONNECT_TIMEOUT", "2h"),
        ("MONITOR_KAFKA__SESSION_TIMEOUT", "0s"),
        ("MONITOR_ALERTER__WEBHOOK_TIMEOUT", "0s"),
        ("MONITOR_POLLER__SEEN_RETENTION", "99999999999999d"),
    ],
)
def test_out_of_range_durations_are_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert variable in str(caught.value)


def test_an_absurd_duration_is_a_clear_error_not_an_overflow():
    with pytest.raises(ValueError, match="at most 100 years"):
        parse_duration("99999999999999d")
    with pytest.raises(ValueError, match="at most 100 years"):
        parse_duration(float("nan"))
    with pytest.raises(ConfigError, match="at most 100 years"):
        parse_config({"signals": {"windows": ["99999999999999d"]}}, source="m.yaml")


def test_a_lateness_below_zero_is_refused():
    with pytest.raises(ConfigError, match="allowed_lateness"):
        parse_config({"signals": {"allowed_lateness": "-1h"}}, source="m.yaml")


def test_allowed_networks_must_be_networks():
    settings = load_settings({"MONITOR_POLLER__ALLOWED_NETWORKS": '["10.0.0.0/8", "192.168.1.7"]'})
    assert settings.poller.allowed_networks == ("10.0.0.0/8", "192.168.1.7")
    with pytest.raises(ConfigError, match="MONITOR_POLLER__ALLOWED_NETWORKS"):
        load_settings({"MONITOR_POLLER__ALLOWED_NETWORKS": '["intranet"]'})


def test_the_webhook_url_is_a_secret_checked_at_load():
    url = "https://hooks.example/services/T0/B0/XyZ"
    settings = load_settings({"MONITOR_ALERTER__WEBHOOK_URL": url})
    assert settings.alerter.webhook_url is not None
    assert settings.alerter.webhook_url.get_secret_value() == url
    assert "XyZ" not in repr(settings) + str(settings.alerter)
    assert load_settings({"MONITOR_ALERTER__WEBHOOK_URL": ""}).alerter.webhook_url is None


@pytest.mark.parametrize(
    "url", ["ftp://admin:token@x", "admin:token@x", "https://admin:token@", "http://x:99999/token"]
)
def test_a_bad_webhook_url_is_a_config_error_that_hides_it(url):
    with pytest.raises(ConfigError) as info:
        load_settings({"MONITOR_ALERTER__WEBHOOK_URL": url})
    assert info.value.key == "MONITOR_ALERTER__WEBHOOK_URL"
    assert "http:// or https://" in str(info.value)
    assert "token" not in str(info.value)
    assert "token" not in str(info.value.__cause__)


def test_a_bad_webhook_url_stops_the_cli_before_any_state_file(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("MONITOR_ALERTER__WEBHOOK_URL", "ftp://admin:token@x")
    state = tmp_path / "state"
    assert main(["run", "--once", "--state-dir", str(state)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("monitor: configuration error: environment: MONITOR_ALERTER__WEBHOOK_URL: expected")
    assert "token" not in out + err
    assert not state.exists()


def test_every_mistake_of_a_config_file_is_reported_at_once():
    data = {
        "feeds": [{"id": "a", "url": "https://a.example/rss", "colour": "red"}],
        "signals": {"allowed_lateness": "-1h"},
        "rules": "not a list",
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="m.yaml")
    error = caught.value
    assert len(error.more) == 3  # the feed also lacks its name
    text = str(error)
    assert "feeds[0].name: expected this key (it is required)" in text
    assert "feeds[0].colour: expected no such key" in text
    assert "signals.allowed_lateness: expected a value of at least 0s, got '-1h'" in text
    assert "m.yaml: rules: expected" in text
    assert "\n" not in text  # one line


def test_bounds_read_as_english_not_as_pydantic_sentences():
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_POLLER__READ_TIMEOUT": "0s", "MONITOR_POLLER__WORKERS": "0"})
    text = str(caught.value)
    assert "MONITOR_POLLER__READ_TIMEOUT: expected a value of at least 0.1s, got '0s'" in text, text
    assert "MONITOR_POLLER__WORKERS: expected a value of at least 1, got '0'" in text
    assert "Input should be" not in text
