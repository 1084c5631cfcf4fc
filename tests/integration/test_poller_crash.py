"""Crash safety: kill -9 the poller between publishing a feed's articles and committing its state.

A real child process polls local feeds and publishes to the real broker; a hook blocks it right after the
broker acknowledged one feed's articles and before that feed's state is committed, and the test kills it
with SIGKILL there. After a restart nothing is lost (every article is on the topic) and nothing is
published twice under a different identity: the replayed articles carry the same ``article_id`` (and story),
so a consumer that deduplicates by ``article_id`` sees each article once; a third run publishes nothing.

Run as a script, this file is the child: ``python test_poller_crash.py BOOTSTRAP TOPIC STATE_DIR
[--crash-after FEED --marker FILE] FEED_ID=URL...``.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


def child(argv: Sequence[str]) -> int:
    """The poller process: poll every feed once (one at a time, in the given order), then exit."""
    from prometheus_client import CollectorRegistry

    from monitor.bus.kafka import KafkaBus
    from monitor.events import ArticleFetched
    from monitor.feeds.model import FeedConfig
    from monitor.settings import KafkaSettings, PollerSettings, Settings, TopicNames
    from pipelines.poller import build_poller

    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("feeds", nargs="+")
    parser.add_argument("--crash-after")
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args(argv)
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=args.bootstrap, topics=TopicNames(articles=args.topic)),
        state_dir=args.state_dir,
        poller=PollerSettings(workers=1, jitter=0.0),
    )
    feeds = []
    for spec in args.feeds:
        feed_id, url = spec.split("=", 1)
        feeds.append(FeedConfig(id=feed_id, url=url, name=feed_id))

    def after_publish(feed_id: str, articles: Sequence[ArticleFetched]) -> None:
        if feed_id == args.crash_after and articles:
            args.marker.write_text(",".join(a.article_id for a in articles), encoding="utf-8")
            threading.Event().wait()  # acknowledged, not committed: wait here for SIGKILL

    bus = KafkaBus(settings.kafka)
    producer = bus.producer()
    poller = build_poller(settings, feeds, producer, CollectorRegistry(), after_publish=after_publish)
    summary = poller.poll_all_once()
    print(f"published={summary.published} outcomes={summary.outcomes}", flush=True)
    poller.close()
    producer.close()
    return 0


def test_kill_between_publish_and_commit(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    from feedserver import FeedServer
    from harness.topics import read_topic

    from monitor.bus import topic_specs
    from monitor.bus.kafka import KafkaBus
    from monitor.events import ArticleFetched, decode
    from monitor.settings import KafkaSettings, Settings, TopicNames
    from monitor.store.feeds import FeedStore

    topic = unique_name("articles")
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topics=TopicNames(articles=topic))
    )
    KafkaBus(settings.kafka).create_topics([s for s in topic_specs(settings) if s.name == topic])
    state = tmp_path / "state"
    marker = tmp_path / "published-not-committed"

    def run(*extra: str, feeds: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, __file__, kafka_bootstrap, topic, str(state), *extra, *feeds],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    with FeedServer() as server:
        server.add_file("/a", FIXTURES / "wire-outlet-a.xml", etag='"a1"')
        server.add_file("/b", FIXTURES / "wire-outlet-b.xml", etag='"b1"')
        # b first (published and committed), then a (published, acknowledged... and killed)
        feeds = [f"outlet-b={server.url('/b')}", f"outlet-a={server.url('/a')}"]

        crashing = run("--crash-after", "outlet-a", "--marker", str(marker), feeds=feeds)
        deadline = time.monotonic() + 120
        while not marker.exists():
            if crashing.poll() is not None or time.monotonic() > deadline:
                out = crashing.communicate()[0] if crashing.poll() is not None else ""
                crashing.kill()
                raise AssertionError(f"the child never reached the crash point:\n{out}")
            time.sleep(0.05)
        crashing.send_signal(signal.SIGKILL)
        crashing.communicate(timeout=30)  # reaps it and closes its output pipe
        assert crashing.returncode == -signal.SIGKILL

        a_ids = set(marker.read_text(encoding="utf-8").split(","))
        before = read_topic(kafka_bootstrap, topic)
        store = FeedStore(state / "poller.sqlite3")
        assert store.load("outlet-b") is not None  # b was committed
        assert store.load("outlet-a") is None  # a was not: its articles are on the topic, its state is not
        assert store.seen(a_ids) == set()
        store.close()
        assert a_ids <= {key for key, _ in before}

        restarted = run(feeds=feeds)
        out, _ = restarted.communicate(timeout=120)
        assert restarted.returncode == 0, out
        assert f"published={len(a_ids)} " in out  # a's articles again, b's not
        after = read_topic(kafka_bootstrap, topic, at_least=len(before) + len(a_ids))

        third = run(feeds=feeds)
        out, _ = third.communicate(timeout=120)
        assert third.returncode == 0, out
        assert "published=0 " in out
        assert server.requests("/a")[-1].header("if-none-match") == '"a1"'  # state committed at last

    final = read_topic(kafka_bootstrap, topic)
    assert len(final) == len(after) == len(before) + len(a_ids)
    articles = [decode(ArticleFetched, value) for _, value in final]
    counts = Counter(a.article_id for a in articles)
    # Nothing lost: every relevant entry of both feeds is there.
    assert {aid for aid, n in counts.items() if n == 2} == a_ids
    assert all(n == 1 for aid, n in counts.items() if aid not in a_ids)
    assert len(counts) == len(a_ids) + 3  # outlet-b's three relevant articles
    # Nothing published twice as something else: the replayed copies are the same article, same story.
    for aid in a_ids:
        copies = [a for a in articles if a.article_id == aid]
        identity = {(a.story_id, a.url, a.title, a.summary, a.published_at, a.source) for a in copies}
        assert len(identity) == 1


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
