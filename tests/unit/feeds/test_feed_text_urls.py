"""Clean text and canonical URLs: table-driven."""

from __future__ import annotations

import pytest

from monitor.feeds.text import clean_text, truncate
from monitor.urls import (
    article_id_for_content,
    article_id_for_guid,
    article_id_for_url,
    canonical_url,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  India,\n   US\tagree  ", "India, US agree"),
        ("<p>New <b>tariff</b> roadmap</p><p>Second</p>", "New tariff roadmap Second"),
        ("<script>alert(1)</script>Visible<style>p{}</style>", "Visible"),
        ("Caf&eacute; &amp; bar &#8220;quoted&#8221; &hellip;", "Café & bar “quoted” …"),
        ("India &amp;amp; US", "India & US"),  # escaped twice
        ("&lt;b&gt;bold&lt;/b&gt; text", "bold text"),  # markup escaped as text
        ("non\u00a0breaking\u00a0space", "non breaking space"),
        ("<![CDATA[inside cdata]]>", "inside cdata"),
        ("ctrl\x00\x07chars\x1b", "ctrlchars"),
        ("e\u0301", "é"),  # NFC
        ("AT&T and R&D", "AT&T and R&D"),  # bare ampersands are text
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


def test_truncate_cuts_at_a_word_boundary() -> None:
    text = "India and the United States concluded talks on engines"
    assert truncate(text, 100) == text
    cut = truncate(text, 30)
    assert len(cut) <= 30
    assert cut.endswith("…")
    assert cut == "India and the United States…"


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("https://example.com/a?utm_source=rss&utm_medium=x", None, "https://example.com/a"),
        ("https://Example.COM:443/a/b?b=2&a=1#frag", None, "https://example.com/a/b?a=1&b=2"),
        ("http://example.com:80", None, "http://example.com/"),
        ("http://example.com:8080/x", None, "http://example.com:8080/x"),
        ("/news/1.html", "https://site.example/feeds/rss.xml", "https://site.example/news/1.html"),
        ("2.html", "https://site.example/feeds/rss.xml", "https://site.example/feeds/2.html"),
        ("\n   https://site.example/x   \n", None, "https://site.example/x"),
        ("https://site.example/a?fbclid=1&gclid=2&id=7&mc_cid=3", None, "https://site.example/a?id=7"),
        ("https://site.example/é?q=ä", None, "https://site.example/%C3%A9?q=%C3%A4"),
        ("https://site.example/a b", None, None),  # unencoded space: not a URL a feed meant
        ("https://site.example/a%20b", None, "https://site.example/a%20b"),  # existing escapes kept
        ("https://site.example/p?ref_src=twsrc&page=2", None, "https://site.example/p?page=2"),
        ("Man killed in suspected tiger attack", "https://pti.example/", None),  # headline as link
        ("mailto:desk@example.com", None, None),
        ("ftp://example.com/feed", None, None),
        ("/relative/without/base", None, None),
        ("", None, None),
        (None, None, None),
        ("https://[::1]:8443/x", None, "https://[::1]:8443/x"),
        ("https://bad.example:99999/", None, None),
    ],
)
def test_canonical_url(link: str | None, base: str | None, expected: str | None) -> None:
    assert canonical_url(link, base) == expected


def test_canonical_forms_share_one_article_id() -> None:
    variants = [
        "https://news.example/story?id=5&utm_campaign=feed",
        "https://NEWS.example:443/story?id=5#comments",
        "  https://news.example/story?fbclid=zzz&id=5 ",
    ]
    ids = {article_id_for_url(canonical_url(v) or "") for v in variants}
    assert len(ids) == 1
    (aid,) = ids
    assert len(aid) == 24 and int(aid, 16) >= 0


def test_guid_and_content_ids_are_scoped_to_the_feed() -> None:
    assert article_id_for_guid("a", "123") != article_id_for_guid("b", "123")
    assert article_id_for_guid("a", " 123 ") == article_id_for_guid("a", "123")
    assert article_id_for_content("a", "Title", "") == article_id_for_content("a", "TITLE", "")
    assert article_id_for_content("a", "Title", "") != article_id_for_content("a", "Title", "2026")
    assert article_id_for_url("https://x.example/1") != article_id_for_guid("a", "https://x.example/1")
