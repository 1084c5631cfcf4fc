"""The poller: fetch -> parse -> dedup -> relevance gate -> story clustering -> publish -> commit state.

One poll of one feed (:meth:`Poller.poll_feed`):

1. load the feed's state (ETag, Last-Modified, failures) from its store
   (:class:`~monitor.feeds.state.FeedStateStore`);
2. fetch conditionally; a 200 is parsed (unless its bytes are those of the last parsed body);
3. each entry is new, a duplicate (seen before, or being published right now by another feed's poll) or
   irrelevant (the India-US gate); new ones get their ``story_id`` and become ``ArticleFetched``;
4. the new articles are published (key ``article_id``) and the call returns only once the bus acked them;
5. then, in one transaction of the store, the feed's new state, the seen ids and the story members are stored.

A crash between 4 and 5 makes the next poll publish the same articles again (same ``article_id``, so
consumers deduplicate); a crash before 4 publishes nothing; nothing is ever lost. If publishing fails,
nothing is stored and the feed is retried after a backoff.

:meth:`Poller.poll_all_once` polls every feed now (``monitor run --once``); :meth:`Poller.start` runs an
APScheduler ``BackgroundScheduler`` with one job per feed (``max_instances=1``, coalescing, a misfire grace
time) whose next run is set by each poll's outcome (:mod:`monitor.feeds.schedule`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.bus.base import Message, Producer
from monitor.bus.stage import Checkpoint
from monitor.errors import BusError, FetchError, StoreError
from monitor.events import ArticleFetched, Source
from monitor.feeds.cluster import StoryIndex, StoryMember
from monitor.feeds.fetch import Fetcher, FetchResult
from monitor.feeds.model import FeedConfig
from monitor.feeds.parse import FeedEntry, ParsedFeed, parse_feed, to_article
from monitor.feeds.relevance import gate
from monitor.feeds.schedule import NextPoll, SchedulePolicy, next_poll
from monitor.feeds.state import FeedState, FeedStateStore
from monitor.metrics import PollerMetrics, StageMetrics
from monitor.outcomes import SUCCESS_OUTCOMES, Outcome
from monitor.settings import PollerSettings
from monitor.urls import redact_text

log = logging.getLogger(__name__)

STAGE = "poller"

Clock = Callable[[], datetime]
AfterPublish = Callable[[str, Sequence[ArticleFetched]], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedPollResult:
    """What one poll of one feed did."""

    feed_id: str
    outcome: Outcome
    status: int | None
    next_poll_at: datetime
    new: int = 0
    duplicate: int = 0
    irrelevant: int = 0
    published: int = 0
    failures: int = 0
    error: str | None = None
    bytes_read: int = 0
    elapsed: float = 0.0
    published_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PollSummary:
    """The results of :meth:`Poller.poll_all_once`, one per feed."""

    results: tuple[FeedPollResult, ...] = ()
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def feeds(self) -> int:
        return len(self.results)

    @property
    def published(self) -> int:
        return sum(r.published for r in self.results)

    @property
    def new(self) -> int:
        return sum(r.new for r in self.results)

    @property
    def duplicate(self) -> int:
        return sum(r.duplicate for r in self.results)

    @property
    def irrelevant(self) -> int:
        return sum(r.irrelevant for r in self.results)

    @property
    def failed(self) -> tuple[FeedPollResult, ...]:
        return tuple(r for r in self.results if r.outcome not in SUCCESS_OUTCOMES or r.error)

    def __str__(self) -> str:
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "none"
        return (
            f"{self.feeds} feeds ({outcomes}): {self.new} new, {self.duplicate} duplicate, "
            f"{self.irrelevant} irrelevant, {self.published} published"
        )


class Poller:
    """Polls a set of feeds and publishes their new articles to ``topic``.

    Thread-safe: polls of different feeds run in parallel (bounded by the fetcher's per-host limit);
    polls of the same feed are serialised.
    """

    def __init__(
        self,
        *,
        feeds: Sequence[FeedConfig],
        fetcher: Fetcher,
        producer: Producer,
        store: FeedStateStore,
        topic: str,
        settings: PollerSettings,
        metrics: PollerMetrics | None = None,
        stage_metrics: StageMetrics | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        after_publish: AfterPublish | None = None,
    ) -> None:
        ids = [f.id for f in feeds]
        if len(set(ids)) != len(ids):
            raise ValueError(f"feed ids must be unique: {sorted({i for i in ids if ids.count(i) > 1})}")
        self._feeds = {f.id: f for f in feeds}
        self._fetcher = fetcher
        self._checkpoint = Checkpoint(producer)
        self._store = store
        self._topic = topic
        self._settings = settings
        self._policy = SchedulePolicy.from_settings(settings)
        self._metrics = metrics
        self._stage = stage_metrics
        self._clock = clock or _utcnow
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._after_publish = after_publish
        self._feed_locks = {f.id: threading.Lock() for f in feeds}
        self._inflight: dict[str, str] = {}
        self._inflight_lock = threading.Lock()
        self._last_class: dict[str, str] = {}
        self._due: dict[str, datetime] = {}
        self._scheduler: Any = None
        self._stopping = threading.Event()
        now = self._clock()
        self._stories = StoryIndex(window=settings.story_window)
        for member in store.recent_stories(now - settings.story_window):
            self._stories.add(member)
        self._known: dict[str, FeedState] = store.load_all()
        self._started_at = now
        if metrics is not None:
            for feed in feeds:
                metrics.add_feed(feed.id, staleness_since=self._staleness_since(feed.id))
                state = self._known.get(feed.id)
                if state is not None:
                    self._export_state(state, None)

    # -- properties ------------------------------------------------------------------------------------
    @property
    def feeds(self) -> tuple[FeedConfig, ...]:
        return tuple(self._feeds.values())

    @property
    def store(self) -> FeedStateStore:
        return self._store

    def scheduled(self) -> dict[str, datetime]:
        """When each feed's next scheduled poll is due (while the scheduler runs)."""
        return dict(self._due)

    def _staleness_since(self, feed_id: str) -> Callable[[], float | None]:
        def since() -> float | None:
            state = self._known.get(feed_id)
            if state is None:
                return self._started_at.timestamp()
            return (state.last_new_entry_at or state.created_at).timestamp()

        return since

    # -- one feed --------------------------------------------------------------------------------------
    def poll_feed(self, feed_id: str) -> FeedPollResult:
        """Poll one feed now: fetch, parse, publish new articles, commit the feed's state."""
        feed = self._feeds[feed_id]
        with self._feed_locks[feed_id]:
            return self._poll(feed)

    def _jittered_next(self, outcome: str, **kwargs: Any) -> NextPoll:
        with self._rng_lock:
            return next_poll(outcome, policy=self._policy, rng=self._rng, **kwargs)

    def _poll(self, feed: FeedConfig) -> FeedPollResult:
        now = self._clock()
        stored = self._store.load(feed.id)
        # The state file keeps the redacted URL: credentials live in the config only.
        shown = feed.shown_url
        state = stored.for_url(shown) if stored else FeedState(feed_id=feed.id, url=shown, created_at=now)
        fetched = self._fetcher.fetch(feed.url, etag=state.etag, last_modified=state.last_modified)
        outcome: Outcome = fetched.outcome
        error = fetched.error
        parsed: ParsedFeed | None = None
        body_hash = state.body_hash
        if outcome == "ok":
            digest = hashlib.sha256(fetched.body).hexdigest()
            if digest != state.body_hash:
                try:
                    parsed = parse_feed(
                        fetched.body,
                        feed_id=feed.id,
                        url=fetched.final_url,
                        headers=fetched.headers,
                        language=feed.language,
                        now=now,
                    )
                    body_hash = digest
                except FetchError as exc:
                    outcome, error = "parse_error", redact_text(str(exc), feed.url)
            if parsed is not None and parsed.problem:
                log.info(
                    "feed=%s broken document still yielded %d entries: %s",
                    feed.id,
                    len(parsed.entries),
                    redact_text(parsed.problem, feed.url),
                )
        self._observe_fetch(feed.id, outcome, fetched)

        decision = self._jittered_next(
            outcome,
            now=now,
            interval=feed.interval,
            failures=state.failures,
            retry_after=fetched.retry_after(now),
            max_age=fetched.max_age,
            ttl=parsed.ttl if parsed else None,
        )
        # _select claims the new ids (other feeds' polls skip them meanwhile); the finally releases them.
        articles, members, new_ids, touched, duplicate, irrelevant = self._select(feed, parsed, now)
        new_state = self._next_state(
            state=state,
            outcome=outcome,
            fetched=fetched,
            error=error,
            decision=decision,
            body_hash=body_hash,
            now=now,
            had_new=bool(articles),
        )

        def save() -> None:  # the feed's new state, once the bus has the articles
            if self._after_publish is not None:
                self._after_publish(feed.id, articles)
            self._store.commit(new_state, now=now, new_ids=new_ids, touched_ids=touched, stories=members)

        try:
            self._checkpoint.commit(
                [Message(self._topic, a.article_id, a.encode()) for a in articles], save=save
            )
        except (BusError, StoreError) as exc:
            return self._abandon(feed=feed, outcome=outcome, fetched=fetched, state=state, exc=exc, now=now)
        finally:
            self._release([a.article_id for a in articles])
        self._known[feed.id] = new_state
        self._export_state(new_state, decision)
        self._count_entries(feed.id, len(articles), duplicate, irrelevant)
        self._log_transition(feed, outcome, error, decision)
        return FeedPollResult(
            feed_id=feed.id,
            outcome=outcome,
            status=fetched.status,
            next_poll_at=decision.at,
            new=len(articles),
            duplicate=duplicate,
            irrelevant=irrelevant,
            published=len(articles),
            failures=decision.failures,
            error=error,
            bytes_read=fetched.bytes_read,
            elapsed=fetched.elapsed,
            published_ids=tuple(a.article_id for a in articles),
        )

    def _select(
        self, feed: FeedConfig, parsed: ParsedFeed | None, now: datetime
    ) -> tuple[list[ArticleFetched], list[StoryMember], list[str], list[str], int, int]:
        """Split the entries into new articles, duplicates and irrelevant ones; claim the new ids."""
        if parsed is None or not parsed.entries:
            return [], [], [], [], 0, 0
        entries = newest_entries(parsed.entries, self._settings.max_entries)
        if len(entries) < len(parsed.entries):
            log.info(
                "feed=%s has %d entries: only the newest %d are read (poller.max_entries)",
                feed.id,
                len(parsed.entries),
                len(entries),
            )
        known = self._store.seen(i for e in entries for i in (e.article_id, *e.also_known_as))
        articles: list[ArticleFetched] = []
        members: list[StoryMember] = []
        new_ids: list[str] = []
        touched: list[str] = []
        batch: set[str] = set()
        duplicate = irrelevant = 0
        source = Source(feed_id=feed.id, name=feed.shown_name, url=feed.shown_url, viewpoint=feed.viewpoint)
        for entry in entries:
            aid = entry.article_id
            keys = (aid, *entry.also_known_as)
            if any(k in batch for k in keys):  # the same entry twice in this document
                duplicate += 1
                continue
            batch.update(keys)
            if any(k in known for k in keys):
                duplicate += 1
                touched.extend(k for k in keys if k in known)
                continue
            decision = gate(entry.title, entry.summary, threshold=self._settings.relevance_threshold)
            if not decision.keep:
                irrelevant += 1
                new_ids.extend(keys)
                continue
            if not self._claim(aid, feed.id):
                # Another feed's poll is publishing this article right now: not ours to record.
                duplicate += 1
                continue
            member = self._stories.assign(aid, entry.title, entry.summary, now)
            members.append(member)
            new_ids.extend(keys)
            articles.append(
                to_article(
                    entry,
                    story_id=member.story_id,
                    source=source,
                    fetched_at=now,
                    relevance_hint=decision.hint,
                )
            )
        return articles, members, new_ids, touched, duplicate, irrelevant

    def _claim(self, article_id: str, feed_id: str) -> bool:
        with self._inflight_lock:
            holder = self._inflight.setdefault(article_id, feed_id)
            return holder == feed_id

    def _release(self, article_ids: Sequence[str]) -> None:
        with self._inflight_lock:
            for aid in article_ids:
                self._inflight.pop(aid, None)

    def _next_state(
        self,
        *,
        state: FeedState,
        outcome: Outcome,
        fetched: FetchResult,
        error: str | None,
        decision: NextPoll,
        body_hash: str | None,
        now: datetime,
        had_new: bool,
    ) -> FeedState:
        success = outcome in SUCCESS_OUTCOMES
        changed = outcome == "ok"  # validators are stored only from a (parsed) 200
        return replace(
            state,
            etag=fetched.etag if changed else state.etag,
            last_modified=fetched.last_modified if changed else state.last_modified,
            body_hash=body_hash if changed else state.body_hash,
            next_poll_at=decision.at,
            failures=decision.failures,
            last_outcome=outcome,
            last_error=None if success else error,
            last_success_at=now if success else state.last_success_at,
            last_new_entry_at=now if had_new else state.last_new_entry_at,
        )

    def _abandon(
        self,
        *,
        feed: FeedConfig,
        outcome: Outcome,
        fetched: FetchResult,
        state: FeedState,
        exc: Exception,
        now: datetime,
    ) -> FeedPollResult:
        """Publishing or committing failed: store nothing, so the next poll does it all again."""
        kind = "publish" if isinstance(exc, BusError) else "state"
        log.warning(
            "feed=%s %s failed, nothing stored; the feed will be polled again: %s", feed.id, kind, exc
        )
        if self._stage is not None:
            self._stage.errors.labels(stage=STAGE, kind=kind).inc()
        decision = self._jittered_next(
            "server_error", now=now, interval=feed.interval, failures=state.failures
        )
        return FeedPollResult(
            feed_id=feed.id,
            outcome=outcome,
            status=fetched.status,
            next_poll_at=decision.at,
            failures=state.failures,
            error=f"{kind} failed: {exc}",
            bytes_read=fetched.bytes_read,
            elapsed=fetched.elapsed,
        )

    # -- observability ---------------------------------------------------------------------------------
    def _observe_fetch(self, feed_id: str, outcome: Outcome, fetched: FetchResult) -> None:
        if self._metrics is None:
            return
        self._metrics.polls.labels(feed=feed_id, outcome=outcome).inc()
        self._metrics.fetch_seconds.labels(outcome=outcome).observe(fetched.elapsed)
        if fetched.bytes_read:
            self._metrics.fetched_bytes.labels(feed=feed_id).inc(fetched.bytes_read)

    def _count_entries(self, feed_id: str, new: int, duplicate: int, irrelevant: int) -> None:
        if self._metrics is not None:
            for kind, n in (("new", new), ("duplicate", duplicate), ("irrelevant", irrelevant)):
                if n:
                    self._metrics.entries.labels(feed=feed_id, kind=kind).inc(n)
            if new:
                self._metrics.articles_published.labels(feed=feed_id).inc(new)
        if self._stage is not None:
            if new:
                self._stage.published.labels(stage=STAGE, topic=self._topic).inc(new)
            self._stage.last_progress.labels(stage=STAGE).set(self._clock().timestamp())

    def _export_state(self, state: FeedState, decision: NextPoll | None) -> None:
        m = self._metrics
        if m is None:
            return
        feed = state.feed_id
        m.consecutive_failures.labels(feed=feed).set(state.failures)
        if state.last_success_at is not None:
            m.last_success.labels(feed=feed).set(state.last_success_at.timestamp())
        if state.last_new_entry_at is not None:
            m.last_new_entry.labels(feed=feed).set(state.last_new_entry_at.timestamp())
        if decision is not None:
            m.expected_interval.labels(feed=feed).set(decision.interval.total_seconds())

    def _log_transition(self, feed: FeedConfig, outcome: str, error: str | None, decision: NextPoll) -> None:
        """Log once per change of a feed's condition (healthy, or failing with a given outcome)."""
        condition = "healthy" if outcome in SUCCESS_OUTCOMES else outcome
        previous = self._last_class.get(feed.id)
        self._last_class[feed.id] = condition
        if condition == previous:
            log.debug("feed=%s %s; next poll in %s", feed.id, outcome, _rounded(decision.delay))
            return
        if condition == "healthy":
            if previous is not None:
                log.info(
                    "feed=%s recovered (%s); next poll in %s", feed.id, outcome, _rounded(decision.delay)
                )
            return
        log.warning(
            "feed=%s failing: %s (%s); %d in a row, next try in %s (%s)",
            feed.id,
            outcome,
            error,
            decision.failures,
            _rounded(decision.delay),
            decision.reason,
        )

    # -- all feeds -------------------------------------------------------------------------------------
    # -- the stage (monitor.bus.stage.Stage) ----------------------------------------------------------
    name = "poller"

    def step(self) -> int:
        """Poll every feed now, once (:meth:`poll_all_once`); the number of articles published."""
        return self.poll_all_once().published

    def run(self, stop: threading.Event) -> None:
        """Poll on the schedule (:meth:`start`) until ``stop`` is set, then stop the schedule."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def flush(self) -> object:
        """Every poll ends committed: nothing is pending."""
        return None

    def poll_all_once(self) -> PollSummary:
        """Poll every feed now, in parallel (per-host limit respected); return when all are committed."""
        feeds = list(self._feeds)
        if not feeds:
            return PollSummary()
        workers = min(self._settings.workers, len(feeds))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
            results = list(pool.map(self._poll_safely, feeds))
        outcomes: Counter[str] = Counter(r.outcome for r in results)
        self.prune()
        return PollSummary(results=tuple(results), outcomes=dict(outcomes))

    def prune(self) -> None:
        """Forget article ids not seen for ``seen_retention`` and stories older than the window."""
        now = self._clock()
        try:
            seen, stories = self._store.prune(
                seen_before=now - self._settings.seen_retention,
                stories_before=now - self._settings.story_window,
            )
        except StoreError as exc:
            log.warning("pruning the poller state failed (will retry later): %s", exc)
            return
        if seen or stories:
            log.info("pruned %d seen ids and %d story members", seen, stories)

    def _poll_safely(self, feed_id: str) -> FeedPollResult:
        try:
            return self.poll_feed(feed_id)
        except Exception as exc:
            # A bug in handling one feed must not stop the others: log it with the trace, count it, and
            # retry the feed after a backoff.
            log.exception("feed=%s poll failed unexpectedly", feed_id)
            if self._stage is not None:
                self._stage.errors.labels(stage=STAGE, kind="unexpected").inc()
            feed = self._feeds[feed_id]
            decision = self._jittered_next(
                "server_error", now=self._clock(), interval=feed.interval, failures=0
            )
            return FeedPollResult(
                feed_id=feed_id,
                outcome="server_error",
                status=None,
                next_poll_at=decision.at,
                error=redact_text(f"unexpected: {exc!r}", feed.url),
            )

    # -- the schedule ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background schedule: one APScheduler job per feed; returns at once."""
        from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        if self._scheduler is not None:
            raise RuntimeError("poller already started")
        self._stopping.clear()
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": JobExecutor(max_workers=self._settings.workers)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(self._settings.misfire_grace.total_seconds()),
            },
        )
        now = datetime.now(UTC)
        for feed in self._feeds.values():
            state = self._known.get(feed.id)
            if state is not None and state.next_poll_at is not None and state.next_poll_at > now:
                first = state.next_poll_at
            else:
                spread = min(self._settings.start_spread, feed.interval).total_seconds()
                with self._rng_lock:
                    first = now + timedelta(seconds=self._rng.uniform(0, spread))
            self._due[feed.id] = first
            interval = max(feed.interval, self._policy.min_interval)
            scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
                args=[feed.id],
                id=feed.id,
                name=f"poll {feed.id}",
                next_run_time=first,
            )
        scheduler.add_job(
            self.prune,
            IntervalTrigger(hours=6, timezone=UTC),
            id="prune",
            name="prune state",
            next_run_time=now,
        )
        self._scheduler = scheduler
        scheduler.start()
        log.info("poller scheduled %d feeds", len(self._feeds))

    def _run_job(self, feed_id: str) -> None:
        started = datetime.now(UTC)
        due = self._due.get(feed_id)
        if due is not None and self._metrics is not None:
            self._metrics.scheduler_lag.observe(max(0.0, (started - due).total_seconds()))
        result = self._poll_safely(feed_id)
        if self._stopping.is_set():
            return
        self._due[feed_id] = result.next_poll_at
        from apscheduler.jobstores.base import JobLookupError

        try:
            self._scheduler.modify_job(feed_id, next_run_time=result.next_poll_at)
        except JobLookupError:  # the scheduler is shutting down and removed the job
            log.debug("feed=%s job gone; not rescheduled", feed_id)

    def stop(self, *, wait: bool = True) -> None:
        """Stop the schedule; with ``wait``, after the polls in progress have finished and committed."""
        self._stopping.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)
        self._due.clear()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and bool(self._scheduler.running)

    def health(self) -> tuple[bool, str]:
        """For ``/healthz``: running, with a count of failing feeds in the message; unhealthy
        ("degraded") when every feed is failing, since then nothing at all comes in."""
        failing = sorted(fid for fid, s in self._known.items() if s.failures and fid in self._feeds)
        detail = f"{len(self._feeds)} feeds, {len(failing)} failing"
        if self._scheduler is not None and not self.running:
            return False, f"scheduler stopped; {detail}"
        if self._feeds and len(failing) == len(self._feeds):
            return False, f"degraded: every feed is failing; {detail}"
        return True, f"ok; {detail}"

    def close(self) -> None:
        """Stop the schedule, then close the fetcher and the store (the producer belongs to the caller)."""
        self.stop()
        self._fetcher.close()
        self._store.close()


def newest_entries(entries: Sequence[FeedEntry], limit: int) -> Sequence[FeedEntry]:
    """At most ``limit`` entries: the newest by ``published_at`` (undated ones count as new: the poller
    dates them when it first sees them), in the feed's own order."""
    if len(entries) <= limit:
        return entries
    floor = datetime.min.replace(tzinfo=UTC)
    order = sorted(
        range(len(entries)),
        key=lambda i: (entries[i].published_at is None, entries[i].published_at or floor),
        reverse=True,
    )
    kept = set(order[:limit])
    return [e for i, e in enumerate(entries) if i in kept]


def _rounded(delay: timedelta) -> timedelta:
    """A delay to the second, for logs (``0:14:42`` rather than ``0:14:42.289173``)."""
    return timedelta(seconds=round(delay.total_seconds()))
