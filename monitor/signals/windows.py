"""Signals over one event-time window: pure functions over plain records.

For a subject (a topic label or ``overall``) and a window ``(end - length, end]`` of event time:

``volume``
    the number of articles (syndicated copies included);
``stories``
    the number of distinct stories (``story_id``, the poller's near-duplicate clusters);
``stance_index``
    the relevance-weighted mean stance of the stories, each story counted once: a story is represented by
    its most relevant copy (ties: the earliest, then the smallest ``article_id``), weighted by that copy's
    relevance; ``None`` without stories;
``strained_share``
    the share of stories whose representative is labelled ``strain``; ``None`` without stories.

Sums use :func:`math.fsum` (exactly rounded, hence independent of the order of the articles) and values are
rounded to 6 decimals, so the same set of articles always gives the same numbers, whatever order they
arrived in.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.events import DEFAULT_VIEWPOINT, OVERALL

US_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch (exact integer arithmetic for event time)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(value: int) -> datetime:
    """The UTC datetime of ``value`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def window_label(value: timedelta) -> str:
    """How a window is named in signals, metrics and alerts: ``6h``, ``24h``, ``7d``, ``90m``."""
    seconds = int(value.total_seconds())
    if seconds >= 2 * 86_400 and seconds % 86_400 == 0:
        return f"{seconds // 86_400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"


def duration_us(value: timedelta) -> int:
    """A timedelta in whole microseconds."""
    return (value.days * 86_400 + value.seconds) * US_PER_SECOND + value.microseconds


@dataclass(frozen=True, slots=True)
class Article:
    """What the signals keep of one accepted scored article."""

    article_id: str
    story_id: str
    arrival_us: int
    """Logical arrival time (see :mod:`monitor.signals.engine`): the first tick at or after it sees it."""
    event_us: int
    """Event time: ``published_at``, never later than ``fetched_at``."""
    relevance: float
    subjects: frozenset[str]
    """``overall`` plus the topic labels whose probability reached the topic threshold."""
    stance: float
    label: str
    title: str
    url: str
    source: str
    evidence: str | None
    viewpoint: str = DEFAULT_VIEWPOINT
    """The viewpoint of the feed it came from (``india``, ``us`` or ``international``)."""


def _better(a: Article, b: Article) -> bool:
    """Whether ``a`` represents a story rather than ``b``: more relevant, then earlier, then smaller id."""
    if a.relevance != b.relevance:
        return a.relevance > b.relevance
    if a.event_us != b.event_us:
        return a.event_us < b.event_us
    return a.article_id < b.article_id


def representatives(articles: Iterable[Article]) -> list[Article]:
    """One article per story (the most relevant copy), sorted by ``story_id``."""
    best: dict[str, Article] = {}
    for article in articles:
        current = best.get(article.story_id)
        if current is None or _better(article, current):
            best[article.story_id] = article
    return [best[s] for s in sorted(best)]


@dataclass(frozen=True, slots=True)
class WindowStats:
    """The signals of one subject over one window."""

    volume: int
    stories: int
    stance_index: float | None
    strained_share: float | None
    stance_std: float | None
    """Relevance-weighted standard deviation of the stories' stance (for z-scores)."""
    representatives: tuple[Article, ...] = field(repr=False)
    outlets: dict[str, int] = field(default_factory=dict, repr=False)
    """Per story (``story_id``): how many outlets (distinct ``source`` names) carried it in the window."""

    def value(self, signal: str) -> float | None:
        """The value of ``signal`` (``stance_index``, ``volume``, ``stories`` or ``strained_share``)."""
        if signal == "stance_index":
            return self.stance_index
        if signal == "strained_share":
            return self.strained_share
        if signal == "volume":
            return float(self.volume)
        if signal == "stories":
            return float(self.stories)
        raise ValueError(f"unknown signal {signal!r}")


def window_stats(articles: Sequence[Article], *, count_outlets: bool = True) -> WindowStats:
    """The signals of ``articles`` (already filtered to one subject and window); ``count_outlets=False``
    leaves :attr:`WindowStats.outlets` empty (only alert evidence reads it)."""
    reps = representatives(articles)
    if not reps:
        return WindowStats(len(articles), 0, None, None, None, ())
    weights = [a.relevance for a in reps]
    stances = [a.stance for a in reps]
    total = math.fsum(weights)
    if total <= 0:  # every representative has relevance 0: fall back to the plain mean
        weights, total = [1.0] * len(reps), float(len(reps))
    mean = math.fsum([w * s for w, s in zip(weights, stances, strict=True)]) / total
    variance = math.fsum([w * (s - mean) ** 2 for w, s in zip(weights, stances, strict=True)]) / total
    strained = sum(1 for a in reps if a.label == "strain")
    return WindowStats(
        volume=len(articles),
        stories=len(reps),
        stance_index=round(mean, 6),
        strained_share=round(strained / len(reps), 6),
        stance_std=round(math.sqrt(max(variance, 0.0)), 6),
        representatives=tuple(reps),
        outlets=outlets(articles) if count_outlets else {},
    )


def outlets(articles: Iterable[Article]) -> dict[str, int]:
    """Per ``story_id``: the number of distinct outlets (``source``) among ``articles`` that carried it."""
    seen: dict[str, set[str]] = {}
    for article in articles:
        seen.setdefault(article.story_id, set()).add(article.source)
    return {story: len(sources) for story, sources in seen.items()}


class TickView:
    """The articles visible at one evaluation tick, with cached window statistics.

    ``articles`` must be the articles with ``arrival_us <= tick_us``; those whose event time is not in
    ``(tick_us - span, tick_us]`` are ignored.
    """

    def __init__(self, tick_us: int, articles: Iterable[Article], *, same_as_previous: bool = False) -> None:
        self.tick_us = tick_us
        self.same_as_previous = same_as_previous
        """True when every window holds exactly what it held at the previous tick (nothing to recompute)."""
        self._articles = articles
        self._subjects: dict[str, list[Article]] | None = None
        self._event_keys: dict[str, list[int]] = {}
        self._split: dict[str, dict[str, list[Article]]] | None = None
        self._split_keys: dict[tuple[str, str], list[int]] = {}
        self._cache: dict[tuple[str, int, int, str | None], WindowStats] = {}

    @property
    def _by_subject(self) -> dict[str, list[Article]]:
        if self._subjects is None:
            by_subject: dict[str, list[Article]] = {}
            for article in self._articles:
                if article.event_us > self.tick_us:
                    continue
                for subject in article.subjects:
                    by_subject.setdefault(subject, []).append(article)
            for items in by_subject.values():
                items.sort(key=lambda a: (a.event_us, a.article_id))
            self._subjects = by_subject
            self._event_keys = {s: [a.event_us for a in items] for s, items in by_subject.items()}
        return self._subjects

    @property
    def _by_viewpoint(self) -> dict[str, dict[str, list[Article]]]:
        """viewpoint -> subject -> articles (in the order of :attr:`_by_subject`), built when first asked."""
        if self._split is None:
            split: dict[str, dict[str, list[Article]]] = {}
            for subject, items in self._by_subject.items():
                for article in items:
                    split.setdefault(article.viewpoint, {}).setdefault(subject, []).append(article)
            self._split = split
            self._split_keys = {
                (v, s): [a.event_us for a in items] for v, by in split.items() for s, items in by.items()
            }
        return self._split

    def viewpoints(self) -> frozenset[str]:
        """The viewpoints of the articles visible at this tick."""
        return frozenset(self._by_viewpoint)

    @property
    def tick(self) -> datetime:
        return from_us(self.tick_us)

    @property
    def empty(self) -> bool:
        return not self._by_subject.get(OVERALL)

    def articles(
        self, subject: str, length_us: int, *, end_us: int | None = None, viewpoint: str | None = None
    ) -> list[Article]:
        """The subject's articles with event time in ``(end - length, end]`` (end: the tick); only those
        of one ``viewpoint`` if given."""
        end = self.tick_us if end_us is None else end_us
        if viewpoint is None:
            items = self._by_subject.get(subject)
            keys = self._event_keys.get(subject, [])
        else:
            items = self._by_viewpoint.get(viewpoint, {}).get(subject)
            keys = self._split_keys.get((viewpoint, subject), [])
        if not items:
            return []
        return items[bisect.bisect_right(keys, end - length_us) : bisect.bisect_right(keys, end)]

    def fingerprint(self, subject: str, length_us: int, *, viewpoint: str | None = None) -> tuple[int, str]:
        """What tells the window ``(tick - length, tick]`` of ``subject`` from its content at another tick
        of the same engine: its size and its oldest article.

        Between two ticks a window only gains new arrivals (an article is visible from its arrival on, and
        its event time is never later than that) and loses its oldest articles off the start edge; each
        article id enters once. Losing any article changes the oldest one (the lost ones are the oldest,
        and none comes back), and gaining without losing changes the size, so an equal fingerprint means
        the same articles, hence the same signals.
        """
        items = self.articles(subject, length_us, viewpoint=viewpoint)
        return len(items), items[0].article_id if items else ""

    def stats(
        self, subject: str, length_us: int, *, end_us: int | None = None, viewpoint: str | None = None
    ) -> WindowStats:
        """The signals of ``subject`` over ``(end - length, end]`` (one ``viewpoint``'s outlets if given)."""
        end = self.tick_us if end_us is None else end_us
        key = (subject, length_us, end, viewpoint)
        cached = self._cache.get(key)
        if cached is None:
            chosen = self.articles(subject, length_us, end_us=end, viewpoint=viewpoint)
            cached = self._cache[key] = window_stats(chosen)
        return cached

    def bucket_counts(self, subject: str, length_us: int, buckets: int, signal: str) -> list[int]:
        """``stories`` or ``volume`` in each of ``buckets`` windows of ``length_us`` before the current one.

        Bucket ``i`` (1-based) covers ``(tick - (i + 1) * length, tick - i * length]``.
        """
        counts = []
        for i in range(1, buckets + 1):
            stats = self.stats(subject, length_us, end_us=self.tick_us - i * length_us)
            counts.append(stats.stories if signal == "stories" else stats.volume)
        return counts
