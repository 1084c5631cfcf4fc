"""``monitor run`` without a broker, killed with SIGKILL mid-stream: after a restart nothing is lost."""

from __future__ import annotations

import email.utils
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, rss_feed
from stories import TARIFF_STRAIN

pytestmark = [pytest.mark.e2e, pytest.mark.model]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "KAFKA_"))}
    return env | {"MONITOR_METRICS__PORT": "0", "MONITOR_POLLER__START_SPREAD": "0s"}


def _count(db: Path, topic: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM records WHERE topic = ?", (topic,)).fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def _scored_ids(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT value FROM records WHERE topic = 'news.scored'").fetchall()
    return [json.loads(value)["article_id"] for (value,) in rows]


def test_kill_9_loses_no_article(tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        {
            "title": title,
            "description": lead,
            "link": f"https://news.example/crash/{i}",
            "pub_date": email.utils.format_datetime(now - timedelta(hours=3) + timedelta(minutes=10 * i)),
        }
        for i, (title, lead) in enumerate(TARIFF_STRAIN)
    ]
    state = tmp_path / "state"
    bus_db = state / "bus.sqlite3"
    with FeedServer() as server:
        server.add("/feed.xml", rss_feed(items))
        command = [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--feed",
            server.url("/feed.xml"),
            "--state-dir",
            str(state),
        ]
        process = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 300
            while _count(bus_db, "news.articles") < len(items):  # published and acknowledged
                assert process.poll() is None, (
                    process.stderr.read().decode()[-3000:] if process.stderr else ""
                )
                assert time.monotonic() < deadline, "the poller did not publish the feed"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            process.stdout.close()  # type: ignore[union-attr]
            process.stderr.close()  # type: ignore[union-attr]
        scored_before = _count(bus_db, "news.scored")

        again = subprocess.run(
            [*command, "--once"], env=_env(), capture_output=True, text=True, timeout=600, check=False
        )
        assert again.returncode == 0, again.stderr[-3000:]

    ids = _scored_ids(bus_db)
    assert _count(bus_db, "news.articles") == len(items), "the restart republished articles"
    assert len(set(ids)) == len(items), (
        f"scored {len(set(ids))} of {len(items)} (before the kill: {scored_before})"
    )
