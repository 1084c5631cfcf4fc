"""Hostile documents: DTD and entity defusing cannot be skipped, whatever comes before the DOCTYPE.

Each document is written here. The bombs are small enough for a unit test (a 1 MB entity referenced 95
times would be 95 MB of text, feedparser's copies of it several times that); the check is on what
feedparser itself returned (before :func:`parse_feed` truncates titles and summaries), so an expansion
cannot hide behind the truncation.
"""

from __future__ import annotations

import codecs
import io
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
import pytest
from feedserver import rss_feed

from monitor.errors import FetchError
from monitor.feeds.parse import DEFUSED_NOTE, ParsedFeed, defuse, parse_feed, to_utf8, utf8_headers

MB = 1024 * 1024

BODY = (
    "<rss version='2.0'><channel><title>Hostile feed</title><link>https://h.example/</link>"
    "<item><title>India US talks {ref}</title><link>https://h.example/1</link>"
    "<description>{refs}</description></item>"
    "<item><title>A harmless second item</title><link>https://h.example/2</link>"
    "<description>Plain text.</description></item>"
    "</channel></rss>"
)


def laughs_subset() -> str:
    lines = ['<!ENTITY lol "lol">']
    for level in range(1, 10):
        lines.append(f'<!ENTITY lol{level} "' + f"&lol{level - 1 if level > 1 else ''};" * 10 + '">')
    return "<!DOCTYPE rss [\n" + "\n".join(lines) + "\n]>\n"


def big_entity_subset(size: int = MB) -> str:
    return '<!DOCTYPE rss [\n<!ENTITY big "' + "x" * size + '">\n]>\n'


def laughs_body() -> str:
    return BODY.format(ref="&lol9;", refs="&lol9;" * 10)


def big_body(refs: int = 95) -> str:
    return BODY.format(ref="&big;", refs="&big;" * (refs - 1))


DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
COMMENT_WITH_A = "<!-- served by <a href='https://h.example/'>our CMS</a> -->\n"


class Raw:
    """What feedparser returned, in characters of feed and entry text."""

    def __init__(self) -> None:
        self.chars: list[int] = []


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch) -> Raw:
    seen = Raw()
    original = feedparser.parse

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        chars = len(str(result.feed.get("title", "")))
        for entry in result.entries:
            chars += len(str(entry.get("title", ""))) + len(str(entry.get("summary", "")))
        seen.chars.append(chars)
        return result

    monkeypatch.setattr(feedparser, "parse", spy)
    return seen


def bounded(fn: Callable[[], ParsedFeed]) -> tuple[ParsedFeed, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = fn()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def assert_defused(parsed: ParsedFeed, raw: Raw) -> None:
    assert raw.chars and max(raw.chars) < MB  # nothing expanded, not even before truncation
    text = "".join(e.title + e.summary for e in parsed.entries)
    assert "lollol" not in text and "xxxxxxxxxx" not in text
    assert [e.url for e in parsed.entries] == ["https://h.example/1", "https://h.example/2"]
    assert parsed.entries[1].summary == "Plain text."
    assert parsed.problem is not None and DEFUSED_NOTE in parsed.problem  # reported, not silent


def parse(body: bytes, **kwargs: Any) -> ParsedFeed:
    return parse_feed(body, feed_id="hostile", **kwargs)


# -- what comes before the DOCTYPE -----------------------------------------------------------------------


def test_a_comment_holding_a_tag_before_a_billion_laughs(raw: Raw) -> None:
    body = (DECL + COMMENT_WITH_A + laughs_subset() + laughs_body()).encode()
    parsed, elapsed, peak = bounded(lambda: parse(body))
    assert elapsed < 5.0
    assert peak < 20 * MB
    assert_defused(parsed, raw)
    assert parsed.entries[0].title == "India US talks &lol9;"  # the reference stays a reference


def test_a_comment_holding_a_tag_before_one_big_entity_referenced_95_times(raw: Raw) -> None:
    body = (DECL + COMMENT_WITH_A + big_entity_subset() + big_body(95)).encode()
    parsed, elapsed, peak = bounded(lambda: parse(body))
    assert elapsed < 5.0
    assert peak < 30 * MB  # the 1 MB document and its decoded copies; expanded it would be 95 MB and more
    assert_defused(parsed, raw)
    assert sum(len(e.title) + len(e.summary) for e in parsed.entries) < MB


@pytest.mark.parametrize(
    "before",
    [
        '<?xml-stylesheet type="text/xsl" href="feed.xsl"?>\n',
        "<?xml-stylesheet href='<a.xsl'?>\n",  # a '<' and a letter inside the instruction
        "<?cms <a <!DOCTYPE x [<!ENTITY y 'z'>]> ?>\n",
    ],
)
def test_a_processing_instruction_before_the_doctype(raw: Raw, before: str) -> None:
    body = (DECL + before + big_entity_subset() + big_body()).encode()
    assert_defused(parse(body), raw)


def test_the_doctype_after_comments_and_whitespace(raw: Raw) -> None:
    prolog = DECL + "\n\n  <!-- one -->\n\t<!-- <!DOCTYPE decoy> <b> -->\r\n" + COMMENT_WITH_A + "\n   "
    body = (prolog + big_entity_subset() + "\n<!-- after -->\n" + big_body()).encode()
    assert_defused(parse(body), raw)


def test_a_second_doctype_after_a_harmless_one(raw: Raw) -> None:
    first = '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "rss-0.91.dtd">\n'
    body = (DECL + first + COMMENT_WITH_A + big_entity_subset() + big_body()).encode()
    assert_defused(parse(body), raw)


def test_no_doctype_no_xml_declaration_just_comments(raw: Raw) -> None:
    body = (COMMENT_WITH_A + "<!-- x -->" + big_entity_subset() + big_body()).encode()
    assert_defused(parse(body), raw)


# -- feedparser's own prolog scan re-declares entities it finds as text -----------------------------------


@pytest.mark.parametrize(
    "prolog",
    [
        # a DOCTYPE without internal subset, the entity "commented out" on a line of its own
        '<!DOCTYPE rss>\n<!--\n<!ENTITY big "' + "x" * MB + '">\n-->\n',
        # the entity inside the DOCTYPE's system literal
        "<!DOCTYPE rss SYSTEM '\n<!ENTITY big \"" + "x" * MB + "\">'>\n",
        # inside a processing instruction
        '<?cms\n<!ENTITY big "' + "x" * MB + '">?>\n<!DOCTYPE rss>\n',
    ],
    ids=["commented-out", "system-literal", "processing-instruction"],
)
def test_entity_text_that_feedparser_would_redeclare(raw: Raw, prolog: str) -> None:
    body = (DECL + prolog + big_body()).encode()
    assert_defused(parse(body), raw)


def test_garbage_before_the_doctype(raw: Raw) -> None:
    body = (DECL + "junk\n" + big_entity_subset() + big_body()).encode()
    try:
        parsed = parse(body)
    except FetchError as exc:  # garbage may also be refused: then it says why, and what was removed
        assert DEFUSED_NOTE in str(exc)
    else:
        assert raw.chars and max(raw.chars) < MB
        assert "xxxxxxxxxx" not in "".join(e.summary for e in parsed.entries)


# -- encodings that hide the declarations from a scan of the raw bytes ------------------------------------


# Expat's own amplification limit (100 times, past 8 MB) stops the billion laughs when it reaches expat
# whole; the single big entity stays under it, so it is the bomb these tests use.
BOMBS = [
    pytest.param(lambda: big_entity_subset() + big_body(), id="big-entity"),
    pytest.param(lambda: laughs_subset() + laughs_body(), id="laughs"),
]


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_utf16_or_32_document_with_a_bomb(raw: Raw, codec: str, bomb: Callable[[], str]) -> None:
    text = DECL.replace("utf-8", codec) + COMMENT_WITH_A + bomb()
    body = text.encode(codec)  # utf-16 and utf-32 write a BOM, the -le/-be forms none
    assert_defused(parse(body), raw)


def test_a_utf16_document_opening_with_a_comment_and_no_bom(raw: Raw) -> None:
    body = (COMMENT_WITH_A + big_entity_subset(64 * 1024) + big_body()).encode("utf-16-le")
    assert not body.startswith(codecs.BOM_UTF16_LE)
    assert_defused(parse(body), raw)


def _utf7_markup(text: str) -> str:
    """``<`` and ``>`` written as UTF-7 base64 runs: no ``<!DOCTYPE`` or ``<!ENTITY`` in the bytes."""
    return text.replace("<", "+ADw-").replace(">", "+AD4-")


def test_a_utf7_document_cannot_smuggle_a_doctype(raw: Raw) -> None:
    hidden = _utf7_markup(COMMENT_WITH_A + big_entity_subset())
    body = ('<?xml version="1.0" encoding="utf-7"?>\n' + hidden + big_body()).encode("ascii")
    assert b"<!ENTITY" not in body and b"<!DOCTYPE" not in body
    assert "<!ENTITY big" in body.decode("utf-7")  # what a parser reading it as declared sees
    assert_defused(parse(body), raw)


def test_a_utf7_charset_in_the_http_header_cannot_smuggle_a_doctype(raw: Raw) -> None:
    body = (_utf7_markup(COMMENT_WITH_A + big_entity_subset()) + big_body()).encode("ascii")
    parsed = parse(body, headers={"Content-Type": "application/rss+xml; charset=utf-7"})
    assert_defused(parsed, raw)


def test_an_ebcdic_document_with_a_bomb(raw: Raw) -> None:
    text = '<?xml version="1.0" encoding="cp037"?>\n' + COMMENT_WITH_A + big_entity_subset() + big_body()
    body = text.encode("cp037")
    assert b"<!ENTITY" not in body
    assert_defused(parse(body), raw)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ((DECL + COMMENT_WITH_A + laughs_subset() + laughs_body()).encode(), {}),
        (b'<?xml version="1.0" encoding="utf-7"?>\n+ADw-!-- x --+AD4-<rss/>', {}),
        ('<?xml version="1.0" encoding="cp037"?>\n<rss>é</rss>'.encode("cp037"), {}),
        ("<rss>Ñandú</rss>".encode("latin-1"), {"content-type": "text/xml; charset=iso-8859-1"}),
        ("<rss>Ñandú</rss>".encode(), {"content-type": "text/xml"}),  # declared us-ascii: overridden
        (b"  <?xml version='1.0'?><rss/>", {}),  # a declaration not at the start
    ],
)
def test_feedparser_reads_exactly_what_defuse_returned(body: bytes, headers: dict[str, str]) -> None:
    decoded, _ = to_utf8(body, headers)
    defused, _ = defuse(decoded)
    assert to_utf8(defused, utf8_headers(headers)) == (defused, None)


def test_the_encoding_problem_feedparser_reports_is_still_reported() -> None:
    body = rss_feed(_items()).replace(b"Summary one.", "Résumé.".encode())
    headers = {"Content-Type": "text/xml"}  # no charset: US-ASCII by RFC 3023, feedparser falls back
    alone = feedparser.parse(io.BytesIO(body), response_headers={"content-type": "text/xml"})
    parsed = parse(body, headers=headers)
    assert parsed.problem is not None
    assert parsed.problem.startswith(type(alone.bozo_exception).__name__)
    assert parsed.entries[0].summary == "Résumé."


# -- external entities -----------------------------------------------------------------------------------


def test_external_entities_are_never_resolved(raw: Raw, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER", encoding="utf-8")
    subset = (
        "<!DOCTYPE rss [\n"
        '<!ENTITY passwd SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY secret SYSTEM "{secret.as_uri()}">\n'
        f'<!ENTITY % remote SYSTEM "{secret.as_uri()}">\n%remote;\n'
        "]>\n"
    )
    body = (DECL + COMMENT_WITH_A + subset + BODY.format(ref="&secret;", refs="&passwd;&secret;")).encode()
    parsed = parse(body)
    text = parsed.title + "".join(e.title + e.summary for e in parsed.entries)
    assert "TOP-SECRET-MARKER" not in text
    assert "root:" not in text
    assert parsed.problem is not None and DEFUSED_NOTE in parsed.problem


# -- real feeds are unchanged ----------------------------------------------------------------------------


def _items() -> list[dict[str, object]]:
    return [
        {"title": "India, US sign trade pact", "link": "https://n.example/1", "description": "Summary one."},
        {"title": "Envoy meets USTR", "link": "https://n.example/2", "description": "Summary two."},
    ]


def test_a_normal_feed_with_a_comment_before_it_parses_the_same() -> None:
    plain = rss_feed(_items())
    decl, rest = plain.split(b"?>", 1)
    commented = decl + b"?>\n" + COMMENT_WITH_A.encode() + b"<!-- generator: cms 4.2 -->" + rest
    expected = parse(plain)
    got = parse(commented)
    assert got.entries == expected.entries
    assert [e.title for e in got.entries] == ["India, US sign trade pact", "Envoy meets USTR"]
    assert (got.title, got.version, got.problem) == (expected.title, "rss20", None)


def test_an_xhtml_dtd_reference_keeps_named_html_entities() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<!-- feed -->\n'
        b'<!DOCTYPE rss PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        b"<rss version='2.0'><channel><title>t</title><item><title>India&nbsp;&amp; US &mdash; talks</title>"
        b"<link>https://x.example/1</link></item></channel></rss>"
    )
    parsed = parse(body)
    assert parsed.entries[0].title == "India & US — talks"
    assert parsed.problem is None or DEFUSED_NOTE not in parsed.problem


# -- defuse on its own -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected", "defused"),
    [
        (b"<!-- <a --><!DOCTYPE x [<!ENTITY a 'b'>]><x/>", b"<!DOCTYPE x><x/>", True),
        (b'<?xml version="1.0"?>\n<!-- c -->\n<x/>', b'<?xml version="1.0"?>\n\n<x/>', False),
        (b"<?pi <a?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>", b"<!DOCTYPE x><x/>", True),
        (b"<!-- <!ENTITY a 'b'> --><x/>", b"<x/>", True),
        (b"<!doctype x [<!ENTITY a 'b'>]><x/>", b"<!doctype x><x/>", True),
        (b"<!DOCTYPE x SYSTEM '<!ENTITY a \"b\">'><x/>", b"<x/>", True),
        (b"junk <!ENTITY a 'b'> <x/>", b"junk &lt;!ENTITY a 'b'> <x/>", True),
        (b"<x><!-- <!ENTITY a 'b'> --></x>", b"<x><!-- <!ENTITY a 'b'> --></x>", False),
        (b"<!-- unterminated <!ENTITY a 'b'>", b"<!-- unterminated &lt;!ENTITY a 'b'>", True),
    ],
)
def test_defuse_rebuilds_the_prolog(doc: bytes, expected: bytes, defused: bool) -> None:
    assert defuse(doc) == (expected, defused)


def test_defuse_leaves_a_feed_without_prolog_markup_alone() -> None:
    body = rss_feed(_items())
    out, defused = defuse(body)
    assert out is body
    assert not defused
