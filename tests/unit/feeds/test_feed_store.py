"""The poller's SQLite state."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import ConfigError, StoreError
from monitor.feeds.state import FeedState
from monitor.store.feeds import FeedStore

T = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)


def test_state_round_trip_and_seen_ids(tmp_path: Path) -> None:
    store = FeedStore(tmp_path / "deep" / "poller.sqlite3")  # creates folders
    assert store.load("f") is None
    state = FeedState(
        feed_id="f",
        url="https://f.example/rss",
        created_at=T,
        etag='"v1"',
        last_modified="Mon, 02 Feb 2026",
        body_hash="abc",
        next_poll_at=T + timedelta(minutes=15),
        failures=2,
        last_outcome="server_error",
        last_error="HTTP 500",
        last_success_at=T - timedelta(hours=1),
        last_new_entry_at=T - timedelta(hours=2),
    )
    store.commit(state, now=T, new_ids=["a", "b"])
    store.close()
    store = FeedStore(tmp_path / "deep" / "poller.sqlite3")
    assert store.load("f") == state
    assert store.load_all() == {"f": state}
    assert store.seen(["a", "b", "c"]) == {"a", "b"}
    assert store.seen(str(i) for i in range(2000)) == set()  # chunked IN lists
    store.close()


def test_validators_do_not_carry_over_to_a_new_url() -> None:
    state = FeedState(
        feed_id="f",
        url="https://old.example/",
        created_at=T,
        etag='"x"',
        last_modified="y",
        body_hash="z",
        failures=1,
    )
    moved = state.for_url("https://new.example/")
    assert (moved.etag, moved.last_modified, moved.body_hash) == (None, None, None)
    assert moved.failures == 1
    assert state.for_url("https://old.example/") is state


def test_prune_by_last_seen(tmp_path: Path) -> None:
    store = FeedStore(tmp_path / "p.sqlite3")
    state = FeedState(feed_id="f", url="https://f.example/", created_at=T)
    store.commit(state, now=T, new_ids=["old", "kept"])
    store.commit(state, now=T + timedelta(days=100), touched_ids=["kept"])
    pruned = store.prune(seen_before=T + timedelta(days=10), stories_before=T)
    assert pruned == (1, 0)
    assert store.seen(["old", "kept"]) == {"kept"}
    store.close()


def test_a_failed_commit_leaves_nothing(tmp_path: Path) -> None:
    store = FeedStore(tmp_path / "p.sqlite3")
    state = FeedState(feed_id="f", url="https://f.example/", created_at=T)
    with pytest.raises(StoreError, match=r"poller state .*p\.sqlite3") as info:
        # a non-bindable id fails in the middle of the transaction
        store.commit(state, now=T, new_ids=["a", object()])  # type: ignore[list-item]
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert store.load("f") is None
    assert store.seen(["a"]) == set()
    store.commit(state, now=T, new_ids=["a"])  # and the store still works
    assert store.seen(["a"]) == {"a"}
    store.close()


def test_unknown_schema_version_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(ConfigError, match="user_version"):
        FeedStore(path)
