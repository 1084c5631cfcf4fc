"""The fetcher against hostile servers (all local): encoding bombs, trickled headers, redirects inward.

Each server here is a real socket on 127.0.0.1; nothing is sent to any other address (the redirect to
169.254.169.254 is refused before any connection is made).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator

import pytest
from feedserver import FeedServer, rss_feed

from monitor.feeds.http import BoundedDecoder, HttpxFetcher, is_public_address

BODY = rss_feed([{"title": "India, US talk", "link": "https://n.example/1"}])
LIMIT = 1024 * 1024


def fetcher(**kwargs: object) -> HttpxFetcher:
    options: dict[str, object] = {
        "user_agent": "india-us-monitor/test",
        "read_timeout": 2.0,
        "max_bytes": LIMIT,
    }
    options.update(kwargs)
    return HttpxFetcher(**options)  # type: ignore[arg-type]


# -- encodings -------------------------------------------------------------------------------------------


def test_stacked_gzip_bomb_stops_at_the_limit(feed_server: FeedServer) -> None:
    bomb = gzip.compress(gzip.compress(b" " * 200 * LIMIT, 9), 9)  # 200 MiB of spaces, a few KB sent
    assert len(bomb) < 64 * 1024
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip, gzip"})
    f = fetcher()
    result = f.fetch(feed_server.url("/bomb"))
    f.close()
    assert result.outcome == "too_large"
    assert result.body == b""


def test_stacked_encodings_decode_when_small(feed_server: FeedServer) -> None:
    feed_server.add(
        "/twice", gzip.compress(zlib.compress(BODY)), headers={"Content-Encoding": "deflate, gzip"}
    )
    f = fetcher()
    result = f.fetch(feed_server.url("/twice"))
    f.close()
    assert (result.outcome, result.body, result.bytes_read) == ("ok", BODY, len(BODY))


def test_three_stacked_encodings_are_refused(feed_server: FeedServer) -> None:
    body = gzip.compress(gzip.compress(gzip.compress(BODY)))
    feed_server.add("/thrice", body, headers={"Content-Encoding": "gzip, gzip, gzip"})
    f = fetcher()
    result = f.fetch(feed_server.url("/thrice"))
    f.close()
    assert result.outcome == "parse_error"
    assert result.error == "3 stacked content encodings (gzip, gzip, gzip) refused"


def test_an_unadvertised_encoding_is_a_parse_error(feed_server: FeedServer) -> None:
    feed_server.add("/br", b"\x1b\x00", headers={"Content-Encoding": "br"})
    f = fetcher()
    result = f.fetch(feed_server.url("/br"))
    request = feed_server.requests("/br")[0]
    f.close()
    assert request.header("accept-encoding") == "gzip, deflate"
    assert (result.outcome, result.error) == ("parse_error", "unsupported content encoding br")


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "multi-member-gzip"])
def test_the_bounded_decoder_round_trips(coding: str) -> None:
    data = BODY * 50
    if coding == "gzip":
        encoded, header = gzip.compress(data), "gzip"
    elif coding == "deflate":
        encoded, header = zlib.compress(data), "deflate"
    elif coding == "raw-deflate":
        raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        encoded, header = raw.compress(data) + raw.flush(), "deflate"
    else:
        half = len(data) // 2
        encoded, header = gzip.compress(data[:half]) + gzip.compress(data[half:]), "gzip"
    decoder = BoundedDecoder(header, len(data))
    out = b"".join(decoder.feed(encoded[i : i + 100]) for i in range(0, len(encoded), 100)) + decoder.finish()
    assert out == data and decoder.produced == len(data)


def test_the_bounded_decoder_never_holds_more_than_the_limit() -> None:
    decoder = BoundedDecoder("gzip", 1000)
    bomb = gzip.compress(b"a" * 10_000_000)
    with pytest.raises(Exception) as caught:  # the private _TooLarge, checked below
        decoder.feed(bomb)
    assert type(caught.value).__name__ == "_TooLarge"


# -- the deadline ------------------------------------------------------------------------------------------


@pytest.fixture
def trickling_server() -> Iterator[tuple[int, threading.Event]]:
    """A server that sends its status line and headers one byte every 0.3 s, forever."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n" + b"X-Slow: " + b"a" * 10_000
            for byte in head:
                if stop.wait(0.3):
                    break
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], stop
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_headers_trickled_one_byte_at_a_time_are_cut_off_at_the_total_deadline(
    trickling_server: tuple[int, threading.Event],
) -> None:
    port, _ = trickling_server
    f = fetcher(read_timeout=5.0, total_timeout=1.5)
    started = time.monotonic()
    result = f.fetch(f"http://127.0.0.1:{port}/feed.xml")
    took = time.monotonic() - started
    f.close()
    assert (result.outcome, result.error) == ("network_error", "not complete within 1.5s")
    assert took < 1.5 + 2.0  # the deadline, not the server, ended it (the server would go on for ~50 min)


# -- redirects and addresses ------------------------------------------------------------------------------


@pytest.fixture
def other_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def test_a_redirect_to_another_local_port_is_refused(
    feed_server: FeedServer, other_server: FeedServer
) -> None:
    other_server.add("/internal", b"secret internal page")
    feed_server.redirect("/feed", other_server.url("/internal"))
    f = fetcher()
    result = f.fetch(feed_server.url("/feed"))
    f.close()
    assert result.outcome == "client_error"
    assert result.error == "redirect to the non-public address 127.0.0.1 refused"
    assert other_server.hits() == 0


def test_a_redirect_to_localhost_is_refused(feed_server: FeedServer) -> None:
    feed_server.add("/here", BODY)
    feed_server.redirect("/feed", f"http://localhost:{feed_server.port}/here")
    f = fetcher()
    result = f.fetch(feed_server.url("/feed"))
    f.close()
    assert result.outcome == "client_error"
    assert "non-public address" in (result.error or "")
    assert feed_server.hits("/here") == 0


def test_a_redirect_to_the_metadata_address_is_refused_without_connecting(feed_server: FeedServer) -> None:
    feed_server.redirect("/feed", "http://169.254.169.254/latest/meta-data/")
    f = fetcher(connect_timeout=30.0)
    started = time.monotonic()
    result = f.fetch(feed_server.url("/feed"))
    f.close()
    assert result.outcome == "client_error"
    assert result.error == "redirect to the non-public address 169.254.169.254 refused"
    assert time.monotonic() - started < 5  # refused before any connection attempt


def test_a_redirect_on_the_feeds_own_host_and_port_is_followed(feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/new", status=301)
    feed_server.add("/new", BODY)
    f = fetcher()
    result = f.fetch(feed_server.url("/old"))
    f.close()
    assert (result.outcome, result.body, result.final_url) == ("ok", BODY, feed_server.url("/new"))


def test_allowed_networks_let_a_redirect_reach_them(
    feed_server: FeedServer, other_server: FeedServer
) -> None:
    other_server.add("/feed", BODY)
    feed_server.redirect("/feed", other_server.url("/feed"))
    f = fetcher(allowed_networks=("127.0.0.0/8",))
    result = f.fetch(feed_server.url("/feed"))
    f.close()
    assert (result.outcome, result.body) == ("ok", BODY)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed"])
def test_a_redirect_to_another_scheme_is_refused(feed_server: FeedServer, target: str) -> None:
    feed_server.redirect("/feed", target)
    f = fetcher()
    result = f.fetch(feed_server.url("/feed"))
    f.close()
    assert (result.outcome, result.error) == ("client_error", f"redirect to an unsupported URL: {target}")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public
