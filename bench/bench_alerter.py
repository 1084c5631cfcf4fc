"""Benchmark the alert engine: replay a synthetic month of scored articles; prints the figures.

About ``--per-day`` scored articles a day over ``--days`` days (three copies per story on average, one or
two topics each, random stance, 5-120 min between publication and scoring), evaluated with the packaged
default rules over 3 partitions in batches of 100, as a replay of ``news.scored`` would be.

    .venv/bin/python bench/bench_alerter.py                  # 30 days x 300 articles
    .venv/bin/python bench/bench_alerter.py --days 7 --per-day 1000
    .venv/bin/python bench/bench_alerter.py --viewpoints    # feeds split india / us / international

Prints articles/s, evaluation ticks/s (5-minute ticks), alert and signal events, CPU seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import sys
import time
from datetime import UTC, datetime

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from fixtures.scenarios import article, run_engine

from monitor.config import load_config
from monitor.events import TOPICS, AlertFiring, AlertResolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument(
        "--viewpoints",
        action="store_true",
        help="stories from Indian, US and international outlets in equal parts (default: all international)",
    )
    args = parser.parse_args()
    rng = random.Random(1)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    articles = []
    for i in range(args.days * args.per_day):
        minute = i * (1440 / args.per_day)
        spec = {
            "id": f"a{i}",
            "t": f"{int(minute)}m",
            "lag": f"{rng.randint(5, 120)}m",
            "story": f"s{i // 3}",
            "stance": round(rng.uniform(-0.8, 0.8), 2),
            "topics": rng.sample(TOPICS, rng.choice([1, 1, 2])),
        }
        if args.viewpoints:
            spec["viewpoint"] = ("india", "us", "international")[(i // 3) % 3]
        articles.append(article(start, spec, index=i))
    articles.sort(key=lambda a: a.scored_at)
    config = load_config(None)
    cpu0, t0 = time.process_time(), time.perf_counter()
    out = run_engine(articles, config, partitions=3, batch=100)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    alerts = sum(isinstance(o, AlertFiring | AlertResolved) for o in out)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    split = ", viewpoints india/us/international" if args.viewpoints else ""
    print(
        f"settings: {args.days} days x {args.per_day} articles/day, default rules, 3 partitions, "
        f"batch 100{split}"
    )
    print(
        f"{len(articles)} articles: {wall:.1f} s wall, {cpu:.1f} s CPU, "
        f"{len(articles) / wall:.0f} articles/s, "
        f"{args.days * 288 / wall:.0f} ticks/s; {alerts} alert events, {len(out) - alerts} signal updates; "
        f"peak RSS {peak_mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
