"""Helpers of the feed tests: fixture paths, a settable clock, a poller rig on the in-process bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from feedserver import FeedServer
from prometheus_client import CollectorRegistry

from monitor.bus.memory import InProcessBus
from monitor.events import ArticleFetched, decode
from monitor.feeds.model import FeedConfig
from monitor.feeds.poller import Poller
from monitor.settings import PollerSettings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
SHARED = Path(__file__).resolve().parents[4] / "shared"
SHARED_FEEDS = SHARED / "fixtures" / "feeds"
SHARED_EVAL = SHARED / "eval" / "articles-dev.jsonl"
T0 = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
TOPIC = "news.articles"


class Clock:
    """A settable clock for the poller (the scheduler itself runs on real time)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@dataclass
class PollerRig:
    """A poller wired to an in-process bus, a SQLite file, a fresh registry and a fake clock."""

    poller: Poller
    bus: InProcessBus
    registry: CollectorRegistry
    clock: Clock
    state_path: Path
    settings: PollerSettings
    published_batches: list[list[str]] = field(default_factory=list)

    def articles(self) -> list[ArticleFetched]:
        return [decode(ArticleFetched, r.value) for r in self.bus.records(TOPIC)]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def rig_settings(**overrides: Any) -> PollerSettings:
    """Poller settings for tests: no jitter, short timeouts, quick backoff."""
    values: dict[str, Any] = {
        "jitter": 0.0,
        "connect_timeout": timedelta(seconds=2),
        "read_timeout": timedelta(seconds=2),
        "total_timeout": timedelta(seconds=5),
        "min_interval": timedelta(minutes=5),
        "backoff_base": timedelta(minutes=2),
        "backoff_cap": timedelta(hours=6),
        "max_bytes": 64 * 1024,
        "max_redirects": 3,
        "workers": 4,
    }
    values.update(overrides)
    return PollerSettings(**values)


def feed(server: FeedServer, path: str, *, feed_id: str | None = None, **fields: Any) -> FeedConfig:
    """A FeedConfig for ``path`` on ``server`` (interval 15m unless given)."""
    fid = feed_id or path.strip("/").replace("/", "-") or "root"
    return FeedConfig(id=fid, url=server.url(path), name=f"Feed {fid}", **fields)
