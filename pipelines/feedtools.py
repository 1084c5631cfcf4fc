"""``monitor feeds check`` and ``monitor feeds import`` (DESIGN §5).

``check FILE_OR_URL...`` fetches (URLs) or reads (files) each feed, parses and normalises it exactly as the
poller does, and prints every entry as one ArticleFetched JSON object per line on stdout (nothing is gated
or deduplicated against state: ``relevance_hint`` shows what the gate would say). Each feed that cannot be
fetched or parsed gets one error line on stderr; the exit status is 0 only if every feed parsed. A URL's
credentials are used to fetch it and shown nowhere: output, error lines and logs carry it redacted.

``import FILE.opml`` turns an OPML export into ``feeds:`` entries: printed as YAML, or added to the config
file named by ``--output`` (feeds whose URL is already there are skipped).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from monitor.config import parse_config
from monitor.errors import ConfigError, FetchError, OpmlError
from monitor.events import Source
from monitor.feeds.cluster import StoryIndex
from monitor.feeds.opml import read_opml, slugify
from monitor.feeds.parse import ParsedFeed, parse_feed, to_article
from monitor.feeds.relevance import gate
from monitor.settings import Settings
from monitor.urls import is_http_url, redact_text, redact_url, split_credentials
from pipelines.poller import build_fetcher

log = logging.getLogger(__name__)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _feed_id(source: str) -> str:
    if _is_url(source):
        parts = urlsplit(source)
        return slugify(f"{parts.hostname or ''}{parts.path}")
    return slugify(Path(source).stem)


def _shown(source: str) -> str:
    """``source`` as it may be printed: a URL with its credentials masked, a file name as it is."""
    return redact_url(source) if _is_url(source) else source


def _error(source: str, kind: str, detail: str) -> None:
    if _is_url(source):
        detail = redact_text(detail, source)
    sys.stderr.write(f"monitor feeds check: {_shown(source)}: {kind}: {detail}\n")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check(args: argparse.Namespace, settings: Settings, *, clock: Callable[[], datetime] = _utcnow) -> int:
    """Print the normalised entries of each feed as JSON lines; exit 0 only if all parsed.

    ``clock`` gives "now" (the fetch time, and the reference for implausible future dates)."""
    failed = 0
    stories = StoryIndex(window=settings.poller.story_window)
    fetcher = None
    try:
        for source in args.sources:
            now = clock()
            if _is_url(source) and not is_http_url(source):
                _error(source, "client_error", "not a valid http(s) URL")
                failed += 1
                continue
            feed_id = _feed_id(source)
            url: str | None = None
            if _is_url(source):
                if fetcher is None:
                    fetcher = build_fetcher(settings.poller)
                result = fetcher.fetch(source)
                if result.outcome != "ok":
                    _error(source, result.outcome, result.error or f"HTTP {result.status}")
                    failed += 1
                    continue
                body, headers, url = result.body, dict(result.headers), result.final_url
            else:
                try:
                    body, headers = Path(source).read_bytes(), {}
                except OSError as exc:
                    _error(source, "unreadable", exc.strerror or str(exc))
                    failed += 1
                    continue
            try:
                parsed = parse_feed(body, feed_id=feed_id, url=url, headers=headers, now=now)
            except FetchError as exc:
                _error(source, exc.outcome, str(exc))
                failed += 1
                continue
            if parsed.problem:
                log.warning(
                    "%s: broken document, %d entries still read: %s",
                    _shown(source),
                    len(parsed.entries),
                    redact_text(parsed.problem, source),
                )
            _print_entries(parsed, source=source, feed_id=feed_id, url=url, now=now, stories=stories)
    finally:
        if fetcher is not None:
            fetcher.close()
        sys.stdout.flush()
    return 1 if failed else 0


def _print_entries(
    parsed: ParsedFeed, *, source: str, feed_id: str, url: str | None, now: datetime, stories: StoryIndex
) -> None:
    if url is None:
        shown = parsed.link or _shown(source)
    elif url == split_credentials(source)[0]:
        shown = _shown(source)  # not redirected: the URL given, its credentials as ***
    else:
        shown = redact_url(url)
    origin = Source(feed_id=feed_id, name=parsed.title or feed_id, url=shown)
    out = sys.stdout
    for entry in parsed.entries:
        member = stories.assign(entry.article_id, entry.title, entry.summary, now)
        article = to_article(
            entry,
            story_id=member.story_id,
            source=origin,
            fetched_at=now,
            relevance_hint=gate(entry.title, entry.summary).hint,
        )
        out.write(article.model_dump_json() + "\n")


def _feed_dict(feed: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": feed.id, "url": feed.url, "name": feed.name}
    if feed.language:
        data["language"] = feed.language
    if feed.tags:
        data["tags"] = list(feed.tags)
    return data


def import_opml(args: argparse.Namespace, settings: Settings) -> int:
    """Print the OPML file's feeds as ``feeds:`` YAML, or add them to the ``--output`` config file."""
    path: Path = args.opml
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            source=str(path), key="", expected=f"a readable OPML file ({exc.strerror})"
        ) from exc
    output: Path | None = args.output
    existing: dict[str, Any] = {}
    if output is not None and output.exists():
        try:
            loaded = yaml.safe_load(output.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(source=str(output), key="", expected=f"a readable YAML config ({exc})") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(source=str(output), key="", expected="a mapping with feeds, signals and rules")
        existing = loaded or {}
    current = list(existing.get("feeds") or [])
    taken_ids = {str(f.get("id")) for f in current if isinstance(f, dict)}
    taken_urls = {str(f.get("url")) for f in current if isinstance(f, dict)}
    try:
        result = read_opml(data, taken_ids=taken_ids)
    except OpmlError as exc:
        raise ConfigError(source=str(path), key="", expected=f"an OPML file ({exc})") from exc
    for url, reason in result.rejected:
        sys.stderr.write(f"monitor feeds import: skipped {redact_url(url)}: {redact_text(reason, url)}\n")
    new = [f for f in result.feeds if f.url not in taken_urls]
    skipped = len(result.feeds) - len(new)
    if output is None:
        sys.stdout.write(
            yaml.safe_dump({"feeds": [_feed_dict(f) for f in new]}, sort_keys=False, allow_unicode=True)
        )
        return 0
    merged = dict(existing)
    merged["feeds"] = current + [_feed_dict(f) for f in new]
    parse_config(merged, source=str(output))  # never write a config that would not load
    output.write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), encoding="utf-8")
    sys.stderr.write(
        f"monitor feeds import: added {len(new)} feeds to {output}"
        f"{f' ({skipped} already there)' if skipped else ''}\n"
    )
    return 0
