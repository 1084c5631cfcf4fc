"""Benchmark the fast path: feed item to alert on ``news.alerts``, after the poll, on a real Kafka broker.

The stages run as ``monitor scorer`` and ``monitor alerter`` processes (the real model, the compose
layout) against the test broker (Apache Kafka from the harness, or ``--bootstrap HOST:PORT``); this process
is the poller (``Poller.poll_feed``, publishing to Kafka) and a consumer of the alert topic. Two local feeds,
two outlets, carry strained trade stories written for this benchmark, one new story per trial,
alternating between the feeds. The rules are burst rules ``burst_k`` (k distinct stories from 2 outlets,
stance below -0.3, within 6h): story k completes ``burst_k``, so every trial fires exactly one new alert.
Trial 2 (the first alert) warms the pipeline up and is not counted.

Latency = the alert record's broker timestamp minus the moment ``poll_feed`` returned (the story was
acknowledged on ``news.articles``). The stages' micro-batch waits (``scorer.max_wait``,
``alerter.max_wait``) are most of it; each ``--waits SCORER,ALERTER`` is a run of its own (fresh topics,
stage processes and state).

    .venv/bin/python bench/bench_alert_latency.py                 # 20 trials; waits 1s,500ms and 200ms,100ms
    .venv/bin/python bench/bench_alert_latency.py --trials 10 --waits 1s,500ms

Prints the machine and the settings, then p50, p95 and max latency per setting.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import yaml
from feedserver import FeedServer, rss_feed
from harness.kafka import KafkaBroker, resolve
from harness.waiting import free_port, wait_for
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from monitor.bus import make_bus
from monitor.config import parse_config
from monitor.events import decode_alert
from monitor.settings import KafkaSettings, Settings, TopicNames
from pipelines.poller import build_poller

# Strained India-US trade stories, written for this benchmark (headline, lead).
STORIES = [
    (
        "US doubles tariffs on Indian goods to 50%, New Delhi calls move unjustified",
        "Washington added a 25% penalty duty over Russian oil purchases; Indian exporters "
        "warn of lost orders.",
    ),
    (
        "India retaliates against US steel duties with levies on almonds and apples",
        "The commerce ministry notified counter-tariffs after talks in Washington failed to produce relief.",
    ),
    (
        "Trade talks between India and the US collapse over farm market access",
        "Negotiators left without a date for the next round as disagreements on dairy and "
        "genetically modified crops deepened.",
    ),
    (
        "Indian shrimp exporters in Tiruchi halt shipments as American duties bite",
        "Processors said US buyers cancelled contracts after the new tariff took effect, "
        "leaving cold stores full.",
    ),
    (
        "Washington threatens fresh sanctions-linked tariffs on India",
        "A senior US official said more penalties were possible if New Delhi kept buying discounted crude.",
    ),
    (
        "Indian textile hubs brace for layoffs after US tariff hike",
        "Garment makers in the south said American orders had dried up within a week of the duty increase.",
    ),
    (
        "USTR files complaint against Indian import curbs at the WTO",
        "The United States says New Delhi's restrictions on electronics imports break its trade commitments.",
    ),
    (
        "India suspends tariff concessions for American motorcycles and whisky",
        "The government said the step answered Washington's decision to end duty-free access "
        "for Indian products.",
    ),
    (
        "Gems and jewellery exporters say US duties threaten 300,000 jobs in India",
        "Industry leaders urged New Delhi to seek an exemption as buyers in New York shifted "
        "orders to rivals.",
    ),
    (
        "Trump calls India a tariff king and vows reciprocal duties",
        "The US president said American firms faced unfair barriers and promised matching "
        "levies on Indian goods.",
    ),
    (
        "India and US trade barbs as tariff dispute escalates",
        "Commerce officials in both capitals accused each other of bad faith after the latest "
        "round of duties.",
    ),
    (
        "American solar panel tariffs wipe out Indian module makers' US orders",
        "Manufacturers in Gujarat said anti-dumping duties made their panels uncompetitive in "
        "the American market.",
    ),
    (
        "Pharma exporters fear US tariff on Indian generic medicines",
        "Drug makers warned that levies would raise prices for American patients and hurt Indian factories.",
    ),
    (
        "India's exports to the US plunge after punitive duties",
        "Official data showed shipments to America fell by a third in a month as the new levies took hold.",
    ),
    (
        "US lawmakers push bill to penalise India over Russian energy trade",
        "The proposed measure would impose steep tariffs on countries that buy Russian oil, "
        "with India a main target.",
    ),
    (
        "New Delhi rejects US demand to cut duties on dairy imports",
        "The agriculture minister said farmers' livelihoods were not negotiable in the trade "
        "talks with Washington.",
    ),
    (
        "Indian rupee slides as US tariff threat rattles markets",
        "Stocks of exporters fell sharply after Washington signalled further duties on Indian goods.",
    ),
    (
        "US customs holds Indian steel cargo in tariff row",
        "Shipments worth millions were stuck at American ports while officials reviewed their "
        "origin under the new duties.",
    ),
    (
        "Indian IT firms warn of fallout from US digital services tax dispute",
        "Washington's threatened retaliation against India's equalisation levy has unsettled "
        "technology exporters.",
    ),
    (
        "India files WTO challenge to American aluminium duties",
        "New Delhi says the US security tariffs on metals break global trade rules and hurt "
        "Indian producers.",
    ),
    (
        "Seafood exporters seek relief as US anti-dumping duty on Indian shrimp rises",
        "The higher margin announced by the Commerce Department makes Indian shrimp costlier than Ecuador's.",
    ),
    (
        "US and India fail to agree on tariff truce before deadline",
        "The two sides could not bridge gaps on market access, so higher duties on Indian goods take effect.",
    ),
]
FEEDS = [("delhi-desk", "Delhi Desk"), ("capitol-wire", "Capitol Wire")]
ALERT_TIMEOUT = 60.0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


class AlertWatcher:
    """Reads the alert topic from the start; remembers each rule's first firing event's broker time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.first: dict[str, float] = {}
        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=20
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    event = decode_alert(record.value)
                    if event.state == "firing":
                        self.first.setdefault(event.rule, record.timestamp / 1000)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def run_setting(bootstrap: str, work: Path, trials: int, waits: str) -> list[float]:
    """One run: fresh topics, stage processes and state; returns the counted latencies in seconds."""
    scorer_wait, alerter_wait = waits.split(",")
    run_id = uuid.uuid4().hex[:8]
    names = {
        kind: f"bench-{run_id}.{kind}" for kind in ("articles", "scored", "signals", "alerts", "deadletter")
    }
    count = trials + 2
    rules = [
        {
            "name": f"burst_{k}",
            "severity": "critical",
            "subject": "trade_tariffs",
            "signal": "stories",
            "window": "6h",
            "burst": {"stories": k, "outlets": 2, "stance_below": -0.3},
        }
        for k in range(2, count + 1)
    ]
    home = work / run_id
    home.mkdir()
    with FeedServer() as server:
        items: dict[str, list[dict[str, str]]] = {feed_id: [] for feed_id, _ in FEEDS}
        for feed_id, name in FEEDS:
            server.add(f"/{feed_id}.xml", rss_feed([], title=name), etag='"v0"')
        feeds = [
            {"id": feed_id, "name": name, "url": server.url(f"/{feed_id}.xml"), "interval": "1m"}
            for feed_id, name in FEEDS
        ]
        config_path = home / "monitor.yaml"
        config_path.write_text(yaml.safe_dump({"feeds": feeds, "rules": rules}, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "MONITOR_CONFIG": str(config_path),
                "MONITOR_LOG_FORMAT": "text",
                "MONITOR_METRICS__HOST": "127.0.0.1",
                "MONITOR_KAFKA__PARTITIONS": "1",
                "MONITOR_SCORER__MAX_WAIT": scorer_wait,
                "MONITOR_ALERTER__MAX_WAIT": alerter_wait,
                "MONITOR_ALERTER__BACKFILL": "false",
                "HF_HUB_OFFLINE": "1",
                **{f"MONITOR_KAFKA__TOPICS__{kind.upper()}": topic for kind, topic in names.items()},
            }
        )
        monitor = str(Path(sys.executable).with_name("monitor"))
        created = subprocess.run(
            [monitor, "topics", "create"],
            env={**env, "MONITOR_METRICS__PORT": "0"},
            capture_output=True,
            check=False,
        )
        if created.returncode:
            raise SystemExit(created.stderr.decode())
        procs: list[subprocess.Popen[bytes]] = []
        ports = {}
        for stage in ("scorer", "alerter"):
            ports[stage] = free_port()
            (home / stage).mkdir()
            stage_env = {
                **env,
                "MONITOR_STATE_DIR": str(home / stage),
                "MONITOR_METRICS__PORT": str(ports[stage]),
            }
            with (home / f"{stage}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen([monitor, stage], env=stage_env, stdout=log, stderr=subprocess.STDOUT)
                )
        settings = Settings(
            kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=1, topics=TopicNames(**names)),
            state_dir=home / "poller",
        )
        bus = make_bus(settings)
        producer = bus.producer()
        watcher = AlertWatcher(bootstrap, names["alerts"])
        config = parse_config({"feeds": feeds, "rules": rules}, source=str(config_path))
        poller = build_poller(settings, config.feeds, producer, CollectorRegistry())
        latencies: list[float] = []
        try:
            wait_for(
                "the scorer and the alerter to be healthy",
                lambda: all(map(healthy, ports.values())),
                timeout=180,
                process=procs[0],
            )
            for k in range(1, count + 1):
                feed_id = FEEDS[(k - 1) % 2][0]
                title, lead = STORIES[k - 1]
                now = datetime.now(UTC)
                items[feed_id].insert(
                    0,
                    {
                        "title": title,
                        "link": f"https://{feed_id}.example/news/{run_id}/{k}",
                        "guid": f"https://{feed_id}.example/news/{run_id}/{k}",
                        "description": lead,
                        "pub_date": format_datetime(now, usegmt=True),
                    },
                )
                server.add(f"/{feed_id}.xml", rss_feed(items[feed_id], title=feed_id), etag=f'"v{k}"')
                result = poller.poll_feed(feed_id)
                polled = time.time()
                if result.published != 1:
                    raise SystemExit(f"story {k}: the poll published {result.published} articles, not 1")
                if k == 1:
                    continue
                rule = f"burst_{k}"
                wait_for(
                    f"the alert of {rule}", lambda rule=rule: rule in watcher.first, timeout=ALERT_TIMEOUT
                )
                latency = watcher.first[rule] - polled
                if k > 2:
                    latencies.append(latency)
                ms = latency * 1000
                print(f"  story {k:2d} ({feed_id}): {rule} on the alert topic {ms:6.0f} ms after the poll")
        finally:
            poller.close()
            watcher.close()
            producer.close()
            bus.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="counted alerts per setting (at most 20)")
    parser.add_argument(
        "--waits",
        action="append",
        help="SCORER,ALERTER micro-batch waits, repeatable (default: 1s,500ms, the defaults; 200ms,100ms)",
    )
    parser.add_argument("--bootstrap", help="an existing broker instead of the harness's")
    args = parser.parse_args()
    if not 1 <= args.trials <= len(STORIES) - 2:
        parser.error(f"--trials between 1 and {len(STORIES) - 2}")
    settings = args.waits or ["1s,500ms", "200ms,100ms"]
    if any(len(w.split(",")) != 2 for w in settings):
        parser.error("--waits SCORER,ALERTER, e.g. 1s,500ms")
    print(f"machine: {machine()}")
    print(
        "settings: 1 partition, 2 feeds (outlets), burst rules (k stories from 2 outlets, stance < -0.3, "
        "6h), "
        "default step 5m and grace 3m (the fast path waits for neither); "
        f"{args.trials} counted alerts per setting"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    broker = None
    try:
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = KafkaBroker(libs_dir=resolve()).start()
            bootstrap = broker.bootstrap
        results = {}
        for wait in settings:
            print(f"scorer.max_wait,alerter.max_wait={wait}:")
            results[wait] = run_setting(bootstrap, work, args.trials, wait)
        print()
        print("| scorer.max_wait, alerter.max_wait | alerts | p50 ms | p95 ms | max ms |")
        print("|---|---|---|---|---|")
        for wait, measured in results.items():
            values = sorted(measured)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            print(
                f"| {wait} | {len(values)} | {statistics.median(values) * 1000:.0f} | {p95 * 1000:.0f} | "
                f"{values[-1] * 1000:.0f} |"
            )
    finally:
        if broker is not None:
            broker.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
