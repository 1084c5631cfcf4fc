"""The APScheduler schedule: one job per feed, rescheduled by each poll's outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from feedserver import FeedServer, rss_feed
from feedtest import PollerRig, feed
from harness.waiting import wait_for

BODY = rss_feed([{"title": "India, US talk", "link": "https://n.example/1"}])


def test_start_polls_every_feed_and_reschedules_from_the_outcome(
    feed_server: FeedServer, make_rig: Callable[..., PollerRig]
) -> None:
    feed_server.add("/ok", BODY)
    feed_server.add("/limited", status=429, headers={"Retry-After": "7200"})
    rig = make_rig([feed(feed_server, "/ok"), feed(feed_server, "/limited")])
    rig.clock.now = datetime.now(UTC)  # the scheduler runs on real time: so does the poller here
    before = datetime.now(UTC)
    rig.poller.start()
    try:
        assert rig.poller.running
        wait_for(
            "a poll of each feed",
            lambda: feed_server.hits("/ok") >= 1 and feed_server.hits("/limited") >= 1,
            timeout=10,
        )
        wait_for(
            "both feeds' state saved",
            lambda: rig.poller.store.load("ok") is not None and rig.poller.store.load("limited") is not None,
            timeout=10,
        )
        wait_for(
            "both feeds rescheduled from their outcomes",
            lambda: all(when > before + timedelta(minutes=10) for when in rig.poller.scheduled().values()),
            timeout=10,
        )
        scheduled = rig.poller.scheduled()
        ok_state, limited_state = rig.poller.store.load("ok"), rig.poller.store.load("limited")
        assert ok_state and limited_state
        assert scheduled["ok"] == ok_state.next_poll_at  # next run = what the outcome decided
        assert scheduled["limited"] == limited_state.next_poll_at
        assert scheduled["limited"] - scheduled["ok"] > timedelta(minutes=90)  # Retry-After: 2h vs 15m
        jobs = {job.id: job for job in rig.poller._scheduler.get_jobs()}
        assert set(jobs) == {"ok", "limited", "prune"}
        for feed_id in ("ok", "limited"):
            job = jobs[feed_id]
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 300)
            assert job.next_run_time == scheduled[feed_id]
        assert len(rig.articles()) == 1
        lag = rig.registry.get_sample_value("monitor_scheduler_lag_seconds_count")
        assert lag == 2
        assert rig.poller.health()[0]
    finally:
        rig.poller.stop()
    assert not rig.poller.running
    assert feed_server.hits("/ok") == 1  # nothing more after stop


def test_a_restart_keeps_the_stored_next_poll_time(
    feed_server: FeedServer, make_rig: Callable[..., PollerRig]
) -> None:
    feed_server.add("/ok", BODY)
    rig = make_rig([feed(feed_server, "/ok")])
    rig.clock.now = datetime.now(UTC)
    rig.poller.poll_feed("ok")
    due = rig.poller.store.load("ok").next_poll_at  # type: ignore[union-attr]
    rig.poller.start()
    try:
        assert rig.poller.scheduled()["ok"] == due  # not polled again right away
        assert feed_server.hits("/ok") == 1
    finally:
        rig.poller.stop()
