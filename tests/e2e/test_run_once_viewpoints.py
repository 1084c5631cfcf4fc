"""End to end: ``monitor run --once`` with Indian-viewpoint and US-viewpoint feeds over local HTTP, the real
model, no broker: a divergence rule fires when the two sides read India-US trade differently, and not when
they read it alike."""

from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from feedserver import FeedServer, rss_feed
from stories import TARIFF_STRAIN, TRADE_COOPERATION

pytestmark = [pytest.mark.e2e, pytest.mark.model]

RULE = {
    "name": "trade_views_diverge",
    "severity": "warning",
    "subject": "trade_tariffs",
    "signal": "stance_index",
    "window": "24h",
    "divergence": {"between": ["india", "us"], "delta": 0.5, "clear_delta": 0.25},
    "min_stories": 3,
    "for": "30m",
}


def _feed(stories: list[tuple[str, str]], *, slug: str, hours: float = 5) -> bytes:
    """An RSS feed of ``stories`` published over the last ``hours`` hours, oldest first."""
    now = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(hours=hours) / len(stories)
    items = [
        {
            "title": title,
            "description": lead,
            "link": f"https://news.example/{slug}/{i}",
            "guid": f"{slug}-{i}",
            "pub_date": email.utils.format_datetime(now - timedelta(hours=hours) + step * i),
        }
        for i, (title, lead) in enumerate(stories)
    ]
    return rss_feed(items, title=f"{slug} desk")


def _run_once(server: FeedServer, tmp_path: Path, india: list, us: list) -> tuple[list[dict], Path]:
    server.add("/india.xml", _feed(india, slug="india"))
    server.add("/us.xml", _feed(us, slug="us"))
    config = {
        "feeds": [
            {"id": "india-desk", "name": "India desk", "url": server.url("/india.xml"), "viewpoint": "india"},
            {"id": "us-desk", "name": "US desk", "url": server.url("/us.xml"), "viewpoint": "us"},
        ],
        "rules": [RULE],
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    env |= {"MONITOR_METRICS__PORT": "0", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--once",
            "--config",
            str(path),
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()], state


def _scored(state: Path) -> list:
    from monitor.bus import BUS_LOG_FILE
    from monitor.bus.buslog import read_topic
    from monitor.events import ArticleScored, decode

    return [decode(ArticleScored, r.value) for r in read_topic(state / BUS_LOG_FILE, "news.scored")]


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def test_indian_and_us_outlets_that_disagree_fire_the_divergence_alert(server, tmp_path):
    # Indian outlets report a trade deal near; US outlets report tariffs biting.
    alerts, state = _run_once(server, tmp_path, TRADE_COOPERATION, TARIFF_STRAIN[:6])
    (alert,) = alerts
    assert (alert["rule"], alert["state"], alert["subject"]) == (
        "trade_views_diverge",
        "firing",
        "trade_tariffs",
    )
    india, us = alert["value"], alert["baseline"]
    assert india - us >= 0.5  # the Indian side reads it higher (more cooperative) by at least delta
    assert alert["threshold"] == pytest.approx(us + 0.5)
    # One evidence story from each side: the Indian feed's, then the US feed's.
    assert [e["viewpoint"] for e in alert["evidence"]] == ["india", "us"]
    assert alert["evidence"][0]["url"].startswith("https://news.example/india/")
    assert alert["evidence"][1]["url"].startswith("https://news.example/us/")
    assert alert["evidence"][0]["stance"] > alert["evidence"][1]["stance"]
    assert "Indian outlets read it as" in alert["summary"] and "US outlets read it as" in alert["summary"]
    # The viewpoint travelled from the feed config through news.articles and news.scored.
    by_feed = {a.source.feed_id: a.source.viewpoint for a in _scored(state)}
    assert by_feed == {"india-desk": "india", "us-desk": "us"}


def test_indian_and_us_outlets_that_agree_fire_nothing(server, tmp_path):
    # Both sides report the tariff strain.
    alerts, state = _run_once(server, tmp_path, TARIFF_STRAIN[:5], TARIFF_STRAIN[5:])
    assert alerts == []
    # Both sides were scored and counted (the rule saw them, and they read alike).
    scored = _scored(state)
    assert {a.source.viewpoint for a in scored} == {"india", "us"}
    assert len(scored) == len(TARIFF_STRAIN)
    trade = Counter(
        a.source.viewpoint for a in scored if a.relevance >= 0.5 and a.topics.get("trade_tariffs", 0.0) >= 0.5
    )
    assert trade["india"] >= 3 and trade["us"] >= 3  # enough stories on each side: the rule could have fired
