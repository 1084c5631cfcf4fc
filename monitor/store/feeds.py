"""The poller's state in SQLite: per-feed HTTP validators and schedule, seen article ids, recent stories.

One transaction per poll (:meth:`FeedStore.commit`) writes the feed's new state together with the ids it
saw and the story members it added. The poller calls it only after the bus acknowledged the poll's
articles, so a crash before the commit replays the poll (at-least-once, deduplicated downstream by
``article_id``) and a crash after it never republishes. WAL mode: a killed process leaves the last
committed transaction intact.

Seen ids are bounded by age: an id not seen in any feed for ``seen_retention`` is forgotten
(:meth:`FeedStore.prune`); story members are kept for the clustering window.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from monitor.errors import ConfigError, StoreError
from monitor.feeds.cluster import StoryMember
from monitor.feeds.state import FeedState

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_state (
    feed_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    next_poll_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    last_outcome TEXT,
    last_error TEXT,
    last_success_at REAL,
    last_new_entry_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    article_id TEXT PRIMARY KEY,
    feed_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_last_seen ON seen (last_seen);
CREATE TABLE IF NOT EXISTS stories (
    article_id TEXT PRIMARY KEY,
    story_id TEXT NOT NULL,
    at REAL NOT NULL,
    terms TEXT NOT NULL,
    signature BLOB,
    shingles INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS stories_at ON stories (at);
"""


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class FeedStore:
    """SQLite file of the poller's state (a :class:`~monitor.feeds.state.FeedStateStore`). Thread-safe (one
    connection behind a lock); SQLite's errors are raised as :class:`~monitor.errors.StoreError`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ConfigError(
                source=str(self.path),
                key="user_version",
                expected=f"poller state schema {SCHEMA_VERSION}",
                got=version,
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._locked():
            self._db.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the connection; SQLite's errors leave as :class:`StoreError` naming the file."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise StoreError(f"poller state {self.path}: {exc}") from exc

    # -- feed state ----------------------------------------------------------------------------------
    _COLUMNS = (
        "feed_id, url, etag, last_modified, body_hash, next_poll_at, failures, last_outcome, last_error, "
        "last_success_at, last_new_entry_at, created_at"
    )

    @staticmethod
    def _state(row: tuple[object, ...]) -> FeedState:
        (
            feed_id,
            url,
            etag,
            last_modified,
            body_hash,
            next_poll_at,
            failures,
            last_outcome,
            last_error,
            last_success_at,
            last_new_entry_at,
            created_at,
        ) = row
        return FeedState(
            feed_id=str(feed_id),
            url=str(url),
            etag=etag if isinstance(etag, str) else None,
            last_modified=last_modified if isinstance(last_modified, str) else None,
            body_hash=body_hash if isinstance(body_hash, str) else None,
            next_poll_at=_dt(next_poll_at if isinstance(next_poll_at, float | int) else None),
            failures=int(failures) if isinstance(failures, int) else 0,
            last_outcome=last_outcome if isinstance(last_outcome, str) else None,
            last_error=last_error if isinstance(last_error, str) else None,
            last_success_at=_dt(last_success_at if isinstance(last_success_at, float | int) else None),
            last_new_entry_at=_dt(last_new_entry_at if isinstance(last_new_entry_at, float | int) else None),
            created_at=_dt(created_at if isinstance(created_at, float | int) else 0.0) or datetime.now(UTC),
        )

    def load(self, feed_id: str) -> FeedState | None:
        """The stored state of ``feed_id``, or None for a feed never polled."""
        with self._locked():
            row = self._db.execute(
                f"SELECT {self._COLUMNS} FROM feed_state WHERE feed_id = ?", (feed_id,)
            ).fetchone()
        return self._state(row) if row else None

    def load_all(self) -> dict[str, FeedState]:
        """The stored state of every feed ever polled."""
        with self._locked():
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM feed_state").fetchall()
        return {str(r[0]): self._state(r) for r in rows}

    # -- seen ids -------------------------------------------------------------------------------------
    def seen(self, article_ids: Iterable[str]) -> set[str]:
        """Which of ``article_ids`` were already seen (published, or judged irrelevant)."""
        ids = list(dict.fromkeys(article_ids))
        found: set[str] = set()
        with self._locked():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT article_id FROM seen WHERE article_id IN ({marks})", chunk)
                found.update(r[0] for r in rows)
        return found

    def seen_count(self) -> int:
        with self._locked():
            return int(self._db.execute("SELECT count(*) FROM seen").fetchone()[0])

    # -- stories --------------------------------------------------------------------------------------
    def recent_stories(self, since: datetime) -> list[StoryMember]:
        """Story members added at or after ``since``, oldest first (to rebuild the story index)."""
        with self._locked():
            rows = self._db.execute(
                "SELECT article_id, story_id, at, terms, signature, shingles FROM stories WHERE at >= ? "
                "ORDER BY at, article_id",
                (since.timestamp(),),
            ).fetchall()
        return [
            StoryMember(
                article_id=r[0],
                story_id=r[1],
                at=datetime.fromtimestamp(r[2], UTC),
                title_terms=frozenset(t for t in r[3].split(" ") if t),
                signature=r[4],
                shingle_count=r[5],
            )
            for r in rows
        ]

    # -- the one write ----------------------------------------------------------------------------------
    def commit(
        self,
        state: FeedState,
        *,
        now: datetime,
        new_ids: Sequence[str] = (),
        touched_ids: Sequence[str] = (),
        stories: Sequence[StoryMember] = (),
    ) -> None:
        """Atomically store ``state``, mark ``new_ids`` seen by this feed, refresh ``touched_ids``.

        Call only after the poll's articles are acknowledged by the bus.
        """
        t = now.timestamp()
        with self._locked():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO feed_state (feed_id, url, etag, last_modified, body_hash, next_poll_at, "
                    "failures, last_outcome, last_error, last_success_at, last_new_entry_at, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(feed_id) DO UPDATE SET "
                    "url=excluded.url, etag=excluded.etag, last_modified=excluded.last_modified, "
                    "body_hash=excluded.body_hash, next_poll_at=excluded.next_poll_at, "
                    "failures=excluded.failures, last_outcome=excluded.last_outcome, "
                    "last_error=excluded.last_error, last_success_at=excluded.last_success_at, "
                    "last_new_entry_at=excluded.last_new_entry_at, updated_at=excluded.updated_at",
                    (
                        state.feed_id,
                        state.url,
                        state.etag,
                        state.last_modified,
                        state.body_hash,
                        _ts(state.next_poll_at),
                        state.failures,
                        state.last_outcome,
                        state.last_error,
                        _ts(state.last_success_at),
                        _ts(state.last_new_entry_at),
                        _ts(state.created_at),
                        t,
                    ),
                )
                if new_ids:
                    self._db.executemany(
                        "INSERT INTO seen (article_id, feed_id, first_seen, last_seen) VALUES (?,?,?,?) "
                        "ON CONFLICT(article_id) DO UPDATE SET last_seen=excluded.last_seen",
                        [(i, state.feed_id, t, t) for i in new_ids],
                    )
                if touched_ids:
                    self._db.executemany(
                        "UPDATE seen SET last_seen = ? WHERE article_id = ?", [(t, i) for i in touched_ids]
                    )
                if stories:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO stories "
                        "(article_id, story_id, at, terms, signature, shingles) VALUES (?,?,?,?,?,?)",
                        [
                            (
                                m.article_id,
                                m.story_id,
                                m.at.timestamp(),
                                " ".join(sorted(m.title_terms)),
                                m.signature,
                                m.shingle_count,
                            )
                            for m in stories
                        ],
                    )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def prune(self, *, seen_before: datetime, stories_before: datetime) -> tuple[int, int]:
        """Forget ids not seen since ``seen_before`` and story members older than ``stories_before``."""
        with self._locked():
            seen = self._db.execute("DELETE FROM seen WHERE last_seen < ?", (seen_before.timestamp(),))
            stories = self._db.execute("DELETE FROM stories WHERE at < ?", (stories_before.timestamp(),))
            return seen.rowcount, stories.rowcount
