"""The alerter's durable state in SQLite: kept articles, seen ids, partition frontiers, rule states.

One file (``settings.alerter.state_path``, default ``<state_dir>/alerter.sqlite3``). :meth:`AlerterStore.save`
writes the difference between the last saved state and the current one in one transaction, so a crash
leaves either the old or the new state, never a mix. Floats are stored as SQLite REAL (IEEE doubles), so a
restored state computes bit-for-bit the same signals as the one saved.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, cast

from monitor.alerts.engine import EngineState
from monitor.alerts.lifecycle import RuleState, Status
from monitor.errors import AlerterStateError, ConfigError
from monitor.signals.engine import SignalState
from monitor.signals.windows import Article

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, arrival_us INTEGER NOT NULL,
    event_us INTEGER NOT NULL, relevance REAL NOT NULL, subjects TEXT NOT NULL, stance REAL NOT NULL,
    label TEXT NOT NULL, title TEXT NOT NULL, url TEXT NOT NULL, source TEXT NOT NULL, evidence TEXT,
    viewpoint TEXT NOT NULL DEFAULT 'international'
);
CREATE TABLE IF NOT EXISTS seen (article_id TEXT PRIMARY KEY, arrival_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frontiers (partition TEXT PRIMARY KEY, arrival_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS published (
    key TEXT PRIMARY KEY, value REAL, articles INTEGER NOT NULL, stories INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rules (
    name TEXT PRIMARY KEY, status TEXT NOT NULL, since_us INTEGER, alert_id TEXT, fired_us INTEGER,
    clear_since_us INTEGER, notified_us INTEGER, direction TEXT
);
"""


class AlerterStore:
    """Load and save :class:`~monitor.alerts.engine.EngineState` (thread-safe; one writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(articles)")}
            if "viewpoint" not in columns:  # a state file from before the viewpoint split
                self._db.execute(
                    "ALTER TABLE articles ADD COLUMN viewpoint TEXT NOT NULL DEFAULT 'international'"
                )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                source="settings",
                key="alerter.state_path",
                expected=f"a writable SQLite file ({exc})",
                got=str(path),
            ) from exc
        self._lock = threading.Lock()
        version = self._meta("schema_version")
        if version is None:
            self._set_meta({"schema_version": SCHEMA_VERSION})
        elif version != SCHEMA_VERSION:
            raise ConfigError(
                source=str(path),
                key="schema_version",
                expected=f"alerter state version {SCHEMA_VERSION}",
                got=version,
            )

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_meta(self, values: dict[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    def load(self) -> EngineState:
        """The saved state (an empty one for a new file), read in one transaction: a consistent snapshot
        even while another process saves (``monitor status`` beside ``monitor run``)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                return self._load_in_transaction()
            finally:
                db.execute("COMMIT")

    def _load_in_transaction(self) -> EngineState:
        db = self._db
        articles = {
            row[0]: Article(
                article_id=row[0],
                story_id=row[1],
                arrival_us=row[2],
                event_us=row[3],
                relevance=row[4],
                subjects=frozenset(json.loads(row[5])),
                stance=row[6],
                label=row[7],
                title=row[8],
                url=row[9],
                source=row[10],
                evidence=row[11],
                viewpoint=row[12],
            )
            for row in db.execute("SELECT * FROM articles")
        }
        seen = dict(db.execute("SELECT article_id, arrival_us FROM seen").fetchall())
        frontiers = dict(db.execute("SELECT partition, arrival_us FROM frontiers").fetchall())
        published = {row[0]: (row[1], row[2], row[3]) for row in db.execute("SELECT * FROM published")}
        rules = {
            row[0]: RuleState(
                status=cast(Status, row[1]),
                since_us=row[2],
                alert_id=row[3],
                fired_us=row[4],
                clear_since_us=row[5],
                notified_us=row[6],
                direction=row[7],
            )
            for row in db.execute("SELECT * FROM rules")
        }
        signals = SignalState(
            articles=articles,
            seen=seen,
            frontiers=frontiers,
            last_tick=self._meta("last_tick"),
            history_start=self._meta("history_start"),
            max_event_us=self._meta("max_event_us"),
            published=published,
        )
        log.info(
            "alerter state loaded from %s: %d articles in windows, %d ids seen, %d rules active",
            self.path,
            len(articles),
            len(seen),
            len(rules),
        )
        return EngineState(signals=signals, rules=rules)

    def positions(self) -> dict[tuple[str, int], int] | None:
        """The input offsets the saved state has read up to (per topic and partition), if recorded."""
        with self._lock:
            saved = self._meta("positions")
        if saved is None:
            return None
        return {(topic, int(partition)): int(offset) for topic, partition, offset in saved}

    def is_empty(self) -> bool:
        """Nothing saved yet (a new file)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM meta WHERE key = 'last_tick'").fetchone()
        return row is None

    def save(
        self,
        before: EngineState,
        after: EngineState,
        *,
        positions: dict[tuple[str, int], int] | None = None,
    ) -> None:
        """Persist ``after``, given that ``before`` is what the file holds now (one transaction).

        ``positions``: the input offsets ``after`` has read up to, saved with it (what a standby resumes
        from)."""
        old, new = before.signals, after.signals
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = [(k,) for k in old.articles.keys() - new.articles.keys()]
                db.executemany("DELETE FROM articles WHERE article_id = ?", gone)
                added = [a for k, a in new.articles.items() if old.articles.get(k) is not a]
                db.executemany(
                    "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            a.article_id,
                            a.story_id,
                            a.arrival_us,
                            a.event_us,
                            a.relevance,
                            json.dumps(sorted(a.subjects)),
                            a.stance,
                            a.label,
                            a.title,
                            a.url,
                            a.source,
                            a.evidence,
                            a.viewpoint,
                        )
                        for a in added
                    ],
                )
                db.executemany(
                    "DELETE FROM seen WHERE article_id = ?", [(k,) for k in old.seen.keys() - new.seen.keys()]
                )
                db.executemany(
                    "INSERT OR REPLACE INTO seen VALUES (?, ?)",
                    [(k, v) for k, v in new.seen.items() if old.seen.get(k) != v],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO frontiers VALUES (?, ?)",
                    [(k, v) for k, v in new.frontiers.items() if old.frontiers.get(k) != v],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO published VALUES (?, ?, ?, ?)",
                    [(k, *v) for k, v in new.published.items() if old.published.get(k) != v],
                )
                db.execute("DELETE FROM rules")
                db.executemany(
                    "INSERT INTO rules VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            name,
                            s.status,
                            s.since_us,
                            s.alert_id,
                            s.fired_us,
                            s.clear_since_us,
                            s.notified_us,
                            s.direction,
                        )
                        for name, s in after.rules.items()
                    ],
                )
                self._set_meta(
                    {
                        "last_tick": new.last_tick,
                        "history_start": new.history_start,
                        "max_event_us": new.max_event_us,
                    }
                )
                if positions is not None:
                    self._set_meta({"positions": sorted([t, p, o] for (t, p), o in positions.items())})
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise AlerterStateError(f"cannot save the alerter state to {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
