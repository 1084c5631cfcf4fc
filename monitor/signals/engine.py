"""Event-time signals with a deterministic clock: what is counted at each tick depends only on the data.

Two times per article, both read from the record (never from the wall clock):

* **event time** ``e`` = ``published_at`` (never later than ``fetched_at``, which guards against feeds that
  date items in the future). Windows are ranges of event time: the 24h window at tick ``t`` holds the
  articles with ``t - 24h < e <= t``.
* **arrival time** ``a`` = ``scored_at`` (else ``fetched_at``): when the article became visible to the
  alerter. Signals and rules are evaluated at **ticks**, the multiples of ``step`` (5 minutes by default)
  on the arrival-time axis; the evaluation at tick ``t`` sees exactly the articles with arrival ``<= t``.

So a replay of ``news.scored`` gives every tick the same set of articles, whatever order the partitions
are read in and however the records are batched, and the alerts that follow are the same.

When is it safe to evaluate tick ``t``? Each partition of the input is in arrival order, give or take
``grace`` (parallel producers): an article's *logical* arrival is ``max(a, frontier - grace)``, where the
frontier is the largest arrival seen before it in the same partition (per-partition, hence independent of
how partitions interleave). Tick ``t`` is evaluated once every partition that still has unread records
has a frontier beyond ``t + grace``: no record still to come can have a logical arrival ``<= t``.
Partitions that are caught up (nothing left to read) do not hold the clock back; when everything is read
the clock follows the most advanced partition. If a record ever arrives for a tick already evaluated (a
producer stalled longer than ``grace`` while the alerter was idle), it counts from the next tick on and is
logged: the one case where live processing and a replay can differ.

Lateness: an article whose ``fetched_at`` is more than ``allowed_lateness`` after its event time is
**dropped** (counted and logged, never mixed in). An accepted article is **late** when, at the tick that
first counts it, a newer article (by event time) had already been counted at an earlier tick: it came out
of event-time order. Late articles update, from their first tick on, every window their event time falls
in (a 7h-old article enters the 24h and 7d windows, not the 6h one).

Time that one record cannot poison: the stage passes each record's **receipt time** (the broker's
timestamp of the record, bounded by the wall clock when it was consumed). The arrival time is never later
than the receipt time, so a record that claims to come from the future cannot move the clock past now; a
record whose ``fetched_at`` lies more than ``future_tolerance`` after its receipt is refused (outcome
``future``, dead-lettered by the stage with the reason) and changes nothing. Both come from the record, so
a replay sees the same.

Idempotence: each ``article_id`` is counted once (the record key is the article id, so redeliveries land
in the same partition and are recognised in order).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from monitor.events import (
    ALL_VIEWPOINTS,
    OVERALL,
    ArticleScored,
    SignalUpdated,
    SignalViewpoint,
)
from monitor.signals import SIGNALS, SPLIT_VIEWPOINTS, SUBJECTS, VIEWPOINT_SIGNALS
from monitor.signals.windows import (
    Article,
    TickView,
    duration_us,
    from_us,
    to_us,
    window_label,
    window_stats,
)

log = logging.getLogger(__name__)

_PRUNE_EVERY_US = 3600 * 1_000_000

Outcome = Literal["accepted", "dropped", "duplicate", "irrelevant", "future"]


@dataclass(frozen=True, slots=True)
class SignalParams:
    """How signals are computed (from ``config.signals`` and the alerter settings)."""

    windows: tuple[timedelta, ...]
    allowed_lateness: timedelta
    span: timedelta
    """How far back in event time any window or rule baseline reaches (articles older are forgotten)."""
    step: timedelta = timedelta(minutes=5)
    grace: timedelta = timedelta(minutes=3)
    topic_threshold: float = 0.5
    min_relevance: float = 0.5
    boundaries: tuple[timedelta, ...] = ()
    """Further window lengths whose edges matter (rule windows, baselines, anomaly buckets)."""
    future_tolerance: timedelta = timedelta(minutes=10)
    """How far a record's ``fetched_at`` may lie after its receipt time (clock skew) before it is refused."""

    def __post_init__(self) -> None:
        if self.step <= timedelta(0) or self.grace < timedelta(0) or self.future_tolerance < timedelta(0):
            raise ValueError("step must be positive, grace and future_tolerance not negative")
        if not self.windows or min(self.windows) <= timedelta(0):
            raise ValueError("at least one positive window")


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one consumed article."""

    outcome: Outcome
    article_id: str
    arrival_us: int
    lateness: timedelta
    bumped: bool = False


SignalKey = str
SignalRecord = tuple[float | None, int, int]


@dataclass(slots=True)
class SignalState:
    """Everything the signal engine remembers (persisted by the alerter's store)."""

    articles: dict[str, Article] = field(default_factory=dict)
    """Accepted, relevant articles still inside some window."""
    seen: dict[str, int] = field(default_factory=dict)
    """article_id -> logical arrival, for every article consumed recently (dedup)."""
    frontiers: dict[str, int] = field(default_factory=dict)
    """Partition -> largest raw arrival time seen in it."""
    last_tick: int | None = None
    history_start: int | None = None
    """The earliest logical arrival ever seen: the monitor knows nothing from before (minus lateness)."""
    published: dict[SignalKey, SignalRecord] = field(default_factory=dict)
    """The last published (value, articles, stories) per signal key."""
    max_event_us: int | None = None
    """The newest event time among the articles counted so far (to tell late articles)."""
    late_accepted: int = 0
    """Late articles counted so far by this process (a counter for metrics; not persisted)."""

    def copy(self) -> SignalState:
        return SignalState(
            dict(self.articles),
            dict(self.seen),
            dict(self.frontiers),
            self.last_tick,
            self.history_start,
            dict(self.published),
            self.max_event_us,
            self.late_accepted,
        )


def signal_key(signal: str, subject: str, window: str, viewpoint: str = ALL_VIEWPOINTS) -> SignalKey:
    """The key of a signal (as :attr:`SignalUpdated.key`): ``/viewpoint`` only for a single viewpoint."""
    base = f"{signal}/{subject}/{window}"
    return base if viewpoint == ALL_VIEWPOINTS else f"{base}/{viewpoint}"


def parse_signal_key(key: SignalKey) -> tuple[str, str, str, str]:
    """``(signal, subject, window, viewpoint)`` of a key from :func:`signal_key`."""
    signal, subject, window, *rest = key.split("/")
    return signal, subject, window, rest[0] if rest else ALL_VIEWPOINTS


class SignalEngine:
    """Ingests scored articles and yields the evaluation ticks the data allows (see module docstring)."""

    def __init__(self, params: SignalParams, state: SignalState | None = None) -> None:
        self.params = params
        self.state = state if state is not None else SignalState()
        self._step = duration_us(params.step)
        self._grace = duration_us(params.grace)
        self._span = duration_us(max(params.span, *params.windows))
        self._lateness = duration_us(params.allowed_lateness)
        self._future_tolerance = duration_us(params.future_tolerance)
        self._retention = self._span + self._lateness
        self._windows = [(window_label(w), duration_us(w)) for w in params.windows]
        self._seen_pruned = 0
        self._lengths = sorted({self._span, *(duration_us(w) for w in (*params.windows, *params.boundaries))})
        # Change detection between consecutive ticks (not state: a fresh engine simply recomputes).
        self._prev_tick: int | None = None
        self._prev_events: list[int] = []
        self._prev_counts: tuple[int, ...] = ()
        # Each published window's fingerprint when its signals were last computed (not state either).
        self._computed: dict[tuple[str, str, int], tuple[int, str]] = {}

    # -- time grid -----------------------------------------------------------------------------------
    def ceil_tick(self, t_us: int) -> int:
        """The first tick at or after ``t_us``."""
        return -(-t_us // self._step) * self._step

    @property
    def step_us(self) -> int:
        return self._step

    @property
    def coverage_start_us(self) -> int | None:
        """Event time from which the monitor can know about articles (history start minus lateness)."""
        start = self.state.history_start
        return None if start is None else start - self._lateness

    # -- input ---------------------------------------------------------------------------------------
    def ingest(
        self,
        event: ArticleScored,
        *,
        partition: str,
        received_us: int | None = None,
        backfill: bool = False,
    ) -> Ingested:
        """Take one consumed article from ``partition`` (any stable name of the input partition).

        ``received_us``: when the record reached the bus (its broker timestamp, bounded by the wall clock
        at consumption); the arrival time never exceeds it. ``None`` (tools and tests that feed the engine
        directly) trusts the record's own times. ``backfill`` (a first start, before any tick): an article
        later than the allowed lateness but inside the longest span is not dropped but folded in at its
        event time, as if it had arrived when it was published (the back catalogue of the feeds).
        """
        st = self.state
        fetched = to_us(event.fetched_at)
        raw = max(fetched, to_us(event.scored_at)) if event.scored_at is not None else fetched
        event_us = min(to_us(event.published_at), fetched)
        lateness = timedelta(microseconds=fetched - event_us)
        if event.article_id in st.seen:
            return Ingested("duplicate", event.article_id, st.seen[event.article_id], lateness)
        if received_us is not None:
            if fetched - received_us > self._future_tolerance:
                return Ingested("future", event.article_id, received_us, lateness)
            raw = min(raw, received_us)
        frontier = st.frontiers.get(partition)
        arrival = raw if frontier is None else max(raw, frontier - self._grace)
        folded = (
            backfill
            and st.last_tick is None
            and fetched - event_us > self._lateness
            and event_us > raw - self._span
        )
        if folded:
            arrival = event_us
        bumped = st.last_tick is not None and arrival <= st.last_tick
        if bumped:
            assert st.last_tick is not None
            log.info(
                "article arrived after its tick was evaluated; counted from the next tick "
                "article_id=%s partition=%s arrival=%s last_tick=%s",
                event.article_id,
                partition,
                from_us(arrival),
                from_us(st.last_tick),
            )
            arrival = st.last_tick + 1
        st.frontiers[partition] = raw if frontier is None else max(frontier, raw)
        st.seen[event.article_id] = arrival
        if st.history_start is None or arrival < st.history_start:
            st.history_start = arrival
        if fetched - event_us > self._lateness and not folded:
            return Ingested("dropped", event.article_id, arrival, lateness, bumped)
        if event.relevance < self.params.min_relevance:
            return Ingested("irrelevant", event.article_id, arrival, lateness, bumped)
        subjects = frozenset(
            [OVERALL, *(t for t, p in event.topics.items() if p >= self.params.topic_threshold)]
        )
        st.articles[event.article_id] = Article(
            article_id=event.article_id,
            story_id=event.story_id,
            arrival_us=arrival,
            event_us=event_us,
            relevance=event.relevance,
            subjects=subjects,
            stance=event.stance.score,
            label=event.stance.label,
            title=event.title,
            url=event.url,
            source=event.source.name,
            evidence=event.evidence[0] if event.evidence else None,
            viewpoint=event.source.viewpoint,
        )
        return Ingested("accepted", event.article_id, arrival, lateness, bumped)

    # -- clock ---------------------------------------------------------------------------------------
    def watermark(self, behind: Collection[str] | None) -> int | None:
        """Ticks strictly before the returned time may be evaluated.

        ``behind``: the partitions that still have unread records (``None`` if unknown: then every partition
        seen so far counts as behind). ``None`` result: nothing may be evaluated yet.
        """
        frontiers = self.state.frontiers
        if not frontiers:
            return None
        if behind is None:
            return min(frontiers.values()) - self._grace
        lagging = list(behind)
        if any(p not in frontiers for p in lagging):
            return None  # a partition with unread records has not delivered anything yet
        if lagging:
            return min(frontiers[p] for p in lagging) - self._grace
        return max(frontiers.values()) - self._grace

    def end_of_input(self, horizon: timedelta) -> int:
        """The watermark that evaluates everything read so far, then ``horizon`` more of quiet time."""
        st = self.state
        latest = max([*st.frontiers.values(), *st.seen.values(), st.last_tick or 0])
        return self.ceil_tick(latest) + duration_us(horizon) + 1

    def ticks(self, until_us: int, *, active: Callable[[], bool]) -> Iterator[TickView]:
        """Yield a view per tick ``t`` with ``last_tick < t < until_us``, in order.

        Stretches where nothing is visible, every published signal is already empty and ``active()`` is
        false (no alert pending or firing) are skipped: they would publish nothing.
        """
        st = self.state
        if st.history_start is None:
            return
        tick = self.ceil_tick(st.history_start) if st.last_tick is None else st.last_tick + self._step
        last_possible = (until_us - 1) // self._step * self._step
        while tick <= last_possible:
            horizon = tick - self._span
            visible = [a for a in st.articles.values() if a.arrival_us <= tick and a.event_us > horizon]
            if not visible and self._quiet() and not active():
                upcoming = [a.arrival_us for a in st.articles.values() if a.arrival_us > tick]
                target = last_possible
                if upcoming:  # the first tick that sees the next article, minus one step
                    target = min(target, self.ceil_tick(min(upcoming)) - self._step)
                tick = max(tick, target)
                self._finish(tick)
                self._prev_tick = None
                tick += self._step
                continue
            fresh = self._count_late(visible)
            yield TickView(tick, visible, same_as_previous=self._unchanged(tick, visible, fresh))
            self._finish(tick)
            tick += self._step

    def _unchanged(self, tick: int, visible: list[Article], fresh: bool) -> bool:
        """Whether every window (of every length that matters) holds what it held at the previous tick.

        Without new arrivals, articles only leave windows as time passes, so the number of articles past
        each window's start edge tells whether any window changed.
        """
        continuous = self._prev_tick is not None and self._prev_tick == self.state.last_tick
        if fresh or not continuous:
            self._prev_events = sorted(a.event_us for a in visible)
        events = self._prev_events
        counts = tuple(len(events) - bisect.bisect_right(events, tick - length) for length in self._lengths)
        same = continuous and not fresh and counts == self._prev_counts
        self._prev_tick, self._prev_counts = tick, counts
        return same

    def _count_late(self, visible: list[Article]) -> bool:
        """Count the late ones among the articles seen for the first time; whether there were any."""
        st = self.state
        previous = st.last_tick
        fresh = [a for a in visible if previous is None or a.arrival_us > previous]
        if not fresh:
            return False
        if st.max_event_us is not None:
            st.late_accepted += sum(1 for a in fresh if a.event_us < st.max_event_us)
        newest = max(a.event_us for a in fresh)
        st.max_event_us = newest if st.max_event_us is None else max(st.max_event_us, newest)
        return True

    def _finish(self, tick: int) -> None:
        st = self.state
        st.last_tick = tick
        horizon = tick - self._span
        stale = [k for k, a in st.articles.items() if a.event_us <= horizon]
        for key in stale:
            del st.articles[key]
        if tick - self._seen_pruned >= _PRUNE_EVERY_US:  # forgetting old ids changes no result
            self._seen_pruned = tick
            old = tick - self._retention
            for key in [k for k, arrival in st.seen.items() if arrival <= old]:
                del st.seen[key]

    def _quiet(self) -> bool:
        return all(record[1] == 0 for record in self.state.published.values())

    # -- output --------------------------------------------------------------------------------------
    def signal_updates(self, view: TickView) -> list[SignalUpdated]:
        """The signals (every subject, every configured window) that changed since last published: over
        every outlet (viewpoint ``all``), then :data:`~monitor.signals.VIEWPOINT_SIGNALS` per viewpoint of
        :data:`~monitor.signals.SPLIT_VIEWPOINTS` (first published when the window has an article)."""
        out = self._updates(view, ALL_VIEWPOINTS, SIGNALS)
        for viewpoint in SPLIT_VIEWPOINTS:
            out.extend(self._updates(view, viewpoint, VIEWPOINT_SIGNALS))
        return out

    def _updates(
        self, view: TickView, viewpoint: SignalViewpoint, signals: tuple[str, ...]
    ) -> list[SignalUpdated]:
        out = []
        published = self.state.published
        split = None if viewpoint == ALL_VIEWPOINTS else viewpoint
        computed = self._computed
        for subject in SUBJECTS:
            for label, length in self._windows:
                where = (viewpoint, subject, length)
                fingerprint = view.fingerprint(subject, length, viewpoint=split)
                if computed.get(where) == fingerprint:
                    continue  # the same articles as when last computed: nothing changed to publish
                computed[where] = fingerprint
                if split is None:  # shared with the rules through the view's cache
                    stats = view.stats(subject, length)
                else:
                    stats = window_stats(view.articles(subject, length, viewpoint=split), count_outlets=False)
                for signal in signals:
                    value = stats.value(signal)
                    record: SignalRecord = (value, stats.volume, stats.stories)
                    key = signal_key(signal, subject, label, viewpoint)
                    previous = published.get(key)
                    if previous == record or (previous is None and split is not None and not stats.volume):
                        continue
                    published[key] = record
                    out.append(
                        SignalUpdated(
                            signal=signal,
                            topic=subject,
                            window=label,
                            value=value,
                            articles=stats.volume,
                            stories=stats.stories,
                            at=view.tick,
                            viewpoint=viewpoint,
                        )
                    )
        return out
