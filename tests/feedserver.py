"""A local HTTP server that serves feeds the way real publishers do, well and badly (no pytest needed).

Start it on a free port, program routes, point pollers at ``server.url(path)``::

    from feedserver import FeedServer, Response

    with FeedServer() as server:                      # 127.0.0.1, port 0 (a free one)
        server.add("/rss", body=rss_bytes, etag='"v1"')   # 304 when If-None-Match matches
        server.add_file("/hindu", Path(".../finance.ts.xml"), last_modified="Wed, 02 Apr 2025 10:00:00 GMT")
        server.add("/limited", status=429, headers={"Retry-After": "120"})
        server.add_sequence("/flaky", [Response(status=500), Response(body=rss_bytes)])  # then repeats last
        server.redirect("/old", "/rss")               # 302 (status= for 301/307/308)
        server.add("/slow", body=rss_bytes, delay=5.0)  # headers after 5 s
        server.add("/gz", body=rss_bytes, gzip=True)    # Content-Encoding: gzip when the client accepts it
        url = server.url("/rss")                      # http://127.0.0.1:<port>/rss
        ...
        server.requests("/rss")                       # what was asked: headers, time
        server.hits("/rss")                           # how many times

Route behaviour (:class:`Response` fields): ``status``, ``body`` (bytes or str), ``content_type``,
``headers`` (extra headers), ``etag`` / ``last_modified`` (sent, and answered with 304 when the request's
``If-None-Match`` / ``If-Modified-Since`` match), ``delay`` (seconds before the status line: a slow server),
``gzip`` (compress when ``Accept-Encoding`` allows), ``chunked`` (no Content-Length, chunked transfer, in
``chunk_size`` pieces ``chunk_delay`` seconds apart: a trickling server),
``declared_length`` (a Content-Length header that may lie). :meth:`FeedServer.add_handler` takes a
function ``Request -> Response`` for anything else. Unknown paths get 404.

:func:`rss_feed` and :func:`atom_feed` build small feed documents from a list of item dicts.

Route changes take effect for the next request (e.g. new entries between two polls: call ``add`` again).
``peak_concurrency`` is the most requests that were waiting for their answer at once. The server listens on
``host`` (default 127.0.0.1); ``FeedServer(host="0.0.0.0")`` with ``url(path, host="127.0.0.2")`` gives
feeds on different "hosts" of the loopback network. Threads are daemons; ``stop()`` interrupts delays.
"""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

__all__ = ["FeedServer", "Request", "Response", "atom_feed", "rss_feed"]

RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class Response:
    """What a route answers."""

    body: bytes | str = b""
    status: int = 200
    content_type: str | None = RSS_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    gzip: bool = False
    chunked: bool = False
    chunk_size: int = 16384
    chunk_delay: float = 0.0
    declared_length: int | None = None

    @property
    def data(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Request:
    """A request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names in lower case."""
    at: float
    host: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Handler = Callable[[Request], Response]


def _not_modified(response: Response, request: Request) -> bool:
    inm = request.header("if-none-match")
    if response.etag is not None and inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or response.etag.removeprefix("W/") in tags
    ims = request.header("if-modified-since")
    if response.last_modified is not None and ims is not None:
        try:
            since = email.utils.parsedate_to_datetime(ims)
            modified = email.utils.parsedate_to_datetime(response.last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


class FeedServer:
    """A programmable feed server on a free port. Thread-safe; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, list[Handler]] = {}
        self._cursor: dict[str, int] = {}
        self._requests: list[Request] = []
        self._stopping = threading.Event()
        self._active = 0
        self.peak_concurrency = 0
        server_ref = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server_ref._serve(self)

            def do_HEAD(self) -> None:
                server_ref._serve(self, head=True)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="feedserver", daemon=True
        )
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        host = str(self._server.server_address[0])
        return "127.0.0.1" if host in ("0.0.0.0", "") else host

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str, *, host: str | None = None) -> str:
        """The full URL of ``path`` (optionally on another loopback address, when listening on 0.0.0.0)."""
        return f"http://{host or self.host}:{self.port}{path}"

    def start(self) -> FeedServer:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._started:
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- routes ---------------------------------------------------------------------------------------
    def add(self, path: str, body: bytes | str = b"", **fields: object) -> Response:
        """Serve one fixed response at ``path`` (fields as in :class:`Response`); replaces the route."""
        response = Response(body=body, **fields)  # type: ignore[arg-type]
        self.add_sequence(path, [response])
        return response

    def add_file(self, path: str, file: Path | str, **fields: object) -> Response:
        """Serve a file's bytes at ``path``."""
        return self.add(path, Path(file).read_bytes(), **fields)

    def add_sequence(self, path: str, responses: Iterable[Response]) -> None:
        """Answer successive requests with successive responses; the last one repeats."""
        handlers: list[Handler] = [(lambda r, resp=resp: resp) for resp in responses]
        if not handlers:
            raise ValueError("at least one response")
        with self._lock:
            self._routes[path] = handlers
            self._cursor[path] = 0

    def add_handler(self, path: str, handler: Handler) -> None:
        """Answer every request at ``path`` with ``handler(request)``."""
        with self._lock:
            self._routes[path] = [handler]
            self._cursor[path] = 0

    def redirect(self, path: str, location: str, *, status: int = 302) -> None:
        """Redirect ``path`` to ``location`` (a path or a full URL)."""
        self.add(path, b"", status=status, content_type=None, headers={"Location": location})

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    # -- what happened ----------------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def hits(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def clear(self) -> None:
        """Forget the request log (routes stay)."""
        with self._lock:
            self._requests.clear()
            self.peak_concurrency = 0

    # -- serving ----------------------------------------------------------------------------------------
    def _next_handler(self, path: str) -> Handler | None:
        with self._lock:
            handlers = self._routes.get(path)
            if handlers is None:
                return None
            i = self._cursor[path]
            self._cursor[path] = min(i + 1, len(handlers) - 1)
            return handlers[i]

    def _serve(self, http: BaseHTTPRequestHandler, *, head: bool = False) -> None:
        path = http.path.split("?", 1)[0]
        request = Request(
            method=http.command,
            path=path,
            headers={k.lower(): v for k, v in http.headers.items()},
            at=time.time(),
            host=http.headers.get("Host", ""),
        )
        with self._lock:
            self._requests.append(request)
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)
        answering = False
        try:
            handler = self._next_handler(path)
            response = handler(request) if handler else Response(b"not found\n", 404, "text/plain")
            if response.delay and self._stopping.wait(response.delay):
                return
            # No longer waiting for its answer: counted out before the client can see the answer (and
            # send its next request), so the count never depends on thread timing.
            with self._lock:
                self._active -= 1
                answering = True
            self._write(http, request, response, head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
        finally:
            if not answering:
                with self._lock:
                    self._active -= 1

    def _write(
        self, http: BaseHTTPRequestHandler, request: Request, response: Response, *, head: bool
    ) -> None:
        status = response.status
        body = response.data
        headers: dict[str, str] = {}
        if response.etag is not None:
            headers["ETag"] = response.etag
        if response.last_modified is not None:
            headers["Last-Modified"] = response.last_modified
        if status == 200 and _not_modified(response, request):
            status, body = 304, b""
        if status != 304 and response.content_type:
            headers["Content-Type"] = response.content_type
        accepts_gzip = "gzip" in (request.header("accept-encoding") or "")
        if response.gzip and accepts_gzip and body:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers.update(response.headers)
        http.send_response(status)
        for name, value in headers.items():
            http.send_header(name, value)
        if response.chunked and status != 304:
            http.send_header("Transfer-Encoding", "chunked")
            http.end_headers()
            if not head:
                for start in range(0, len(body), response.chunk_size):
                    if start and response.chunk_delay and self._stopping.wait(response.chunk_delay):
                        return
                    chunk = body[start : start + response.chunk_size]
                    http.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    http.wfile.flush()
                http.wfile.write(b"0\r\n\r\n")
            return
        length = response.declared_length if response.declared_length is not None else len(body)
        http.send_header("Content-Length", str(length))
        http.end_headers()
        if not head and status != 304:
            http.wfile.write(body)


# -- feed documents -----------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rss_feed(
    items: Iterable[Mapping[str, object]],
    *,
    title: str = "Test feed",
    link: str = "https://news.example/",
    ttl: int | None = None,
    language: str | None = "en",
) -> bytes:
    """An RSS 2.0 document. Item keys: title, link, description, guid, pub_date (RFC 822 string)."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{_esc(title)}</title><link>{_esc(link)}</link><description>test</description>",
    ]
    if language:
        parts.append(f"<language>{_esc(language)}</language>")
    if ttl is not None:
        parts.append(f"<ttl>{ttl}</ttl>")
    tags = {
        "title": "title",
        "link": "link",
        "description": "description",
        "guid": "guid",
        "pub_date": "pubDate",
    }
    for item in items:
        parts.append("<item>")
        for key, tag in tags.items():
            if item.get(key) is not None:
                parts.append(f"<{tag}>{_esc(item[key])}</{tag}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")


def atom_feed(
    entries: Iterable[Mapping[str, object]], *, title: str = "Test feed", link: str = "https://news.example/"
) -> bytes:
    """An Atom 1.0 document. Entry keys: title, link, summary, id, updated (RFC 3339 string)."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f'<title>{_esc(title)}</title><link href="{_esc(link)}"/><id>{_esc(link)}</id>',
        "<updated>2026-02-02T00:00:00Z</updated>",
    ]
    for entry in entries:
        parts.append("<entry>")
        if entry.get("title") is not None:
            parts.append(f"<title>{_esc(entry['title'])}</title>")
        if entry.get("link") is not None:
            parts.append(f'<link rel="alternate" href="{_esc(entry["link"])}"/>')
        if entry.get("id") is not None:
            parts.append(f"<id>{_esc(entry['id'])}</id>")
        if entry.get("summary") is not None:
            parts.append(f"<summary>{_esc(entry['summary'])}</summary>")
        parts.append(f"<updated>{_esc(entry.get('updated', '2026-02-02T00:00:00Z'))}</updated>")
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")
