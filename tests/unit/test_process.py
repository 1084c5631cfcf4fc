"""What every long-running command shares: a metrics port that is taken is a clear error, early."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import MetricsSettings, Settings
from pipelines.process import claim_metrics_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def test_a_taken_metrics_port_names_the_setting(taken_port: int) -> None:
    settings = Settings(metrics=MetricsSettings(port=taken_port))
    with pytest.raises(ConfigError) as caught:
        claim_metrics_port(settings)
    message = str(caught.value)
    assert "MONITOR_METRICS__PORT" in message and str(taken_port) in message
    assert "0 for no /metrics endpoint" in message


def test_a_free_port_and_port_0_pass() -> None:
    claim_metrics_port(Settings(metrics=MetricsSettings(port=0)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    claim_metrics_port(Settings(metrics=MetricsSettings(port=free)))


def test_monitor_run_with_the_port_taken_stops_before_loading_the_model(
    taken_port: int, tmp_path: Path
) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MONITOR_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(PYTHONPATH=str(ROOT), MONITOR_METRICS__PORT=str(taken_port), MONITOR_LOG_LEVEL="INFO")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--once", "--feed", "http://127.0.0.1:9/feed.xml"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "MONITOR_METRICS__PORT: expected a port free on 127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "classifier" not in proc.stderr.lower()  # nothing was loaded
    print(f"refused after {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize(
    ("argv", "config", "level"),
    [
        (["--config", "a.yaml", "run"], "a.yaml", None),
        (["run", "--config", "b.yaml", "--once"], "b.yaml", None),
        (["--log-level", "INFO", "run", "--log-level", "DEBUG"], None, "DEBUG"),
        (["--config", "top.yaml", "feeds", "check", "f.xml"], "top.yaml", None),
        (["feeds", "check", "f.xml", "--config", "c.yaml"], "c.yaml", None),
        (["topics", "create", "--log-level", "ERROR"], None, "ERROR"),
        (["run"], None, None),
    ],
)
def test_config_and_log_level_are_accepted_before_and_after_the_command(
    argv: list[str], config: str | None, level: str | None
) -> None:
    from monitor.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (None if args.config is None else str(args.config), args.log_level) == (config, level)


@pytest.mark.parametrize(
    ("argv", "env", "code", "message"),
    [
        (
            ["run", "--once", "--feed", "file:///etc/passwd"],
            {},
            2,
            "monitor: configuration error: command line: --feed: expected an http:// or https:// URL",
        ),
        (
            ["run", "--once", "--feed", "http://[::1/x"],
            {},
            2,
            "monitor: configuration error: command line: --feed: expected an http:// or https:// URL",
        ),
        (
            ["feeds", "check", "http://[::1/x"],
            {},
            1,
            "monitor feeds check: http://[::1/x: client_error: not a valid http(s) URL",
        ),
        (
            ["topics", "create"],
            {"MONITOR_KAFKA": "notjson"},
            2,
            "environment: MONITOR_KAFKA: expected a JSON object, or the nested variables",
        ),
    ],
    ids=["file-url", "broken-ipv6", "check-broken-ipv6", "section-not-json"],
)
def test_bad_command_line_input_is_one_clear_line(
    argv: list[str], env: dict[str, str], code: int, message: str, tmp_path: Path
) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    environ.update(PYTHONPATH=str(ROOT), MONITOR_METRICS__PORT="0", **env)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
