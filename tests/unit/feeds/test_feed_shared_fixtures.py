"""Every real-world feed file in ../shared/fixtures/feeds through ``monitor feeds check``.

The files stay outside the repository (used by path): without ../shared these tests skip, saying why.
None may crash or hang; the table below pins entry counts and a few titles, links and dates; the
encodings (windows-1251, gb2312, ISO-8859-1 without a declaration, Urdu) must come out as readable text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from feedtest import SHARED_FEEDS

from monitor.settings import Settings
from pipelines.feedtools import check

pytestmark = pytest.mark.skipif(
    not SHARED_FEEDS.is_dir(),
    reason=f"real-world feed files not available: {SHARED_FEEDS} is absent (they are never copied here)",
)

FILES = (
    sorted(p for p in SHARED_FEEDS.glob("*") if p.suffix not in (".md", ".tsv"))
    if SHARED_FEEDS.is_dir()
    else []
)


# A fixed "now", so that no parsed date can depend on the day the suite runs.
NOW = datetime(2031, 7, 15, 12, 0, tzinfo=UTC)


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]], list[str]]:
    code = check(argparse.Namespace(sources=[str(path)]), Settings(), clock=lambda: NOW)
    out, err = capsys.readouterr()
    entries = [json.loads(line) for line in out.splitlines()]
    return code, entries, [line for line in err.splitlines() if line.startswith("monitor feeds check:")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", FILES, ids=[p.name[-60:] for p in FILES])
def test_no_feed_file_crashes_or_hangs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, entries, errors = run_check(path, capsys)
    assert code in (0, 1)
    if code == 0:
        assert not errors
    else:
        assert entries == []
        assert len(errors) == 1 and "parse_error" in errors[0]
    for entry in entries:
        assert entry["type"] == "ArticleFetched"
        assert len(entry["article_id"]) == 24
        assert entry["url"] == "" or entry["url"].startswith(("http://", "https://"))
        assert entry["url"].strip() == entry["url"] and "#" not in entry["url"]
        assert "utm_" not in entry["url"]
        assert entry["title"] == " ".join(entry["title"].split())


# file (unique name part) -> (exit code, entries, index, title, url, published_at)
EXPECTED: dict[str, tuple[int, int, int, str, str, str | None]] = {
    "rssfeedstopstories.cms.xml": (
        0,
        18,
        0,
        "Congress poached & shrunk in Hyderabad, BJP & TRS make merry",
        "https://timesofindia.indiatimes.com/city/hyderabad/congress-poached-shrunk-in-"
        "hyderabad-bjp-trs-make-merry/articleshow/95795087.cms",
        "2022-11-26T23:22:04Z",
    ),
    "aktuality.rss": (
        0,
        30,
        0,
        "Analytici Goldman Sachs zvýšili odhad rastu ekonomiky USA",
        "https://www.aktuality.sk/clanok/856577/analytici-goldman-sachs-zvysili-odhad-rastu-ekonomiky-usa/",
        "2021-01-17T18:27:00Z",
    ),
    "kc0011.rss": (
        0,
        20,
        0,
        "建国35周年纪念，华表，和平鸽",
        "http://www.kc0011.net/dispbbs.asp?BoardID=10&ID=25164257&Page=1",
        "2020-01-10T14:33:00Z",  # the feed writes <pubDate>2020/1/10 14:33:00 (no zone: read as UTC)
    ),
    "livemint.xml": (
        0,
        25,
        0,
        "PM Modi-Xi Jinping informal summit in Varanasi this October: Report",
        "https://www.livemint.com/news/india/pm-modi-xi-jinping-informal-summit-in-varanasi-this-"
        "october-report-1559104147038.html",
        "2019-05-29T10:16:00Z",
    ),
    "macworld.rss": (
        0,
        30,
        0,
        "Best smart lock",
        "https://www.techhive.com/article/3212828/connected-home/best-smart-lock.html",
        "2017-11-28T23:40:00Z",
    ),
    "yakubin.atom": (
        0,
        12,
        0,
        "Thoughts about Prolog",
        "https://yakubin.com/notes/thoughts-about-prolog.html",
        "2025-01-17T00:00:00Z",
    ),
    "finance.ts.xml": (
        0,
        100,
        99,
        "A 11-year high of 55% urban residents report stagnant income in 2025",
        "https://www.thehindu.com/data/a-11-year-high-of-55-urban-residents-report-stagnant-"
        "income-in-2025/article69222301.ece",
        "2025-02-18T01:30:00Z",
    ),
    "toiNewsFallback.ts.xml": (
        0,
        48,
        0,
        "'Kaun sa dharm ganda hai?': BJP flays Mamata over 'provocative speech' at Eid event",
        "https://timesofindia.indiatimes.com/india/kaun-sa-dharm-ganda-hai-bjp-slams-"
        "mamata-banerjee-over-alleged-provocative-speech-on-eid/articleshow/119799583.cms",
        "2025-03-31T09:23:56Z",
    ),
    "guid-dupes.xml": (0, 1, 0, "Huh?", "http://www.braingle.com/50366.html", "2014-06-19T06:00:00Z"),
    "illegally-nested.xml": (
        0,
        10,
        9,
        "Is iPhone X Apple's Vista?",
        "http://feedproxy.google.com/~r/ziffdavis/pcmag/dvorak/~3/srg3z1A6poQ/0,2817,2523452,00.asp",
        "2017-11-01T13:00:00Z",
    ),
    "rss-with-relative-urls.xml": (
        0,
        2,
        1,
        "2x Underdark Currency & 15% off Bags!",
        "http://www.arcgames.com/en/games/PAB_nw/news/detail/10738994",
        "2017-12-07T15:00:00Z",
    ),
    "tpm.atom": (
        0,
        20,
        19,
        "GOP Rep. Dave Brat: Virginia GOP Didn't 'Nationalize' Election Enough",
        "http://talkingpointsmemo.com/livewire/dave-brat-virginia-republicans-nationalize-election",
        "2017-11-08T16:13:26Z",
    ),
    "rss_2.0_invalid_1.xml": (1, 0, -1, "", "", None),
    "rss_2.0_nbcny.xml": (
        0,
        1,
        0,
        "NYC cops search for stabbing suspect after leaving 18-year-old to bleed out on sidewalk",
        "https://www.nbcnewyork.com/news/local/nyc-cops-search-for-stabbing-suspect-after-"
        "leaving-18-year-old-to-bleed-out-on-sidewalk/4956764/",
        "2023-12-16T02:02:33Z",
    ),
    "reuters.js.xml": (
        0,
        10,
        0,
        "U.S. general says North Korea not demonstrated all components of ICBM",
        "http://www.reuters.com/article/us-northkorea-missiles-usa/u-s-general-says-north-korea-"
        "not-demonstrated-all-components-of-icbm-idUSKBN1FJ23Z?feedName=worldNews",
        "2018-01-30T17:29:57Z",
    ),
    "rss_empty_document.xml": (1, 0, -1, "", "", None),
    "rss_incomplete_cdata.xml": (1, 0, -1, "", "", None),
    # No title and no text: titled by its link, as feed readers (Miniflux) do.
    "corrupted_ampersands.xml": (0, 1, 0, "http://link/get?a=1&b=2", "http://link/get?a=1&b=2", None),
    "encoding_WINDOWS-1251.xml": (
        0,
        50,
        0,
        "Цитата #17703",
        "http://ibash.org.ru/quote.php?id=17703",
        "2018-03-21T07:27:32Z",
    ),
    "no_encoding_ISO-8859-1.xml": (
        0,
        9,
        8,
        "Psychologue à domicile : de la clinique à l'état brut",
        "https://le-cercle-psy.scienceshumaines.com/psychologue-a-domicile-de-la-"
        "clinique-a-l-etat-brut_sh_35540",
        "2018-10-17T10:30:00Z",
    ),
    "rdf_UTF8.xml": (
        0,
        60,
        0,
        "OLED-TVs: Vorsichtsmaßnahmen gegen Einbrennen",
        "https://www.heise.de/newsticker/meldung/OLED-TVs-Vorsichtsmassnahmen-gegen-Einbrennen-4205274.html",
        None,
    ),
    "urdu_UTF8.xml": (
        0,
        26,
        25,
        "پاکستان امریکہ تعلقات میں ’ڈو مور‘ کا نیا ایڈیشن جو آج تک چل رہا",
        "http://www.bbc.com/urdu/pakistan-42422392",
        "2017-12-20T12:23:23Z",
    ),
    "pt3__rssfeed.xml": (0, 6, 0, "Man killed in suspected tiger attack in UP", "", "2022-06-27T06:46:20Z"),
    "input__encoding.rss": (
        0,
        40,
        0,
        "Mãe de utente é a nova presidente da Raríssimas",
        "https://www.jn.pt/nacional/interior/sonia-laig-e-a-nova-presidente-da-rarissimas-9021600.html",
        "2018-01-03T13:47:00Z",
    ),
    "giantbomb-podcast.rss": (
        0,
        730,
        729,
        "Giant Bombcast Arrow Pointing Down Podcast Beta",
        "https://www.giantbomb.com/shows/arrow-pointing-down-podcast-beta/2970-17651/free-podcast",
        "2008-02-18T09:54:00Z",
    ),
    "guardian.rss": (
        0,
        55,
        0,
        "Trump State of the Union address promised unity but emphasized discord",
        "https://www.theguardian.com/us-news/2018/jan/31/donald-trump-state-of-the-union-address-"
        "unity-discord",
        "2018-01-31T07:26:05Z",
    ),
    "rss-1.rss": (
        0,
        69,
        0,
        "Food for fungi",
        "http://science.sciencemag.org/cgi/content/short/356/6343/1134-a",
        "2017-06-15T17:29:47Z",
    ),
    "uolNoticias.rss": (
        0,
        15,
        0,
        "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
        "https://noticias.uol.com.br/politica/eleicoes/2018/noticias/2018/09/24/ibope-bolsonaro-"
        "perde-de-haddad-ciro-e-alckmin-em-simulacoes-de-2-turno.htm",
        None,
    ),
}


def _find(part: str) -> Path:
    matches = [p for p in FILES if p.name.endswith(part)]
    assert len(matches) == 1, f"{part!r} names {len(matches)} files"
    return matches[0]


@pytest.mark.parametrize("part", sorted(EXPECTED))
def test_expected_entries(part: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, count, index, title, url, published = EXPECTED[part]
    got_code, entries, _ = run_check(_find(part), capsys)
    assert (got_code, len(entries)) == (code, count)
    if index < 0:
        return
    entry = entries[index]
    assert entry["title"] == title
    assert entry["url"] == url
    if published is not None:
        assert entry["published_at"] == published
    else:  # no usable date in the feed: first seen, i.e. now
        assert entry["published_at"] == entry["fetched_at"]


MOJIBAKE = ("Ã", "â€", "\ufffd", "Ð", "Ñ\x8f")


@pytest.mark.parametrize(
    ("part", "sample"),
    [
        ("encoding_WINDOWS-1251.xml", "Цитата"),
        ("kc0011.rss", "建国"),
        ("no_encoding_ISO-8859-1.xml", "à domicile"),
        ("uolNoticias.rss", "simulações"),
        ("input__encoding.rss", "Raríssimas"),
        ("urdu_UTF8.xml", "امریکی"),
        ("aktuality.rss", "zvýšili"),
        ("sanitisation.xml", "Невидимая"),
    ],
)
def test_encodings_come_out_readable(part: str, sample: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, entries, _ = run_check(_find(part), capsys)
    text = " ".join(e["title"] + " " + e["summary"] for e in entries)
    assert sample in text
    assert not [m for m in MOJIBAKE if m in text]


def test_a_broken_and_a_good_file_together(capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = _find("guid-dupes.xml"), _find("rss_2.0_invalid_1.xml")
    code = check(
        argparse.Namespace(sources=[str(good), str(bad), "/nonexistent/feed.xml"]),
        Settings(),
        clock=lambda: NOW,
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 1
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"monitor feeds check: {bad}: parse_error: ")
    assert errors[1].startswith("monitor feeds check: /nonexistent/feed.xml: unreadable: ")


def test_the_real_cli(tmp_path: Path) -> None:
    """The console script itself: JSON lines on stdout, one error line per bad feed, the exit status."""
    good, bad = _find("livemint.xml"), _find("rss_empty_document.xml")
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "feeds", "check", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 25
    mint = [e for e in lines if "currency" in e["title"].lower()]
    assert mint and mint[0]["relevance_hint"] >= 0.5  # "US takes India off watchlist for currency practices"
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "feeds", "check", str(bad), str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert len(run.stdout.splitlines()) == 25
    errors = [line for line in run.stderr.splitlines() if line.startswith("monitor feeds check:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"monitor feeds check: {bad}: parse_error: not an RSS or Atom feed")
    assert errors[0].endswith("no element found)")
