"""Re-scoring history (``monitor rescore``): the pure part. No bus, no threads.

A re-scored article keeps the time it first became visible downstream as ``scored_at``, so that an
alerter replaying the re-scored topic counts it at the same tick as the live alerter did (the signals'
arrival time is ``scored_at``, see :mod:`monitor.signals.engine`); ``rescored_at`` says when the new
judgement was made. That time is, in order of preference: the ``scored_at`` of the article's first record
on the live scored topic (:func:`first_scored_at`), the broker time of its record on the articles topic,
its ``fetched_at``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from monitor.bus.base import Record
from monitor.classify.base import Classifier
from monitor.classify.scoring import Unscorable, score_articles
from monitor.durations import parse_duration
from monitor.errors import DecodeError
from monitor.events import ArticleFetched, ArticleScored, decode


def first_scored_at(records: Iterable[Record]) -> dict[str, datetime]:
    """``article_id`` -> ``scored_at`` of its first record among ``records`` (a scored topic, in order).

    Records that do not decode, or carry no ``scored_at``, are passed over: the first usable one counts,
    as the alerter counts the first record of each article.
    """
    times: dict[str, datetime] = {}
    for record in records:
        try:
            event = decode(ArticleScored, record.value)
        except DecodeError:
            continue
        if event.article_id not in times and event.scored_at is not None:
            times[event.article_id] = event.scored_at
    return times


def arrival_time(article: ArticleFetched, record: Record, known: dict[str, datetime]) -> datetime:
    """When ``article`` first became visible downstream (see the module docstring); never before it was
    fetched."""
    seen = known.get(article.article_id)
    if seen is not None:
        return seen
    if record.timestamp_ms is not None:
        return max(article.fetched_at, datetime.fromtimestamp(record.timestamp_ms / 1000, UTC))
    return article.fetched_at


_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)")


def parse_since(text: str, *, now: datetime) -> datetime:
    """``--since``: an RFC 3339 time (``2026-11-01T00:00:00Z``), a date (midnight UTC), or a duration
    before ``now`` (``30d``, ``12h``). Raises :class:`ValueError` naming what is expected."""
    value = text.strip()
    if _DURATION.match(value):
        return now - parse_duration(value)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"a time (2026-11-01T00:00:00Z), a date (2026-11-01) or a duration (30d), got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"a time with its UTC offset (2026-11-01T00:00:00Z), got {text!r}")
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An article left out of the re-scoring (published before ``--since``)."""

    article: ArticleFetched


def rescore_articles(
    classifier: Classifier,
    articles: Sequence[tuple[ArticleFetched, datetime]],
    *,
    now: datetime,
    since: datetime | None = None,
) -> list[ArticleScored | Unscorable | Skipped]:
    """Score ``(article, arrival time)`` pairs in one batch, in order: each scored article has
    ``scored_at`` = its arrival time and ``rescored_at`` = ``now``; articles published before ``since``
    come back as :class:`Skipped`, articles with no text as :class:`Unscorable`."""
    wanted = [(a, t) for a, t in articles if since is None or a.published_at >= since]
    results = iter(score_articles(classifier, [a for a, _ in wanted], now=now))
    arrivals = {id(a): t for a, t in wanted}
    out: list[ArticleScored | Unscorable | Skipped] = []
    for article, _ in articles:
        if id(article) not in arrivals:
            out.append(Skipped(article))
            continue
        result = next(results)
        if isinstance(result, ArticleScored):
            result = result.model_copy(update={"scored_at": arrivals[id(article)], "rescored_at": now})
        out.append(result)
    return out


def describe_progress(done: int, total: int, *, elapsed: timedelta) -> str:
    """One progress line for stderr: ``1200/5000 records (24%), 41.3/s``."""
    rate = done / elapsed.total_seconds() if elapsed.total_seconds() > 0 else 0.0
    share = f" ({100 * done // total}%)" if total else ""
    return f"{done}/{total} records{share}, {rate:.1f}/s"
