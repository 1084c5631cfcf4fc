"""Clean text from feed fields: HTML stripped, entities decoded, whitespace collapsed.

Feeds put anything in a title or description: HTML fragments, CDATA with markup, entities escaped once or
twice, non-breaking spaces, line-wrapped headlines. :func:`clean_text` turns all of that into one line of
plain, NFC-normalised text; :func:`truncate` shortens it at a word boundary.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "iframe", "object"})
_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
        "hr",
        "dd",
        "dt",
        "pre",
        "img",
    }
)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls other than whitespace, and the Unicode "non-characters" some feeds carry.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_MARKUP_HINT = re.compile(r"<[A-Za-z!/]")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(value: str) -> str:
    """The text content of an HTML fragment (scripts and styles dropped, character references decoded)."""
    if not _MARKUP_HINT.search(value):
        return html.unescape(value)
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return "".join(parser.parts)


def clean_text(value: str | None) -> str:
    """One line of plain text: HTML stripped, entities decoded (also when escaped twice), spaces collapsed."""
    if not value:
        return ""
    text = strip_html(value.replace("<![CDATA[", "").replace("]]>", ""))
    # Entities escaped twice ("&amp;#8217;") survive one decoding; decode what is left, once more.
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if _MARKUP_HINT.search(text):  # markup that was escaped as text ("&lt;b&gt;"): strip that too
        text = strip_html(text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return _WHITESPACE.sub(" ", text).strip()


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"
