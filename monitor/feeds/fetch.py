"""Fetch feeds over HTTP: one interface (:class:`Fetcher`), one adapter on httpx (:class:`HttpxFetcher`).

Every fetch ends in exactly one named outcome (:data:`OUTCOMES`); the body is returned only for ``ok``.
Parsing is not done here (see :mod:`monitor.feeds.parse`): the fetcher hands over bytes and headers.

Politeness and limits: conditional GET (``If-None-Match`` / ``If-Modified-Since``), gzip/deflate, a bounded
number of redirects, connect/read timeouts and an overall deadline, a maximum body size (checked against
``Content-Length`` and while streaming the decoded body, so a gzip bomb stops at the limit), at most
``per_host_concurrency`` requests in flight per host, and a User-Agent that names the project.
httpx's exceptions never leave this module: they become outcomes.

Credentials in the URL (``user:password@``) are taken out of it and sent as HTTP Basic auth (not to
another host after a redirect); httpx's own request log lines show URLs redacted
(:func:`~monitor.feeds.urls.protect_logger`); every ``error`` text has the URL's secrets masked
(:func:`~monitor.feeds.urls.redact_text`). ``url`` is the real address, for fetching only: never show it
unredacted.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal, get_args
from urllib.parse import urlsplit

import httpx

from monitor.feeds.urls import protect_logger, redact_text, split_credentials

log = logging.getLogger(__name__)

Outcome = Literal[
    "not_modified",
    "ok",
    "rate_limited",
    "client_error",
    "server_error",
    "network_error",
    "too_large",
    "parse_error",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
"""Every way a poll can end (the ``outcome`` label of ``monitor_feed_polls_total``)."""
SUCCESS_OUTCOMES: frozenset[str] = frozenset({"not_modified", "ok"})

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, "
    "text/xml;q=0.9, */*;q=0.5"
)


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


class HostLimiter:
    """At most ``limit`` concurrent requests per host (``host:port``)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    @staticmethod
    def host_of(url: str) -> str:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        return f"{(parts.hostname or '').lower()}:{port or ''}"

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = self.host_of(url)
        with self._lock:
            sem = self._semaphores.get(host)
            if sem is None:
                sem = self._semaphores[host] = threading.BoundedSemaphore(self._limit)
        with sem:
            yield


class _TooLarge(Exception):
    pass


class _Deadline(Exception):
    pass


class HttpxFetcher(Fetcher):
    """The httpx adapter. Thread-safe: one client (connection pool) shared by the poller's workers."""

    def __init__(
        self,
        *,
        user_agent: str,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        total_timeout: float = 60.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        per_host_concurrency: int = 2,
        max_connections: int = 32,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        protect_logger("httpx")
        self._max_bytes = max_bytes
        self._total_timeout = total_timeout
        self._limiter = HostLimiter(per_host_concurrency)
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept": ACCEPT},
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=total_timeout
            ),
            follow_redirects=True,
            max_redirects=max_redirects,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        with self._limiter.slot(url):
            started = time.monotonic()
            result = self._fetch(url, headers, started)
        return result

    def _fetch(self, url: str, headers: dict[str, str], started: float) -> FetchResult:
        deadline = started + self._total_timeout
        target, credentials = split_credentials(url)
        # The client has no auth of its own: None is its default (and the bare URL has no userinfo).
        auth = httpx.BasicAuth(*credentials) if credentials is not None else None
        final_url = target
        status: int | None = None
        response_headers: dict[str, str] = {}
        read = 0

        def done(outcome: Outcome, error: str | None = None, body: bytes = b"") -> FetchResult:
            if error is not None:
                error = redact_text(redact_text(error, final_url), url)
            return FetchResult(
                outcome=outcome,
                url=url,
                final_url=final_url,
                status=status,
                body=body,
                headers=response_headers,
                error=error,
                elapsed=time.monotonic() - started,
                bytes_read=read,
            )

        try:
            with self._client.stream("GET", target, headers=headers, auth=auth) as response:
                final_url = str(response.url)
                status = response.status_code
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                outcome = classify_status(status)
                if outcome != "ok":
                    return done(outcome, None if outcome == "not_modified" else f"HTTP {status}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    return done("too_large", f"Content-Length {declared} > limit {self._max_bytes}")
                chunks = []
                for chunk in response.iter_bytes():
                    read += len(chunk)
                    if read > self._max_bytes:
                        raise _TooLarge
                    if time.monotonic() > deadline:
                        raise _Deadline
                    chunks.append(chunk)
                return done("ok", body=b"".join(chunks))
        except _TooLarge:
            return done("too_large", f"body larger than the limit of {self._max_bytes} bytes")
        except _Deadline:
            return done("network_error", f"body not complete within {self._total_timeout:g}s")
        except httpx.TooManyRedirects as exc:
            return done("client_error", f"too many redirects: {exc}")
        except httpx.TimeoutException as exc:
            return done("network_error", f"timed out ({type(exc).__name__})")
        except httpx.DecodingError as exc:
            return done("parse_error", f"undecodable content encoding: {exc}")
        except httpx.InvalidURL as exc:
            return done("client_error", f"invalid URL: {exc}")
        except httpx.UnsupportedProtocol as exc:
            return done("client_error", f"unsupported URL: {exc}")
        except httpx.HTTPError as exc:
            return done("network_error", f"{type(exc).__name__}: {exc}")
