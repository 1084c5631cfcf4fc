"""End to end: ``monitor run --once`` on feeds served over local HTTP, with the real model, no broker."""

from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, rss_feed
from stories import TARIFF_STRAIN, UNRELATED

pytestmark = [pytest.mark.e2e, pytest.mark.model]


def _feed(stories: list[tuple[str, str]], *, slug: str, hours: float) -> bytes:
    """An RSS feed of ``stories`` published over the last ``hours`` hours, oldest first."""
    now = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(hours=hours) / len(stories)
    items = []
    for i, (title, lead) in enumerate(stories):
        published = now - timedelta(hours=hours) + step * i
        items.append(
            {
                "title": title,
                "description": lead,
                "link": f"https://news.example/{slug}/{i}?utm_source=rss",
                "guid": f"{slug}-{i}",
                "pub_date": email.utils.format_datetime(published),
            }
        )
    return rss_feed(items, title=f"{slug} desk")


def _run_once(url: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    env |= {"MONITOR_METRICS__PORT": "0", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--once", "--feed", url, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def test_tariff_strain_feed_fires_the_tariff_strain_alert(server, tmp_path):
    server.add("/tariffs.xml", _feed(TARIFF_STRAIN, slug="tariffs", hours=10), etag='"t1"')
    started = datetime.now(UTC)
    result = _run_once(server.url("/tariffs.xml"), tmp_path / "state")
    ended = datetime.now(UTC)
    assert result.returncode == 0, result.stderr[-3000:]
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    fired = [a for a in alerts if a["rule"] == "tariff_strain_high"]
    assert len(fired) == 1, (alerts, result.stderr[-3000:])
    alert = fired[0]
    assert alert["state"] == "firing" and alert["subject"] == "trade_tariffs"
    assert alert["value"] <= -0.35
    assert alert["evidence"] and all(
        e["url"].startswith("https://news.example/tariffs/") for e in alert["evidence"]
    )
    assert "utm_source" not in alert["evidence"][0]["url"]
    assert alert["summary"]
    # Every article arrived during the run, so the rule's `for: 30m` had not passed when the input ended:
    # the end of input decided it, and says so; no time in the record is later than the run.
    assert alert["end_of_input"] is True
    started_at, at = datetime.fromisoformat(alert["started_at"]), datetime.fromisoformat(alert["at"])
    assert started <= started_at <= at <= ended

    # A second run on the same state: nothing new in the feed, no alert fired twice.
    again = _run_once(server.url("/tariffs.xml"), tmp_path / "state")
    assert again.returncode == 0, again.stderr[-3000:]
    assert [json.loads(line) for line in again.stdout.splitlines() if line.strip()] == []


def test_unrelated_feed_fires_nothing(server, tmp_path):
    server.add("/other.xml", _feed(UNRELATED, slug="other", hours=6))
    result = _run_once(server.url("/other.xml"), tmp_path / "state")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ""
