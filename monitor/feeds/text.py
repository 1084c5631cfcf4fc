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
# C0/C1 controls other than whitespace, the Unicode "non-characters" some feeds carry, and invisible
# format characters that can hide or reorder text: bidi marks, embeddings, overrides and isolates, the
# zero-width space, word joiner and invisible operators, the BOM. ZWJ and ZWNJ (U+200C, U+200D) stay:
# Devanagari and other Indian scripts need them to shape conjuncts.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
    "\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# Every HTML element name: in a title, a tag that is none of these is literal text ("a self-closing <tag>").
HTML_ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "area",
        "article",
        "aside",
        "audio",
        "b",
        "base",
        "basefont",
        "bdi",
        "bdo",
        "big",
        "blink",
        "blockquote",
        "body",
        "br",
        "button",
        "canvas",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "data",
        "datalist",
        "dd",
        "del",
        "details",
        "dfn",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "font",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hgroup",
        "hr",
        "html",
        "i",
        "iframe",
        "img",
        "input",
        "ins",
        "kbd",
        "label",
        "legend",
        "li",
        "link",
        "main",
        "map",
        "mark",
        "marquee",
        "menu",
        "meta",
        "meter",
        "nav",
        "nobr",
        "noframes",
        "noscript",
        "object",
        "ol",
        "optgroup",
        "option",
        "output",
        "p",
        "param",
        "picture",
        "pre",
        "progress",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "script",
        "search",
        "section",
        "select",
        "slot",
        "small",
        "source",
        "span",
        "strike",
        "strong",
        "style",
        "sub",
        "summary",
        "sup",
        "svg",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "time",
        "title",
        "tr",
        "track",
        "tt",
        "u",
        "ul",
        "var",
        "video",
        "wbr",
    ]
)
_MARKUP_HINT = re.compile(r"<[A-Za-z!/]")


class _TextExtractor(HTMLParser):
    def __init__(self, *, literal_unknown: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._literal_unknown = literal_unknown

    def _literal(self, tag: str, text: str | None) -> bool:
        if self._literal_unknown and tag not in HTML_ELEMENTS and ":" not in tag and text:
            if not self._skip:
                self.parts.append(text)
            return True
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._literal(tag, self.get_starttag_text()):
            return
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._literal(tag, self.get_starttag_text()):
            return
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._literal(tag, f"</{tag}>"):
            return
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(value: str, *, literal_unknown: bool = False) -> str:
    """The text content of an HTML fragment (scripts and styles dropped, character references decoded).

    ``literal_unknown``: tags that are no HTML element (``<tag>``, ``</example>``) are kept as text."""
    if not _MARKUP_HINT.search(value):
        return html.unescape(value)
    parser = _TextExtractor(literal_unknown=literal_unknown)
    parser.feed(value)
    parser.close()
    return "".join(parser.parts)


def clean_text(value: str | None, *, literal_unknown: bool = False) -> str:
    """One line of plain text: HTML stripped, entities decoded (also when escaped twice), spaces collapsed,
    invisible format characters removed. ``literal_unknown`` keeps non-HTML tags as text (for titles,
    where ``<tag>`` is usually something written about, not markup)."""
    if not value:
        return ""
    text = strip_html(value.replace("<![CDATA[", "").replace("]]>", ""), literal_unknown=literal_unknown)
    # Entities escaped twice ("&amp;#8217;") survive one decoding; decode what is left, once more.
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if _MARKUP_HINT.search(text):  # markup that was escaped as text ("&lt;b&gt;"): strip that too
        text = strip_html(text, literal_unknown=literal_unknown)
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
