"""Peak memory and time of one poll of each hostile feed, each in a fresh process; prints the figures.

Each case serves one document from a local HTTP server (127.0.0.1) and runs fetch + parse as the
poller does (``HttpxFetcher`` with the default 10 MiB limit, then ``parse_feed``):

* ``gzip-gzip``: ``Content-Encoding: gzip, gzip``, 2 GiB of spaces in a few KB;
* ``gzip``: one gzip layer over 2 GiB of spaces;
* ``dtd-comment``: a comment holding ``<a`` before a DOCTYPE whose 90 KB entity is referenced 95 times in
  each of 21 fields (about 100 KB on the wire, about 180 MB if it were expanded);
* ``utf16-dtd``: the same bomb in UTF-16;
* ``entries``: 100,000 tiny entries (9 MB);
* ``trickle``: headers sent one byte every 0.3 s (total deadline 3 s here).

    .venv/bin/python bench/bench_hostile_feeds.py              # every case
    .venv/bin/python bench/bench_hostile_feeds.py gzip-gzip    # one

A case runs in its own interpreter, so its peak RSS (``ru_maxrss``) is that of one poll plus Python
and the modules (the "baseline" line: the same process before the fetch).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import zlib

CASES = ("gzip-gzip", "gzip", "dtd-comment", "utf16-dtd", "entries", "trickle")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _spaces_gzip(layers: int) -> bytes:
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    mib = b" " * (1 << 20)
    data = b"".join(inner.compress(mib) for _ in range(2048)) + inner.flush()
    for _ in range(layers - 1):
        outer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        data = outer.compress(data) + outer.flush()
    return data


def _dtd_bomb() -> bytes:
    entity = "India and US " * 7_000  # ~90 KB
    refs = "&big;" * 95
    return (
        '<?xml version="1.0"?>\n<!-- <a href="x"> -->\n'
        f'<!DOCTYPE rss [<!ENTITY big "{entity}">]>\n'
        '<rss version="2.0"><channel><title>t</title>'
        f"<item><title>India US {refs}</title><link>https://n.example/1</link>"
        f"<description>{refs}</description></item>"
        + "".join(
            f"<item><title>x{i}</title><link>https://n.example/{i}</link><description>{refs}</description></item>"
            for i in range(2, 12)
        )
        + "</channel></rss>"
    )


def _document(case: str) -> tuple[bytes, dict[str, str]]:
    if case == "gzip-gzip":
        return _spaces_gzip(2), {"Content-Encoding": "gzip, gzip"}
    if case == "gzip":
        return _spaces_gzip(1), {"Content-Encoding": "gzip"}
    if case == "dtd-comment":
        return _dtd_bomb().encode(), {}
    if case == "utf16-dtd":
        return _dtd_bomb().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>').encode(
            "utf-16"
        ), {}
    if case == "entries":
        items = "".join(
            f"<item><title>India US {i}</title><link>https://n.example/{i}</link></item>"
            for i in range(100_000)
        )
        return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode(), {}
    raise ValueError(case)


def _serve(body: bytes, headers: dict[str, str], trickle: bool) -> tuple[int, threading.Event]:
    stop = threading.Event()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                if trickle:
                    for byte in (head + "X-Slow: " + "a" * 1000).encode():
                        if stop.wait(0.3):
                            return
                        try:
                            conn.sendall(bytes([byte]))
                        except OSError:
                            break
                    continue
                head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                with contextlib.suppress(OSError):
                    conn.sendall(head.encode() + body)
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return int(server.getsockname()[1]), stop


def child(case: str) -> None:
    import resource

    sys.path.insert(0, ROOT)
    from monitor.errors import FetchError
    from monitor.feeds.http import HttpxFetcher
    from monitor.feeds.parse import parse_feed

    trickle = case == "trickle"
    body, headers = (b"", {}) if trickle else _document(case)
    port, stop = _serve(body, headers, trickle)
    del body
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fetcher = HttpxFetcher(user_agent="bench", total_timeout=3.0 if trickle else 60.0)
    started = time.monotonic()
    result = fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
    fetcher.close()
    outcome = f"{result.outcome} ({result.error})" if result.error else result.outcome
    entries = None
    text = None
    if result.outcome == "ok":
        try:
            parsed = parse_feed(result.body, feed_id="bench", url=result.final_url)
            entries = len(parsed.entries)
            text = sum(len(e.title) + len(e.summary) for e in parsed.entries)
            outcome = f"ok, parsed ({parsed.problem})" if parsed.problem else "ok, parsed"
        except FetchError as exc:
            outcome = f"parse_error ({exc})"
    took = time.monotonic() - started
    stop.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "case": case,
                "outcome": outcome[:160],
                "seconds": round(took, 2),
                "peak_rss_mb": round(peak / 1024),
                "baseline_rss_mb": round(baseline / 1024),
                "entries": entries,
                "text_chars": text,
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    cases = sys.argv[1:] or list(CASES)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )
    print("fetch limit 10 MiB, total deadline 60 s (trickle: 3 s); one fresh process per case")
    for case in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        line = (
            out.stdout.strip().splitlines()[-1]
            if out.stdout.strip()
            else json.dumps({"case": case, "error": out.stderr[-500:]})
        )
        row = json.loads(line)
        if "error" in row:
            print(f"{case:12} failed: {row['error']}")
            continue
        print(
            f"{row['case']:12} {row['seconds']:6.2f} s  peak RSS {row['peak_rss_mb']:5d} MB "
            f"(baseline {row['baseline_rss_mb']} MB)  entries {row['entries']}  text {row['text_chars']}  "
            f"{row['outcome']}"
        )


if __name__ == "__main__":
    main()
