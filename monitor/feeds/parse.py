"""Parse feed bytes with feedparser and normalise the entries (pure: bytes in, entries out).

Fetching is elsewhere (:mod:`monitor.feeds.fetch`): this module gets the body, the response headers
(Content-Type for the charset, Content-Language) and the final URL (for relative links) and returns a
:class:`ParsedFeed` or raises :class:`~monitor.errors.FetchError` with outcome ``parse_error``.

Safety: entity declarations in the XML (``<!ENTITY lol9 "&lol8;&lol8;...">``, the "billion laughs", or
one big entity referenced many times) are never expanded and external entities never resolved, whichever
of feedparser's parsers (expat through SAX, or its loose SGML parser) ends up reading the document. The
document is first decoded by feedparser's own rules and re-encoded as UTF-8 (so UTF-7, UTF-16, EBCDIC...
cannot hide ``<!ENTITY`` from the scan), then :func:`defuse` rebuilds its prolog without any internal
subset, and the bytes feedparser gets are exactly those. External DTDs are never fetched.

Broken documents that still yield entries (feedparser's ``bozo``) are used; the problem, and what defusing
removed, is reported in :attr:`ParsedFeed.problem` for the caller to log.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
from feedparser.encodings import convert_to_utf8

from monitor.errors import FetchError
from monitor.events import ArticleFetched, Source
from monitor.feeds.cluster import tokens
from monitor.feeds.text import clean_text, truncate
from monitor.urls import (
    article_id_for_content,
    article_id_for_guid,
    article_id_for_url,
    canonical_url,
)

MAX_SUMMARY_CHARS = 2000
MAX_TITLE_CHARS = 400
FUTURE_TOLERANCE = timedelta(minutes=10)
"""A ``published_at`` further in the future than this is a publisher's clock or zone bug: use first seen."""

IdBasis = Literal["url", "guid", "content"]

_SLASHED_DATE = re.compile(
    r"\s*(?P<y>\d{4})(?P<sep>[/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"
    r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\s*",
    re.IGNORECASE,
)

_SLASHED_START = re.compile(r"\s*\d{4}[/.]\d")


def parse_slashed_date(text: str) -> time.struct_time | None:
    """``2020/1/10 14:33:00`` or ``2020.01.10``: year first, slashes or dots, optional time and zone (UTC
    when none is given).

    feedparser has no handler for this form; its ISO 8601 handler reads the leading year alone and fills
    the month and day in from *today*, which gives a date that changes with the calendar. Registered with
    feedparser (its handlers are tried newest first), so every feed date goes through here first.
    """
    match = _SLASHED_DATE.fullmatch(text)
    if match is None:
        return None
    g = match.groupdict()
    try:
        y, m, d = (int(g[k]) for k in "ymd")
        hour, minute, second = (int(g[k] or 0) for k in "HMS")
        when = datetime(y, m, d, hour, minute, second, tzinfo=UTC)
    except ValueError:  # 2020/13/45: no date rather than a guess
        return None
    tz = (g["tz"] or "").upper()
    if tz and tz not in ("Z", "UTC", "GMT"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when.utctimetuple()


feedparser.registerDateHandler(parse_slashed_date)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One normalised entry of a feed."""

    article_id: str
    url: str
    """The canonical URL of the article, or ``""`` when the entry has no usable link."""
    title: str
    summary: str
    published_at: datetime | None
    """UTC; None when the feed gives no (plausible) date: the poller uses the time it first saw it."""
    language: str | None
    guid: str | None
    id_basis: IdBasis
    """What ``article_id`` was derived from: the canonical URL, the GUID (within the feed) or the content."""
    also_known_as: tuple[str, ...] = ()
    """Secondary ids the entry counts as seen under (the content id of a GUID-keyed entry)."""


def to_article(
    entry: FeedEntry, *, story_id: str, source: Source, fetched_at: datetime, relevance_hint: float
) -> ArticleFetched:
    """The ``ArticleFetched`` record of ``entry``, first seen at ``fetched_at`` (its date if it has none)."""
    return ArticleFetched(
        article_id=entry.article_id,
        story_id=story_id,
        url=entry.url,
        title=entry.title,
        summary=entry.summary,
        published_at=entry.published_at or fetched_at,
        fetched_at=fetched_at,
        language=entry.language,
        source=source,
        relevance_hint=relevance_hint,
    )


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document."""

    entries: tuple[FeedEntry, ...]
    title: str
    link: str | None
    version: str
    ttl: timedelta | None
    problem: str | None
    """Why feedparser flagged the document as broken (``bozo``) although it yielded what is here, and/or
    that DTD declarations were removed before parsing (:data:`DEFUSED_NOTE`)."""
    skipped: int = 0
    """Entries dropped because they had neither a title, a summary nor a link."""


# --------------------------------------------------------------------------------------------------
# Defusing the document before parsing


_UTF32 = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"))
_UTF16 = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_NULL_PATTERNS = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00!\x00", "utf-16-le"),
    (b"\x00<\x00!", "utf-16-be"),
)
_XML_DECL_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*)([\"'])[^\"']*\2", re.IGNORECASE)
_CHARSET = re.compile(r";\s*charset\s*=\s*[^;]*", re.IGNORECASE)
_SPACES = re.compile(rb"[ \t\r\n]+")
_DOCTYPE_TOKEN = re.compile(rb"<!--|[\"'\[\]>]")
_DECLARATION = re.compile(rb"<!(?:ENTITY|DOCTYPE)", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_FEEDPARSER_PROLOG_END = re.compile(rb"<\w")
"""Where feedparser's ``replace_doctype`` stops reading the prolog: it re-declares every ``<!ENTITY ...>``
line it finds before this (in a comment, a literal, anywhere) whose value has no ``&``."""

DEFUSED_NOTE = "DTD entity declarations removed before parsing (never expanded)"


def _wide_encoding(data: bytes) -> tuple[str, int] | None:
    for bom, name in (*_UTF32, *_UTF16):
        if data.startswith(bom):
            return name, len(bom)
    for pattern, name in _NULL_PATTERNS:
        if data.startswith(pattern):
            return name, 0
    return None


def to_ascii_compatible(data: bytes, headers: dict[str, str]) -> bytes:
    """UTF-16/32 documents re-encoded as UTF-8, including those feedparser's sniffing misses (no BOM, a
    document opening with ``<!``); others unchanged.

    The XML declaration and the HTTP charset are rewritten to match. ``headers`` is updated in place.
    """
    wide = _wide_encoding(data)
    if wide is None:
        return data
    name, skip = wide
    text = data[skip:].decode(name, errors="replace")
    out = _XML_DECL_ENCODING.sub(rb'\1"utf-8"', text.encode("utf-8"), count=1)
    content_type = headers.get("content-type")
    if content_type:
        headers["content-type"] = _CHARSET.sub("", content_type) + "; charset=utf-8"
    return out


def to_utf8(data: bytes, headers: Mapping[str, str]) -> tuple[bytes, BaseException | None]:
    """The document as feedparser reads it: decoded by feedparser's own rules (BOM, HTTP charset, XML
    declaration, RFC 3023, its fallbacks), re-encoded as UTF-8 under an ``encoding='utf-8'`` declaration;
    and the encoding problem feedparser reports for it (a charset override, a non-XML media type), if any.

    Defusing has to read the characters the parsers read: the raw bytes of a UTF-7 document
    (``+ADw-!ENTITY``), an EBCDIC one, ISO-2022 escapes or HZ line continuations hide ``<!ENTITY``.
    Given the result and a UTF-8 charset (:func:`utf8_headers`), feedparser decodes it unchanged.
    May raise UnicodeError (a codec that decodes to lone surrogates, say).
    """
    state: dict[str, Any] = {}
    out = convert_to_utf8(dict(headers), data, state)
    if not state.get("encoding") or not isinstance(out, bytes):
        # Not seen: its last fallback (ISO-8859-2) decodes any byte. Undecoded bytes are never parsed.
        raise UnicodeError("no encoding decodes the document")
    problem = state.get("bozo_exception")
    return out, problem if isinstance(problem, BaseException) else None


def utf8_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers for a document :func:`to_utf8` produced: XML, UTF-8 (its problems already taken)."""
    out = {k: v for k, v in headers.items() if k != "content-type"}
    out["content-type"] = "application/xml; charset=utf-8"
    return out


def _doctype_end(data: bytes, start: int) -> tuple[int, int | None]:
    """End (exclusive) of the declaration at ``start`` and where its internal subset opens (or None)."""
    n = len(data)
    depth = 0
    subset_at: int | None = None
    i = start + len(b"<!DOCTYPE")
    while (match := _DOCTYPE_TOKEN.search(data, i)) is not None:
        token = match.group()
        i = match.end()
        if token == b"<!--":
            close = data.find(b"-->", i)
            if close < 0:
                return n, subset_at
            i = close + 3
        elif token in (b'"', b"'"):
            close = data.find(token, i)
            if close < 0:
                return n, subset_at
            i = close + 1
        elif token == b"[":
            if subset_at is None:
                subset_at = match.start()
            depth += 1
        elif token == b"]":
            depth -= 1
        elif depth <= 0:  # >
            return i, subset_at
    return n, subset_at


def _plain(inner: bytes) -> bool:
    """No markup inside a kept prolog construct: feedparser's regular expressions then see it as a whole."""
    return b"<" not in inner and b">" not in inner


def defuse(data: bytes) -> tuple[bytes, bool]:
    """Rebuild the prolog without entity declarations; returns the new bytes and whether any were removed.

    The prolog is read as an XML parser reads it, whatever it holds: whitespace, comments (dropped: they
    may hold ``<a`` or ``<!ENTITY`` text that feedparser's own prolog scan trips on), processing
    instructions (kept when they hold no markup), and DOCTYPEs, wherever they are before the root element:
    each loses its internal subset, and one with markup left in it is dropped. A DOCTYPE without an
    internal subset (RSS 0.91's Netscape DTD, XHTML's) is kept: it names the format and nothing is ever
    fetched from it. After the prolog, ``<!ENTITY`` text up to where feedparser stops looking for entity
    declarations (the first ``<`` and letter) is escaped: garbage before the root element, or the start
    of a root element whose name is not ASCII. Run it on the decoded document (:func:`to_utf8`).
    """
    defused = False
    pos = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    out = bytearray(data[:pos])
    n = len(data)
    while pos < n:
        if (spaces := _SPACES.match(data, pos)) is not None:
            out += spaces.group()
            pos = spaces.end()
        elif data.startswith(b"<!--", pos):
            close = data.find(b"-->", pos + 4)
            if close < 0:
                break
            defused |= _DECLARATION.search(data, pos, close) is not None
            pos = close + 3
        elif data.startswith(b"<?", pos):
            close = data.find(b"?>", pos + 2)
            if close < 0:
                break
            if _plain(data[pos + 2 : close]):
                out += data[pos : close + 2]
            else:
                defused |= _DECLARATION.search(data, pos, close) is not None
            pos = close + 2
        elif data[pos : pos + len(b"<!DOCTYPE")].upper() == b"<!DOCTYPE":
            end, subset_at = _doctype_end(data, pos)
            kept = data[pos:end] if subset_at is None else data[pos:subset_at].rstrip() + b">"
            inner = kept[len(b"<!DOCTYPE") : -1]
            whole = kept.endswith(b">") and _plain(inner) and b"[" not in inner
            if whole:
                out += kept
            defused |= subset_at is not None or not whole
            pos = end
        else:
            break
    rest = data[pos:]
    first = _FEEDPARSER_PROLOG_END.search(rest)
    head_end = len(rest) if first is None else first.start()
    head = rest[:head_end]
    escaped = _ENTITY_DECL.sub(b"&lt;!ENTITY", head)
    if escaped != head:
        defused = True
    elif len(out) == pos:
        return data, defused  # nothing dropped (only ever shorter): no copy of a large document
    return bytes(out) + escaped + rest[head_end:], defused


# --------------------------------------------------------------------------------------------------
# Normalisation

_LANG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def normalise_language(value: object) -> str | None:
    """``en_US`` / ``EN-us`` -> ``en-US``; anything that is not a language tag -> None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _LANG.match(text):
        return None
    parts = re.split(r"[-_]", text)
    out = [parts[0].lower()]
    for part in parts[1:]:
        out.append(part.upper() if len(part) == 2 else part.lower())
    return "-".join(out)


def _struct_to_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _get(raw: Mapping[str, Any], key: str) -> Any:
    """``raw[key]`` without feedparser's key aliasing (its updated/published fallback warns)."""
    return dict.get(raw, key) if isinstance(raw, dict) else raw.get(key)


def _entry_date(raw: Mapping[str, Any], now: datetime) -> datetime | None:
    for key in ("published", "updated", "created"):
        text = _get(raw, key)
        if isinstance(text, str) and _SLASHED_START.match(text) and parse_slashed_date(text) is None:
            # feedparser's fallback guessed the month and day from today's date: not the feed's date.
            continue
        when = _struct_to_datetime(_get(raw, f"{key}_parsed"))
        if when is not None:
            if when > now + FUTURE_TOLERANCE:
                return None
            return when
    return None


def _text_of(raw: Mapping[str, Any], key: str) -> str:
    value = _get(raw, key)
    return value if isinstance(value, str) else ""


def _summary_source(raw: Mapping[str, Any]) -> str:
    summary = _text_of(raw, "summary")
    if summary:
        return summary
    content = _get(raw, "content")
    if isinstance(content, list):
        for part in content:
            value = part.get("value") if isinstance(part, Mapping) else None
            if isinstance(value, str) and value.strip():
                return value
    return ""


def _entry_language(raw: Mapping[str, Any]) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = _get(raw, key)
        if isinstance(detail, Mapping):
            lang = normalise_language(detail.get("language"))
            if lang:
                return lang
    return None


@dataclass(slots=True)
class _Draft:
    url: str | None
    title: str
    summary: str
    published_at: datetime | None
    language: str | None
    guid: str | None


def _draft(raw: Mapping[str, Any], base: str | None, now: datetime) -> _Draft | None:
    title = truncate(clean_text(_text_of(raw, "title"), literal_unknown=True), MAX_TITLE_CHARS)
    summary = truncate(clean_text(_summary_source(raw)), MAX_SUMMARY_CHARS)
    guid = _text_of(raw, "id").strip() or None
    url = canonical_url(_text_of(raw, "feedburner_origlink"))
    if url is None:
        link = _text_of(raw, "link")
        if _get(raw, "guidislink") and guid and link in (guid, urljoin(base or "", guid)):
            # feedparser copied a "permalink" GUID into the link (resolving it against the feed's address):
            # trust it only if the GUID itself is an absolute URL.
            url = canonical_url(guid)
        else:
            url = canonical_url(link, base)
    if url is None and guid and guid.startswith(("http://", "https://")):
        url = canonical_url(guid)  # an absolute http(s) GUID is the best address left
    if not title:
        title = truncate(summary, 160) if summary else ""
    if not title and url is None:
        return None
    if not title and url is not None:
        title = url  # untitled and without text: titled by its link, as feed readers do
    return _Draft(url, title, summary, _entry_date(raw, now), _entry_language(raw), guid)


def _assign_ids(drafts: list[_Draft], feed_id: str, site: str | None) -> list[FeedEntry]:
    """Derive ids: the URL when it names this one article, else the GUID if unique here, else the content."""
    titles_by_url: dict[str, set[str]] = {}
    for d in drafts:
        if d.url:
            titles_by_url.setdefault(d.url, set()).add(" ".join(tokens(d.title)))
    guid_counts = Counter(d.guid for d in drafts if d.guid)
    entries = []
    for d in drafts:
        basis: IdBasis
        published = d.published_at.isoformat() if d.published_at else ""
        content_id = article_id_for_content(feed_id, d.title, published + "\x00" + d.summary[:200])
        also: tuple[str, ...] = ()
        # A URL shared by entries with different headlines (beyond case and punctuation), or the site's
        # home page, does not name an article.
        if d.url and d.url != site and len(titles_by_url[d.url]) == 1:
            article_id, basis = article_id_for_url(d.url), "url"
        elif d.guid and guid_counts[d.guid] == 1 and len(d.guid) <= 2048:
            # GUIDs may change on every fetch: the content is a second key, so such an entry is seen again.
            article_id, basis, also = article_id_for_guid(feed_id, d.guid), "guid", (content_id,)
        else:
            article_id, basis = content_id, "content"
        entries.append(
            FeedEntry(
                article_id=article_id,
                url=d.url or "",
                title=d.title,
                summary=d.summary,
                published_at=d.published_at,
                language=d.language,
                guid=d.guid,
                id_basis=basis,
                also_known_as=also,
            )
        )
    return entries


def _ttl(feed: Mapping[str, Any]) -> timedelta | None:
    value = feed.get("ttl")
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return timedelta(minutes=minutes) if 0 < minutes <= 7 * 24 * 60 else None


def _describe_bozo(result: Mapping[str, Any]) -> str:
    exc = result.get("bozo_exception")
    if exc is None:
        return "malformed document"
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _with_defused(reason: str, defused: bool) -> str:
    return f"{reason}; {DEFUSED_NOTE}" if defused else reason


def _problem(bozo: str | None, defused: bool) -> str | None:
    if bozo is None:
        return DEFUSED_NOTE if defused else None
    return _with_defused(bozo, defused)


def parse_feed(
    body: bytes,
    *,
    feed_id: str,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    language: str | None = None,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse and normalise a feed document.

    ``url`` is where the document was fetched from (the final URL after redirects): relative links are
    resolved against it, or against the feed's own ``<link>`` when there is no HTTP URL (a local file).
    ``language`` overrides the language the feed declares. Raises FetchError(outcome="parse_error") when
    the bytes are not a feed or yield no entries because they are broken.
    """
    now = now or datetime.now(UTC)
    if not body.strip():
        raise FetchError("empty document", outcome="parse_error")
    if _looks_like_json(body):
        fields, items, kind = _json_feed(body)
        return _normalise(fields, items, kind, feed_id=feed_id, url=url, language=language, now=now)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    # No Content-Location: feedparser would resolve GUIDs against it too, turning a bare GUID ("1234") into a
    # made-up URL. Links are resolved here instead (xml:base inside the document still applies).
    wanted: dict[str, str] = {k: lowered[k] for k in ("content-type", "content-language") if k in lowered}
    data = to_ascii_compatible(body, wanted)
    try:
        data, encoding_problem = to_utf8(data, wanted)
        # What feedparser parses is exactly what defuse returns: decoding it again as UTF-8 changes nothing.
        data, defused = defuse(data)
        result = feedparser.parse(
            io.BytesIO(data),
            response_headers=utf8_headers(wanted),
            resolve_relative_uris=False,
            sanitize_html=False,
        )
    except Exception as exc:  # feedparser has no exception hierarchy; anything it raises is a parse failure
        raise FetchError(f"feedparser failed: {type(exc).__name__}: {exc}", outcome="parse_error") from exc
    if encoding_problem is not None and not result.get("bozo"):
        # As feedparser reports it when it decodes the original: a parse error takes precedence.
        result["bozo"], result["bozo_exception"] = True, encoding_problem
    feed: Mapping[str, Any] = result.get("feed", {})
    raw_entries: list[Mapping[str, Any]] = list(result.get("entries", []))
    version = str(result.get("version") or "")
    bozo = bool(result.get("bozo"))
    if not raw_entries and (bozo or not version):
        reason = "not an RSS or Atom feed" if not version else _describe_bozo(result)
        if bozo and not version:
            reason += f" ({_describe_bozo(result)})"
        raise FetchError(_with_defused(reason, defused), outcome="parse_error")
    parsed = _normalise(
        feed,
        raw_entries,
        version,
        feed_id=feed_id,
        url=url,
        language=language,
        now=now,
        bozo=_describe_bozo(result) if bozo else None,
    )
    return replace(parsed, problem=_problem(parsed.problem, defused))


def _normalise(
    feed: Mapping[str, Any],
    raw_entries: list[Mapping[str, Any]],
    version: str,
    *,
    feed_id: str,
    url: str | None,
    language: str | None,
    now: datetime,
    bozo: str | None = None,
) -> ParsedFeed:
    """Feed-level fields and entries (feedparser's shape) to a :class:`ParsedFeed`."""
    base = url if url and url.startswith(("http://", "https://")) else None
    site = canonical_url(_text_of(feed, "link"), base)
    if base is None:
        base = site
    feed_language = normalise_language(language) or normalise_language(feed.get("language"))
    drafts = []
    skipped = 0
    for raw in raw_entries:
        draft = _draft(raw, base, now)
        if draft is None:
            skipped += 1
            continue
        if language:
            draft.language = feed_language
        else:
            draft.language = draft.language or feed_language
        drafts.append(draft)
    if not drafts and bozo:
        raise FetchError(f"no usable entries in a broken document ({bozo})", outcome="parse_error")
    return ParsedFeed(
        entries=tuple(_assign_ids(drafts, feed_id, site)),
        title=clean_text(_text_of(feed, "title")),
        link=site,
        version=version,
        ttl=_ttl(feed),
        problem=bozo,
        skipped=skipped,
    )


# --------------------------------------------------------------------------------------------------
# JSON Feed (https://jsonfeed.org/version/1.1), read into feedparser's shape


JSON_FEED_VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
}


def _looks_like_json(body: bytes) -> bool:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return head == b"{"


def _json_time(value: object) -> tuple[str, time.struct_time] | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return value, when.astimezone(UTC).utctimetuple()


def _json_feed(body: bytes) -> tuple[dict[str, Any], list[Mapping[str, Any]], str]:
    """A JSON Feed's feed fields and items as feedparser would give them for RSS or Atom."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FetchError(f"a JSON feed must be UTF-8 ({exc.reason})", outcome="parse_error") from exc
    except RecursionError as exc:
        raise FetchError("JSON nested too deeply", outcome="parse_error") from exc
    except json.JSONDecodeError as exc:
        raise FetchError(f"not an RSS, Atom or JSON feed (JSON: {exc.msg})", outcome="parse_error") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FetchError("not a JSON feed (no items list)", outcome="parse_error")
    version = JSON_FEED_VERSIONS.get(str(doc.get("version", "")).rstrip("/"), "json")
    language = doc.get("language") if isinstance(doc.get("language"), str) else None
    feed: dict[str, Any] = {
        "title": doc.get("title") if isinstance(doc.get("title"), str) else "",
        "link": doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else "",
        "language": language,
    }
    entries: list[Mapping[str, Any]] = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        entry: dict[str, Any] = {}
        for key, source in (("title", "title"), ("link", "url"), ("id", "id")):
            value = item.get(source)
            if isinstance(value, int | float) and not isinstance(value, bool) and key == "id":
                value = str(value)
            if isinstance(value, str):
                entry[key] = value
        if "link" not in entry and isinstance(item.get("external_url"), str):
            entry["link"] = item["external_url"]
        for key in ("summary", "content_html", "content_text"):
            if isinstance(item.get(key), str) and item[key].strip():
                entry["summary"] = item[key]
                break
        for key, source in (("published", "date_published"), ("updated", "date_modified")):
            parsed = _json_time(item.get(source))
            if parsed is not None:
                entry[key], entry[f"{key}_parsed"] = parsed
        if isinstance(item.get("language"), str):
            entry["title_detail"] = {"language": item["language"]}
        entries.append(entry)
    return feed, entries, version
