"""Fetching a feed: the interface (:class:`Fetcher`) and what one fetch produces (:class:`FetchResult`).

Every fetch ends in exactly one named outcome (:mod:`monitor.outcomes`); the body is returned only for
``ok``. Parsing is not done here (see :mod:`monitor.feeds.parse`): the fetcher hands over bytes and
headers. The adapter on httpx, with its limits and address policy, is :mod:`monitor.feeds.http`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch produced."""

    outcome: Outcome
    url: str
    """The URL fetched, credentials included (see the module docstring)."""
    final_url: str
    """Where the body came from after redirects (without the ``user:password@`` of ``url``)."""
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers, names in lower case."""
    error: str | None = None
    """Why the fetch failed (None for ``ok`` and ``not_modified``); never quotes a credential."""
    elapsed: float = 0.0
    bytes_read: int = 0

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag") or None

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified") or None

    def retry_after(self, now: datetime) -> timedelta | None:
        """The server's ``Retry-After`` (seconds or an HTTP date), if any."""
        return parse_retry_after(self.headers.get("retry-after"), now)

    @property
    def max_age(self) -> timedelta | None:
        """``Cache-Control: max-age`` (None with ``no-cache``/``no-store`` or when absent)."""
        return parse_max_age(self.headers.get("cache-control"))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After: 120`` or ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` as a delay from ``now``."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - now)


def parse_max_age(value: str | None) -> timedelta | None:
    """The ``max-age`` of a ``Cache-Control`` header."""
    if not value:
        return None
    directives = [d.strip().lower() for d in value.split(",")]
    if any(d in ("no-cache", "no-store") for d in directives):
        return None
    for directive in directives:
        name, _, arg = directive.partition("=")
        if name.strip() == "max-age":
            try:
                seconds = int(arg.strip().strip('"'))
            except ValueError:
                return None
            return timedelta(seconds=seconds) if seconds > 0 else None
    return None


def classify_status(status: int) -> Outcome:
    """The outcome of an HTTP status (after redirects were followed)."""
    if status == 304:
        return "not_modified"
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "client_error"
    return "server_error"


class Fetcher(ABC):
    """Fetches one feed URL, conditionally."""

    @abstractmethod
    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch ``url``; never raises for anything the network or the server does."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
