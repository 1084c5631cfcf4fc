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


def _feed(stories: list[tuple[str, str]], *, slug: str, hours: float, ago: timedelta = timedelta(0)) -> bytes:
    """An RSS feed of ``stories`` published over ``hours`` hours ending ``ago`` before now, oldest first."""
    now = datetime.now(UTC).replace(microsecond=0) - ago
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
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--once",
            "--feed",
            url,
            "--state-dir",
            str(state_dir),
        ],
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
    # Published over the last 5 hours, within the allowed lateness (6h): live news, not a back catalogue.
    server.add("/tariffs.xml", _feed(TARIFF_STRAIN, slug="tariffs", hours=5), etag='"t1"')
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


def test_a_first_start_folds_in_the_back_catalogue_and_notifies_nothing(server, tmp_path):
    # A tariff episode six to seven days ago, in a feed's back catalogue, far beyond the allowed lateness.
    server.add("/week.xml", _feed(TARIFF_STRAIN, slug="week", hours=10, ago=timedelta(days=6)))
    state = tmp_path / "state"
    result = _run_once(server.url("/week.xml"), state)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ""  # the past alerts are not notified

    from monitor.bus import BUS_LOG_FILE
    from monitor.bus.buslog import read_topic
    from monitor.events import ArticleScored, decode, decode_alert

    scored = [decode(ArticleScored, r.value) for r in read_topic(state / BUS_LOG_FILE, "news.scored")]
    alerts = [decode_alert(r.value) for r in read_topic(state / BUS_LOG_FILE, "news.alerts")]
    assert len(scored) == len(TARIFF_STRAIN)
    # Computed in event time and kept, marked as the past: the tariff rule fired a week ago.
    assert "tariff_strain_high" in {a.rule for a in alerts if a.state == "firing"}
    assert all(a.backfill for a in alerts)
    assert all(a.at < datetime.now(UTC) - timedelta(days=5) for a in alerts if a.state == "firing")

    status = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "status", "--state-dir", str(state), "--format", "json"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))},
        timeout=120,
        check=False,
    )
    assert status.returncode == 0, status.stderr[-3000:]
    overall = next(r for r in json.loads(status.stdout)["subjects"] if r["subject"] == "overall")
    relevant = [a for a in scored if a.relevance >= 0.5]
    assert overall["7d"]["articles"] == len(relevant)  # the week shows at once
    assert overall["24h"]["articles"] == 0
