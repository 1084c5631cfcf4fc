"""Benchmark the poller: N feeds served locally, polled with ``Poller.poll_all_once``; prints the figures.

The feeds are served by tests/feedserver.py in a separate process (so the poller's CPU and memory are
measured alone), spread over loopback addresses 127.0.0.1..127.0.0.H to exercise the per-host limit.
Pass 1 is cold (every feed 200, every entry new); from pass 2 on, half the feeds answer 304 to the
conditional GET and the other half answer 200 with a new ETag and two new entries (the "mixed" passes).
Articles go to the in-process bus, or to Kafka with ``--kafka HOST:PORT``.

    .venv/bin/python bench/bench_poller.py                 # 500 feeds, 50 hosts, 30 entries each
    .venv/bin/python bench/bench_poller.py --feeds 100 --passes 2

Prints, per pass: feeds/s, outcomes, articles published, wall and CPU seconds; then the peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

_VOCAB_TEXT = """
tariff trade deal defence engine minerals lithium quad summit visa talks energy gas oil sanctions satellite
semiconductor investment exports textile shrimp framework pact envoy ministers exercise navy drone reactor
supply chain technology partnership negotiators tranche duties market access rupee dollar refinery cargo
port shipyard frigate helicopter radar vaccine pharmaceutical students universities startups fintech telecom
cable spectrum airline aircraft jet fuel coal solar wind hydrogen grid battery rare earths copper nickel
cobalt steel aluminium farm dairy almonds apples walnuts whisky motorcycles solar-panels generics insulin
diaspora consulate embassy parliament senate committee court ruling election campaign budget inflation jobs
"""
_VOCAB = _VOCAB_TEXT.split()
_SUBJECTS = [
    "Officials",
    "Negotiators",
    "The ministry",
    "Exporters",
    "Analysts",
    "The embassy",
    "Diplomats",
    "Industry groups",
    "The agency",
    "Lawmakers",
    "Company executives",
    "The commerce department",
]
_VERBS = [
    "discussed",
    "reviewed",
    "proposed",
    "rejected",
    "welcomed",
    "questioned",
    "announced",
    "delayed",
    "approved",
    "criticised",
    "expanded",
    "signed",
]


def _sentence(rng: random.Random) -> str:
    words = rng.sample(_VOCAB, 5)
    return (
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} the {words[0]} and {words[1]} plan for {words[2]}, "
        f"with {words[3]} {words[4]} on the agenda for {rng.randint(2, 28)} "
        f"{rng.choice(['March', 'May', 'June'])}."
    )


def _item(rng: random.Random, feed: int, n: int) -> dict[str, str]:
    words = rng.sample(_VOCAB, 4)
    return {
        "title": f"India, US {' '.join(words)} {rng.choice(_VERBS)} ({feed}-{n})",
        "link": f"https://bench{feed % 97}.example/{feed}/story-{n}?utm_source=rss",
        "guid": f"bench-{feed}-{n}",
        "description": f"{_sentence(rng)} {_sentence(rng)} Read more at Outlet {feed % 97}.",
        "pub_date": "Tue, 03 Feb 2026 05:00:00 GMT",
    }


def serve(feeds: int, items: int, passes: int, conn: Any) -> None:
    """The feed server process: build every feed's successive versions, serve until told to stop."""
    from feedserver import FeedServer, Response, rss_feed

    rng = random.Random(42)
    server = FeedServer(host="0.0.0.0").start()
    for f in range(feeds):
        entries = [_item(rng, f, n) for n in range(items)]
        if f % 2 == 0:  # static: 304 after the first pass
            server.add(f"/feed/{f}", rss_feed(entries), etag=f'"s{f}"')
        else:  # changing: two new entries and a new ETag on every request
            versions = []
            for p in range(passes):
                fresh = [_item(rng, f, items + 2 * p + k) for k in range(2)] if p else []
                entries = fresh + entries[: items - len(fresh)]
                versions.append(Response(rss_feed(entries), etag=f'"c{f}-{p}"'))
            server.add_sequence(f"/feed/{f}", versions)
    conn.send(server.port)
    conn.recv()  # wait for "stop"
    server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=50, help="loopback addresses the feeds are spread over")
    parser.add_argument("--items", type=int, default=30, help="entries per feed")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--kafka", metavar="HOST:PORT", help="publish to this broker instead of in-process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    server = ctx.Process(target=serve, args=(args.feeds, args.items, args.passes, there), daemon=True)
    server.start()
    port = here.recv()

    from prometheus_client import CollectorRegistry

    from monitor.bus import make_bus
    from monitor.feeds.model import FeedConfig
    from monitor.settings import KafkaSettings, PollerSettings, Settings, TopicNames
    from pipelines.poller import build_poller

    state = Path(tempfile.mkdtemp(prefix="bench-poller-"))
    topic = f"bench-articles-{int(time.time())}"
    settings = Settings(
        state_dir=state,
        kafka=KafkaSettings(bootstrap_servers=args.kafka, topics=TopicNames(articles=topic)),
        poller=PollerSettings(workers=args.workers, per_host_concurrency=args.per_host, jitter=0.0),
    )
    bus = make_bus(settings)
    producer = bus.producer()
    feeds = [
        FeedConfig(
            id=f"bench-{f}",
            name=f"Bench {f}",
            interval=timedelta(minutes=15),
            url=f"http://127.0.0.{1 + f % args.hosts}:{port}/feed/{f}",
        )
        for f in range(args.feeds)
    ]
    poller = build_poller(settings, feeds, producer, CollectorRegistry())
    print(
        f"poller benchmark: {args.feeds} feeds on {args.hosts} hosts, {args.items} entries each, "
        f"workers={args.workers}, per-host limit={args.per_host}, bus={bus.name}"
    )
    print(f"{'pass':<10}{'feeds/s':>9}{'wall s':>9}{'CPU s':>8}{'published':>11}  outcomes")
    try:
        for p in range(args.passes):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu0 = usage.ru_utime + usage.ru_stime
            t0 = time.perf_counter()
            summary = poller.poll_all_once()
            wall = time.perf_counter() - t0
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu = usage.ru_utime + usage.ru_stime - cpu0
            label = "1 (cold)" if p == 0 else f"{p + 1} (mixed)"
            outcomes = " ".join(f"{k}={v}" for k, v in sorted(summary.outcomes.items()))
            rate = args.feeds / wall
            print(f"{label:<10}{rate:>9.1f}{wall:>9.2f}{cpu:>8.2f}{summary.published:>11}  {outcomes}")
    finally:
        poller.close()
        producer.close()
        bus.close()
        here.send("stop")
        server.join(timeout=10)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the poller process: {peak_mib:.0f} MiB (python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
