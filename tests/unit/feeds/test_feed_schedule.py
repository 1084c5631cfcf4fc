"""When the next poll happens, after each outcome (pure function, table-driven)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.feeds.schedule import RETRY_AFTER_CEILING, SchedulePolicy, next_poll
from monitor.outcomes import OUTCOMES

NOW = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
M = timedelta(minutes=1)
POLICY = SchedulePolicy(
    min_interval=5 * M,
    backoff_base=2 * M,
    backoff_cap=timedelta(hours=6),
    hint_cap=timedelta(hours=1),
    jitter=0.0,
)


@pytest.mark.parametrize(
    ("outcome", "failures", "kwargs", "delay", "new_failures", "reason"),
    [
        ("ok", 0, {}, 15 * M, 0, "interval"),
        ("not_modified", 3, {}, 15 * M, 0, "interval"),  # success resets the failure count
        ("ok", 0, {"max_age": 30 * M}, 30 * M, 0, "max-age"),  # stretched by Cache-Control
        ("ok", 0, {"max_age": 5 * M}, 15 * M, 0, "interval"),  # never shortened
        ("ok", 0, {"max_age": 10 * 60 * M}, 60 * M, 0, "max-age"),  # capped by hint_cap
        ("ok", 0, {"ttl": 45 * M}, 45 * M, 0, "ttl"),  # the feed's <ttl>
        ("ok", 0, {"ttl": 20 * M, "max_age": 25 * M}, 25 * M, 0, "max-age"),
        ("server_error", 0, {}, 15 * M, 1, "backoff (1 failure)"),  # never faster than the interval
        ("server_error", 3, {}, 16 * M, 4, "backoff (4 failures)"),  # 2m * 2**3
        ("network_error", 5, {}, 64 * M, 6, "backoff (6 failures)"),
        ("parse_error", 8, {}, 6 * 60 * M, 9, "backoff (9 failures)"),  # capped at 6h
        (
            "client_error",
            500,
            {},
            6 * 60 * M,
            501,
            "backoff (501 failures)",
        ),  # and stays there, never dropped
        ("too_large", 0, {}, 15 * M, 1, "backoff (1 failure)"),
        ("rate_limited", 0, {"retry_after": 40 * M}, 40 * M, 1, "retry-after"),
        ("rate_limited", 0, {"retry_after": 2 * M}, 15 * M, 1, "backoff (1 failure)"),
        ("server_error", 0, {"retry_after": 2 * 60 * M}, 120 * M, 1, "retry-after"),  # 503 + Retry-After
        ("rate_limited", 0, {"retry_after": timedelta(days=9)}, RETRY_AFTER_CEILING, 1, "retry-after"),
    ],
)
def test_next_poll(
    outcome: str,
    failures: int,
    kwargs: dict[str, timedelta],
    delay: timedelta,
    new_failures: int,
    reason: str,
) -> None:
    decision = next_poll(outcome, now=NOW, interval=15 * M, failures=failures, policy=POLICY, **kwargs)
    assert decision.delay == delay
    assert decision.at == NOW + delay
    assert decision.failures == new_failures
    assert decision.reason == reason


def test_min_interval_is_a_floor() -> None:
    decision = next_poll("ok", now=NOW, interval=1 * M, failures=0, policy=POLICY)
    assert decision.delay == 5 * M
    assert decision.interval == 5 * M


def test_a_long_interval_is_never_shortened_by_the_backoff_cap() -> None:
    decision = next_poll("server_error", now=NOW, interval=timedelta(hours=12), failures=9, policy=POLICY)
    assert decision.delay == timedelta(hours=12)


def test_jitter_stays_in_bounds_and_never_undercuts_retry_after() -> None:
    policy = SchedulePolicy(
        min_interval=5 * M,
        backoff_base=2 * M,
        backoff_cap=timedelta(hours=6),
        hint_cap=timedelta(hours=1),
        jitter=0.1,
    )
    rng = random.Random(1)
    delays = {
        next_poll("ok", now=NOW, interval=10 * M, failures=0, policy=policy, rng=rng).delay
        for _ in range(200)
    }
    assert min(delays) >= 9 * M and max(delays) <= 11 * M
    assert len(delays) > 100  # actually jittered
    for _ in range(200):
        d = next_poll(
            "rate_limited", now=NOW, interval=5 * M, failures=0, policy=policy, rng=rng, retry_after=30 * M
        )
        assert d.delay >= 30 * M


def test_every_failure_outcome_backs_off() -> None:
    for outcome in OUTCOMES:
        d = next_poll(outcome, now=NOW, interval=15 * M, failures=4, policy=POLICY)
        assert d.failures == (0 if outcome in ("ok", "not_modified") else 5)
