"""What the poller remembers between polls, and the store it keeps it in (an interface; SQLite in
:mod:`monitor.store.feeds`).

The poller writes once per poll (:meth:`FeedStateStore.commit`), after the bus acknowledged the poll's
articles: the feed's new state together with the ids it saw and the story members it added. A store that
cannot read or write raises :class:`~monitor.errors.StoreError`; the poll then stores nothing and is done
again later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from monitor.feeds.cluster import StoryMember


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the poller remembers about one feed."""

    feed_id: str
    url: str
    """The feed's URL as shown (credentials masked: the poller stores ``FeedConfig.shown_url``)."""
    created_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    """SHA-256 of the last parsed body: a 200 with the same bytes is not parsed again."""
    next_poll_at: datetime | None = None
    failures: int = 0
    last_outcome: str | None = None
    last_error: str | None = None
    last_success_at: datetime | None = None
    last_new_entry_at: datetime | None = None

    def for_url(self, url: str) -> FeedState:
        """This state for ``url``: validators of another URL (the config changed) do not apply."""
        if url == self.url:
            return self
        return replace(self, url=url, etag=None, last_modified=None, body_hash=None)


class FeedStateStore(Protocol):
    """Where the poller keeps :class:`FeedState`, the seen article ids and the recent story members."""

    def load(self, feed_id: str) -> FeedState | None: ...

    def load_all(self) -> dict[str, FeedState]: ...

    def seen(self, article_ids: Iterable[str]) -> set[str]:
        """Which of ``article_ids`` were seen before."""
        ...

    def seen_count(self) -> int: ...

    def recent_stories(self, since: datetime) -> list[StoryMember]:
        """The story members added since ``since`` (to rebuild the clustering index at start)."""
        ...

    def commit(
        self,
        state: FeedState,
        *,
        now: datetime,
        new_ids: Sequence[str] = (),
        touched_ids: Sequence[str] = (),
        stories: Sequence[StoryMember] = (),
    ) -> None:
        """Atomically store ``state``, ``new_ids`` as seen by the feed, refresh ``touched_ids``, add
        ``stories``. Only after the poll's articles are acknowledged by the bus."""
        ...

    def prune(self, *, seen_before: datetime, stories_before: datetime) -> tuple[int, int]:
        """Forget ids not seen since ``seen_before`` and story members older than ``stories_before``."""
        ...

    def close(self) -> None: ...
