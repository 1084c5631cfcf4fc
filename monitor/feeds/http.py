"""The :class:`~monitor.feeds.fetch.Fetcher` on httpx (:class:`HttpxFetcher`).

Politeness and limits: conditional GET (``If-None-Match`` / ``If-Modified-Since``), gzip/deflate, a bounded
number of redirects, connect/read timeouts and one overall deadline from connect to the last byte (headers
included: a server that trickles its headers is cut off), a maximum body size (checked against
``Content-Length`` and against the decoded bytes as the bounded decoder produces them, so neither a gzip
bomb nor a stack of encodings grows past the limit), at most ``per_host_concurrency`` requests in flight per
host, and a User-Agent that names the project.

Address policy: a redirect may not lead to a loopback, private, link-local, multicast or reserved address
(checked on the address actually connected to, on every hop, so DNS cannot swap it), unless it stays on the
configured feed's own host and port or the address is in ``allowed_networks``. A feed configured with a
private address is fetched as configured.

httpx's exceptions never leave this module: they become outcomes.

Credentials in the URL (``user:password@``) are taken out of it and sent as HTTP Basic auth (not to
another host after a redirect); httpx's own request log lines show URLs redacted
(:func:`~monitor.urls.protect_logger`); every ``error`` text has the URL's secrets masked
(:func:`~monitor.urls.redact_text`). ``url`` is the real address, for fetching only: never show it
unredacted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.feeds.fetch import Fetcher, FetchResult, classify_status
from monitor.outcomes import Outcome
from monitor.urls import is_http_url, protect_logger, redact_text, redact_url, split_credentials

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


class HostLimiter:
    """At most ``limit`` concurrent requests per host (``host:port``)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    @staticmethod
    def host_of(url: str) -> str:
        """``host:port`` (the scheme's default port where none is given)."""
        _scheme, host, port = _origin(url)
        return f"{host}:{port or ''}"

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


class _Refused(Exception):
    """The address policy refused a connection."""


class _BadEncoding(Exception):
    pass


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate")
MAX_STACKED_ENCODINGS = 2


class BoundedDecoder:
    """Undoes ``Content-Encoding`` (gzip, deflate, up to :data:`MAX_STACKED_ENCODINGS` stacked) and never
    holds more than ``limit`` decoded bytes: every zlib call is asked for at most what is left of the limit,
    so a bomb is stopped after ``limit`` bytes of output, whatever its ratio."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        unknown = [c for c in codings if c not in SUPPORTED_ENCODINGS]
        if unknown:
            raise _BadEncoding(f"unsupported content encoding {', '.join(unknown)}")
        if len(codings) > MAX_STACKED_ENCODINGS:
            raise _BadEncoding(f"{len(codings)} stacked content encodings ({content_encoding}) refused")
        self._limit = limit
        # Applied in the order listed, so undone in reverse.
        self._stages: list[_Stage] = [_Stage(c) for c in reversed(codings)]
        self.produced = 0

    def feed(self, data: bytes) -> bytes:
        for stage in self._stages:
            data = stage.feed(data, self._limit)
        self.produced += len(data)
        if self.produced > self._limit:
            raise _TooLarge
        return data

    def finish(self) -> bytes:
        """What the decoders still hold once the body has ended."""
        data = b""
        for stage in self._stages:
            data = stage.feed(data, self._limit) + stage.flush(self._limit)
        self.produced += len(data)
        if self.produced > self._limit:
            raise _TooLarge
        return data


class _Stage:
    """One zlib decoder; gzip streams of several members are decoded member after member."""

    def __init__(self, coding: str) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._raw_deflate = False
        self._started = False
        self._obj = self._new()
        self._out = 0

    def _new(self) -> Any:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS)

    def feed(self, data: bytes, limit: int) -> bytes:
        out = []
        while data:
            room = limit - self._out + 1
            try:
                chunk = self._obj.decompress(data, room)
            except zlib.error as exc:
                if not self._gzip and not self._started and not self._raw_deflate:
                    self._raw_deflate = True  # "deflate" sent as a raw stream, as some servers do
                    self._obj = self._new()
                    continue
                raise _BadEncoding(f"undecodable content encoding: {exc}") from exc
            self._started = True
            self._out += len(chunk)
            if self._out > limit:
                raise _TooLarge
            out.append(chunk)
            if self._obj.unconsumed_tail:
                data = self._obj.unconsumed_tail
                continue
            if self._obj.eof and self._obj.unused_data and self._gzip:
                data = self._obj.unused_data
                self._obj = self._new()
                continue
            break
        return b"".join(out)

    def flush(self, limit: int) -> bytes:
        rest = bytes(self._obj.flush(max(1, limit - self._out + 1)))
        self._out += len(rest)
        if self._out > limit:
            raise _TooLarge
        return rest


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a global unicast address (not loopback, private, link-local, metadata...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast


class AddressPolicy:
    """Which addresses a redirect may lead to (see the module docstring)."""

    def __init__(self, allowed_networks: tuple[str, ...] = ()) -> None:
        self._allowed = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)

    def refusal(self, address: str, *, same_origin: bool) -> str | None:
        """Why a redirect to ``address`` is refused (None: allowed)."""
        if same_origin or is_public_address(address):
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in net for net in self._allowed):
            return None
        return f"redirect to the non-public address {address} refused"


def _resolve(url: str) -> list[str]:
    """The addresses a URL's host resolves to (a literal address: itself)."""
    _scheme, host, port = _origin(url)
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port or 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # the request itself then fails with the resolver's error
    return sorted({str(info[4][0]) for info in infos})


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


class _Hop:
    """One request of a fetch: sees its connections (httpx trace), checks their peer, can cut them."""

    def __init__(self, policy: AddressPolicy | None, *, same_origin: bool) -> None:
        self._policy = policy
        self._same_origin = same_origin
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self.expired = False

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        if stream is None:
            return
        with self._lock:
            self._streams.append(stream)
            if self.expired:
                _cut(stream)
        if self._policy is not None and event == "connection.connect_tcp.complete":
            peer = stream.get_extra_info("server_addr")
            if peer:
                reason = self._policy.refusal(str(peer[0]), same_origin=self._same_origin)
                if reason:
                    raise _Refused(reason)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for stream in self._streams:
                _cut(stream)


def _cut(stream: Any) -> None:
    """Shut a connection down from another thread: a blocked read then fails at once."""
    sock = stream.get_extra_info("socket")
    if sock is None:
        return
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


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
        allowed_networks: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        protect_logger("httpx")
        self._max_bytes = max_bytes
        self._total_timeout = total_timeout
        self._max_redirects = max_redirects
        self._policy = AddressPolicy(allowed_networks)
        self._limiter = HostLimiter(per_host_concurrency)
        self._client = httpx.Client(
            # One connection per fetch (Connection: close): the deadline can cut exactly this fetch's
            # sockets, and the address policy sees every connection. Feeds are polled minutes apart.
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
            },
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=total_timeout
            ),
            follow_redirects=False,
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
        if not is_http_url(url):
            return FetchResult(
                outcome="client_error", url=url, final_url=redact_url(url), error="not a valid http(s) URL"
            )
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

        origin = _origin(url)
        hop: _Hop | None = None
        timer: threading.Timer | None = None
        try:
            for redirects in range(self._max_redirects + 2):
                if redirects > self._max_redirects:
                    return done("client_error", f"too many redirects (more than {self._max_redirects})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Deadline
                first = redirects == 0
                same_origin = _origin(final_url) == origin
                if not first and not same_origin:  # before connecting; the peer is checked again after
                    for address in _resolve(final_url):
                        reason = self._policy.refusal(address, same_origin=False)
                        if reason:
                            raise _Refused(reason)
                hop = _Hop(None if first else self._policy, same_origin=same_origin)
                timer = threading.Timer(remaining, hop.expire)
                timer.daemon = True
                timer.start()
                with self._client.stream(
                    "GET",
                    final_url,
                    headers=headers,
                    auth=auth if same_origin else None,  # credentials never go to another host
                    extensions={"trace": hop.trace},
                ) as response:
                    status = response.status_code
                    response_headers = {k.lower(): v for k, v in response.headers.items()}
                    location = response.headers.get("location")
                    if status in REDIRECT_STATUSES and location:
                        final_url = urljoin(str(response.url), location)
                        if urlsplit(final_url).scheme.lower() not in ("http", "https"):
                            return done("client_error", f"redirect to an unsupported URL: {final_url}")
                        timer.cancel()
                        continue
                    outcome = classify_status(status)
                    if outcome != "ok":
                        return done(outcome, None if outcome == "not_modified" else f"HTTP {status}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self._max_bytes:
                        return done("too_large", f"Content-Length {declared} > limit {self._max_bytes}")
                    decoder = BoundedDecoder(response.headers.get("content-encoding", ""), self._max_bytes)
                    chunks = []
                    raw = 0
                    for chunk in response.iter_raw():
                        raw += len(chunk)
                        if raw > self._max_bytes:
                            read = raw
                            raise _TooLarge
                        if time.monotonic() > deadline:
                            raise _Deadline
                        chunks.append(decoder.feed(chunk))
                        read = decoder.produced
                    chunks.append(decoder.finish())
                    read = decoder.produced
                    return done("ok", body=b"".join(chunks))
            raise AssertionError("unreachable")  # pragma: no cover
        except _TooLarge:
            return done("too_large", f"body larger than the limit of {self._max_bytes} bytes")
        except _Deadline:
            return done("network_error", f"not complete within {self._total_timeout:g}s")
        except _Refused as exc:
            return done("client_error", str(exc))
        except _BadEncoding as exc:
            return done("parse_error", str(exc))
        except httpx.TimeoutException as exc:
            return done("network_error", f"timed out ({type(exc).__name__})")
        except httpx.InvalidURL as exc:
            return done("client_error", f"invalid URL: {exc}")
        except httpx.UnsupportedProtocol as exc:
            return done("client_error", f"unsupported URL: {exc}")
        except httpx.HTTPError as exc:
            if hop is not None and hop.expired:
                return done("network_error", f"not complete within {self._total_timeout:g}s")
            return done("network_error", f"{type(exc).__name__}: {exc}")
        finally:
            if timer is not None:
                timer.cancel()
