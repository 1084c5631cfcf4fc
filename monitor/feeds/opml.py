"""Read feed lists from OPML (what feed readers export) into :class:`FeedConfig` entries.

Every ``<outline>`` with an ``xmlUrl`` is a feed; the texts of the outlines around it (folders) and its
``category`` attribute become tags. Ids are slugs of the titles, made unique. Entity declarations are
removed before parsing, as for feeds.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import ValidationError

from monitor.errors import OpmlError
from monitor.feeds.model import FeedConfig
from monitor.feeds.parse import defuse, to_utf8
from monitor.urls import redact_url


@dataclass(frozen=True, slots=True)
class OpmlResult:
    """Feeds read from an OPML file, and the outlines that could not become feeds (with the reason)."""

    feeds: tuple[FeedConfig, ...]
    rejected: tuple[tuple[str, str], ...]


def slugify(text: str, *, fallback: str = "feed") -> str:
    """A FeedConfig id: lower-case ASCII letters, digits and '-', at most 48 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:48].strip("-")
    return slug or fallback


def _tags(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        for part in re.split(r"[,/]", value):
            tag = slugify(part, fallback="")
            if tag and tag not in out:
                out.append(tag)
    return tuple(out)


def read_opml(data: bytes, *, taken_ids: Iterable[str] = ()) -> OpmlResult:
    """Parse OPML bytes into feeds; ``taken_ids`` are ids already in use (new ids avoid them)."""
    try:
        # Defusing reads the characters the XML parser reads (a UTF-16 document hides "<!ENTITY" from a
        # scan of its bytes), so the document is decoded to UTF-8 first, by the feeds' rules.
        data, _ = to_utf8(data, {})
    except UnicodeError as exc:
        raise OpmlError(f"cannot decode the document: {exc}") from exc
    data, _ = defuse(data)
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError) as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from exc
    if root.tag.lower() != "opml":
        raise OpmlError(f"the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("no <body> element")
    used = set(taken_ids)
    feeds: list[FeedConfig] = []
    rejected: list[tuple[str, str]] = []

    def walk(element: ET.Element, folders: list[str]) -> None:
        for outline in element.findall("outline"):
            attrs = {k.lower(): v for k, v in outline.attrib.items()}
            label = (attrs.get("title") or attrs.get("text") or "").strip()
            url = (attrs.get("xmlurl") or "").strip()
            if not url:
                walk(outline, [*folders, label] if label else folders)
                continue
            if url.startswith("feed://"):
                url = "http://" + url[len("feed://") :]
            name = label or urlsplit(url).hostname or redact_url(url)
            base = slugify(label or (urlsplit(url).hostname or ""))
            feed_id, n = base, 2
            while feed_id in used:
                feed_id, n = f"{base}-{n}", n + 1
            fields: dict[str, object] = {
                "id": feed_id,
                "url": url,
                "name": name,
                "tags": _tags([*folders, attrs.get("category", "")]),
            }
            language = (attrs.get("language") or "").strip()
            if language:
                fields["language"] = language
            try:
                feed = FeedConfig.model_validate(fields)
            except ValidationError as exc:
                error = exc.errors()[0]
                rejected.append((url, f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"))
                continue
            used.add(feed_id)
            feeds.append(feed)

    walk(body, [])
    return OpmlResult(feeds=tuple(feeds), rejected=tuple(rejected))
