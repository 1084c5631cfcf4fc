"""When to poll a feed next: a pure function of the last outcome (after miniflux's ``ScheduleNextCheck``).

* Success (``ok``, ``not_modified``): the feed's interval, stretched (never shortened) by the server's
  ``Cache-Control: max-age`` or the feed's ``<ttl>`` up to ``hint_cap``; never below ``min_interval``.
  The failure count goes back to zero.
* Failure (every other outcome): exponential backoff ``backoff_base * 2**(failures - 1)``, at least the
  normal interval, at most ``backoff_cap``; a ``Retry-After`` (429, 503) pushes it later (up to 24 h).
  A feed that keeps failing is retried at the cap forever, never dropped.
* Jitter: the delay is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``, never landing
  before a ``Retry-After``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.outcomes import SUCCESS_OUTCOMES
from monitor.settings import PollerSettings

RETRY_AFTER_CEILING = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """The knobs of :func:`next_poll` (from :class:`~monitor.settings.PollerSettings`)."""

    min_interval: timedelta = timedelta(minutes=5)
    backoff_base: timedelta = timedelta(minutes=2)
    backoff_cap: timedelta = timedelta(hours=6)
    hint_cap: timedelta = timedelta(hours=1)
    jitter: float = 0.1

    @classmethod
    def from_settings(cls, settings: PollerSettings) -> SchedulePolicy:
        return cls(
            min_interval=settings.min_interval,
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            hint_cap=settings.hint_cap,
            jitter=settings.jitter,
        )


@dataclass(frozen=True, slots=True)
class NextPoll:
    """The decision: when, after how long, why, and the feed's consecutive failures so far."""

    at: datetime
    delay: timedelta
    interval: timedelta
    """The normal interval in force (after max-age/ttl hints), whatever the outcome."""
    failures: int
    reason: str


def normal_interval(
    interval: timedelta,
    policy: SchedulePolicy,
    *,
    max_age: timedelta | None = None,
    ttl: timedelta | None = None,
) -> tuple[timedelta, str]:
    """The interval between successful polls and what set it (``interval``, ``max-age`` or ``ttl``)."""
    base = max(interval, policy.min_interval)
    chosen, reason = base, "interval"
    ceiling = max(policy.hint_cap, base)
    for name, hint in (("max-age", max_age), ("ttl", ttl)):
        if hint is not None and hint > chosen:
            chosen, reason = min(hint, ceiling), name
    return chosen, reason


def backoff(failures: int, interval: timedelta, policy: SchedulePolicy) -> timedelta:
    """The delay after ``failures`` consecutive failures (``failures >= 1``)."""
    exponent = min(max(failures, 1) - 1, 30)
    grown = policy.backoff_base * (1 << exponent)
    return min(max(policy.backoff_cap, interval), max(interval, grown))


def next_poll(
    outcome: str,
    *,
    now: datetime,
    interval: timedelta,
    failures: int,
    policy: SchedulePolicy,
    retry_after: timedelta | None = None,
    max_age: timedelta | None = None,
    ttl: timedelta | None = None,
    rng: random.Random | None = None,
) -> NextPoll:
    """Decide the next poll of a feed after a poll that ended in ``outcome``.

    ``failures`` is the count before this poll; ``interval`` the feed's configured interval.
    """
    rng = rng or random.Random()
    normal, reason = normal_interval(interval, policy, max_age=max_age, ttl=ttl)
    floor = timedelta(0)
    if outcome in SUCCESS_OUTCOMES:
        failures = 0
        delay = normal
    else:
        failures += 1
        delay = backoff(failures, normal, policy)
        reason = f"backoff ({failures} failure{'s' if failures > 1 else ''})"
        if retry_after is not None:
            floor = min(retry_after, RETRY_AFTER_CEILING)
            if floor > delay:
                delay, reason = floor, "retry-after"
    if policy.jitter > 0:
        delay = delay * rng.uniform(1.0 - policy.jitter, 1.0 + policy.jitter)
    delay = max(delay, floor)
    return NextPoll(at=now + delay, delay=delay, interval=normal, failures=failures, reason=reason)
