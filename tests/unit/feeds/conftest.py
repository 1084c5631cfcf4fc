"""Fixtures for the feed tests: a local feed server and a poller rig on the in-process bus."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# The helpers next to this file (feedtest.py) are imported by name: put this folder on sys.path, as the
# root conftest does for tests/ (pytest runs in importlib mode, which adds no test folder by itself).
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from feedserver import FeedServer
from feedtest import TOPIC, Clock, PollerRig, rig_settings
from prometheus_client import CollectorRegistry

from monitor.bus.base import Producer
from monitor.bus.memory import InProcessBus
from monitor.feeds.model import FeedConfig
from monitor.feeds.poller import Poller
from monitor.metrics import PollerMetrics, StageMetrics
from monitor.store.feeds import FeedStore
from pipelines.poller import build_fetcher


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started :class:`FeedServer` on 127.0.0.1 and a free port."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., PollerRig]]:
    """``make_rig(feeds, **settings)``: a :class:`PollerRig`; a second call reuses the same state file."""
    rigs: list[PollerRig] = []
    clock = Clock()
    state_path = tmp_path / "poller.sqlite3"

    def make(
        feeds: Sequence[FeedConfig],
        *,
        bus: InProcessBus | None = None,
        producer: Producer | None = None,
        **overrides: Any,
    ) -> PollerRig:
        settings = rig_settings(**overrides)
        registry = CollectorRegistry()
        bus = bus or InProcessBus(default_partitions=1)
        rig_batches: list[list[str]] = []
        poller = Poller(
            feeds=feeds,
            fetcher=build_fetcher(settings),
            producer=producer or bus.producer(),
            store=FeedStore(state_path),
            topic=TOPIC,
            settings=settings,
            metrics=PollerMetrics(registry),
            stage_metrics=StageMetrics(registry),
            clock=clock,
            rng=random.Random(7),
            after_publish=lambda feed_id, arts: rig_batches.append([a.article_id for a in arts]),
        )
        rig = PollerRig(poller, bus, registry, clock, state_path, settings, rig_batches)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.poller.close()
