"""A durable log for the in-process bus: records and committed offsets in one SQLite file.

With it, ``monitor run`` without Kafka keeps Kafka's guarantees across a crash: a publish returns only
after its records are committed to the file (WAL, ``synchronous=FULL``), consumer offsets are committed
the same way, and a restarted process resumes every consumer group where it committed, so records that
were acknowledged but not yet processed are processed after the restart. Records older than the
retention are pruned when the log is opened.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from monitor.bus.base import Record
from monitor.errors import BusError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    key TEXT, value BLOB NOT NULL, ts INTEGER,
    PRIMARY KEY (topic, part, off)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bases (
    topic TEXT NOT NULL, part INTEGER NOT NULL, base INTEGER NOT NULL, PRIMARY KEY (topic, part)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class LoadedLog:
    """What a log file holds: topics with partition counts, first offsets, records, group offsets."""

    topics: dict[str, int]
    bases: dict[tuple[str, int], int]
    records: list[Record]
    offsets: dict[tuple[str, str, int], int]


class BusLog:
    """The SQLite file behind a durable :class:`~monitor.bus.memory.InProcessBus`."""

    def __init__(self, path: Path, *, retention: timedelta, volatile_topics: Iterable[str] = ()) -> None:
        self.path = path
        self.volatile_topics = frozenset(volatile_topics)
        self._retention = retention
        self._lock = threading.Lock()
        self._owner = _claim(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._owner.close()
            raise BusError(f"cannot open the bus log {path}: {exc}") from exc

    def _write(self, statements: Iterable[tuple[str, tuple[object, ...]]]) -> None:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    self._db.execute(sql, params)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise BusError(f"bus log {self.path}: {exc}", retriable=True) from exc

    def load(self) -> LoadedLog:
        """Prune what is older than the retention, then read everything back."""
        cutoff = int((time.time() - self._retention.total_seconds()) * 1000)
        with self._lock:
            rows = self._db.execute(
                "SELECT topic, part, MAX(off) FROM records WHERE ts < ? GROUP BY topic, part", (cutoff,)
            ).fetchall()
        statements: list[tuple[str, tuple[object, ...]]] = []
        for topic, part, last in rows:
            statements.append(
                ("DELETE FROM records WHERE topic=? AND part=? AND off<=?", (topic, part, last))
            )
            statements.append(
                ("INSERT OR REPLACE INTO bases (topic, part, base) VALUES (?, ?, ?)", (topic, part, last + 1))
            )
        if statements:
            self._write(statements)
        with self._lock:
            topics = dict(self._db.execute("SELECT name, partitions FROM topics").fetchall())
            bases = {(t, p): b for t, p, b in self._db.execute("SELECT topic, part, base FROM bases")}
            records = [
                Record(t, p, o, k, bytes(v), ts)
                for t, p, o, k, v, ts in self._db.execute(
                    "SELECT topic, part, off, key, value, ts FROM records ORDER BY topic, part, off"
                )
            ]
            offsets = {
                (g, t, p): o
                for g, t, p, o in self._db.execute("SELECT group_id, topic, part, off FROM offsets")
            }
        return LoadedLog(topics, bases, records, offsets)

    def add_topic(self, name: str, partitions: int) -> None:
        self._write([("INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)", (name, partitions))])

    def append(self, records: Iterable[Record]) -> None:
        """Store ``records`` durably (one transaction); volatile topics are skipped."""
        self._write(
            (
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                (r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ms),
            )
            for r in records
            if r.topic not in self.volatile_topics
        )

    def commit(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        self._write(
            ("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?, ?)", (group_id, topic, part, off))
            for (topic, part), off in offsets.items()
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._owner.close()  # gives the claim up


def _claim(path: Path) -> IO[bytes]:
    """Claim ``path`` for this process (an exclusive lock on ``<path>.lock``, released on close or when
    the process ends, kill -9 included): each process keeps its own copy of the log in memory and appends
    at the offsets it knows, so a second writer would collide with the first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = path.with_name(path.name + ".lock").open("ab")
    except OSError as exc:
        raise BusError(f"cannot open the bus log {path}: {exc}") from exc
    try:
        fcntl.flock(owner.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        owner.close()
        raise BusError(
            f"the bus log {path} is in use by another process (a `monitor run` on this state folder?): "
            "stop it first, or read the state read-only (`monitor status`, `monitor eval-alerts`)"
        ) from exc
    return owner


def read_topic(path: Path, topic: str) -> list[Record]:
    """The records of ``topic`` in the log file at ``path``, read-only (nothing pruned, nothing created;
    safe beside the process that writes it). An absent file holds nothing."""
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT topic, part, off, key, value, ts FROM records WHERE topic = ? ORDER BY part, off",
                (topic,),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise BusError(f"cannot read the bus log {path}: {exc}") from exc
    return [Record(t, p, o, k, bytes(v), ts) for t, p, o, k, v, ts in rows]
