"""Near-duplicate story clustering: wire copies and headline edits join a story; unrelated ones do not."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedtest import FIXTURES

from monitor.feeds.cluster import StoryIndex, title_terms
from monitor.feeds.parse import parse_feed
from monitor.feeds.state import FeedState
from monitor.store.feeds import FeedStore

T = datetime(2026, 2, 3, 6, 0, tzinfo=UTC)
WIRE_FILES = ("wire-outlet-a.xml", "wire-outlet-b.xml", "wire-outlet-c.atom")


def _entries() -> list[tuple[str, object]]:
    out = []
    for name in WIRE_FILES:
        parsed = parse_feed((FIXTURES / name).read_bytes(), feed_id=name.split(".")[0], now=T)
        out.extend((name, e) for e in parsed.entries)
    return out


def test_wire_copies_across_outlets_share_one_story() -> None:
    index = StoryIndex()
    stories = {}
    for name, entry in _entries():
        member = index.assign(entry.article_id, entry.title, entry.summary, T)  # type: ignore[attr-defined]
        stories[(name, entry.title)] = member.story_id  # type: ignore[attr-defined]
    engine = [sid for (name, title), sid in stories.items() if "engine" in title.lower()]
    assert len(engine) == 3  # one headline per outlet, all different
    assert len(set(engine)) == 1
    others = [sid for (name, title), sid in stories.items() if "engine" not in title.lower()]
    assert len(set(others)) == len(others)  # every unrelated story on its own
    assert set(others).isdisjoint(engine)


def test_the_story_id_is_the_first_articles_id() -> None:
    index = StoryIndex()
    entries = [e for _, e in _entries() if "engine" in e.title.lower()]  # type: ignore[attr-defined]
    first = index.assign(entries[0].article_id, entries[0].title, entries[0].summary, T)  # type: ignore[attr-defined]
    assert first.story_id == entries[0].article_id  # type: ignore[attr-defined]
    again = index.assign(entries[0].article_id, "whatever", "", T)  # type: ignore[attr-defined]
    assert again == first  # an article keeps its story


def test_light_headline_edits_join_the_story() -> None:
    index = StoryIndex()
    a = index.assign("a1", "India, US agree to cut tariffs to 18% in first tranche of trade deal", "", T)
    b = index.assign("a2", "India and US agree to cut tariffs to 18% in first trade deal tranche", "", T)
    c = index.assign(
        "a3", "UPDATE: India, US agree to cut tariff to 18% in first tranche of trade deal", "", T
    )
    assert a.story_id == b.story_id == c.story_id == "a1"


UNRELATED = [
    "India, US sign ten-year defence framework",
    "India, US sign trade deal framework",
    "India and US discuss critical minerals supply chain",
    "US tariffs on Indian shrimp exports take effect",
    "US tariffs on Indian textiles hit Tiruppur units",
    "India buys more US LPG under annual contract",
    "Quad foreign ministers meet in Tokyo",
    "Trump skips Quad summit, citing schedule",
    "ISRO and NASA launch radar satellite",
    "H-1B visa fee hike rattles Indian IT firms",
    "Indian refiners cut Russian oil purchases after US sanctions",
    "US deports 104 Indian migrants on military plane",
    "India, US to co-produce Stryker armoured vehicles",
    "India and US agree on jet engine technology transfer",
    "US envoy visits Mumbai to meet business leaders",
    "India, US launch TRUST initiative on semiconductors",
]
LEADS = [
    "The agreement covers joint exercises, intelligence sharing and defence production over the next decade.",
    "Negotiators initialled a framework that lowers duties on farm goods and industrial products in stages.",
    "Officials mapped processing capacity for lithium and rare earths and agreed to fund pilot plants.",
    "Exporters in Andhra Pradesh said cancelled orders could cost the industry thousands of crore rupees.",
    "Garment units halted production as buyers put orders on hold after the duty increase took effect.",
    "State-run companies will import about two million tonnes of cooking gas from the Gulf Coast.",
    "Ministers reviewed maritime security cooperation and disaster relief coordination in the region.",
    "The president is not expected to attend the leaders meeting this year, according to officials.",
    "The satellite will map glaciers, wetlands and crop cycles with a synthetic aperture radar.",
    "Companies said the new fee would make it costlier to send engineers to client sites abroad.",
    "Refiners reviewed contracts to make sure no cargo came from the two sanctioned oil producers.",
    "Opposition lawmakers demanded a debate on the treatment of deportees who landed in Amritsar.",
    "The armoured vehicles will be assembled by a state-owned manufacturer under a licence deal.",
    "The engines for the fighter programme would be built at a plant in Bengaluru by 2028.",
    "The ambassador met bankers and start-up founders and spoke about investment flows.",
    "The initiative links research labs and chip designers and sets up a joint working group.",
]


def test_unrelated_stories_do_not_collide() -> None:
    index = StoryIndex()
    ids = [index.assign(f"u{i}", t, LEADS[i], T).story_id for i, t in enumerate(UNRELATED)]
    assert ids == [f"u{i}" for i in range(len(UNRELATED))]
    # and titles alone (no leads) do not collide either
    index = StoryIndex()
    ids = [index.assign(f"t{i}", t, "", T).story_id for i, t in enumerate(UNRELATED)]
    assert len(set(ids)) == len(UNRELATED)


def test_same_lead_under_unrelated_headline_still_joins() -> None:
    index = StoryIndex()
    lead = LEADS[0] + " " + LEADS[1]
    a = index.assign("x1", "Headline one", lead, T)
    b = index.assign("x2", "Something else entirely", LEADS[0] + " The pact also covers training.", T)
    assert a.story_id == b.story_id


def test_members_expire_after_the_window() -> None:
    index = StoryIndex(window=timedelta(hours=72))
    index.assign("old", "India, US wrap up jet engine co-production talks", "", T)
    later = index.assign(
        "new", "India, US wrap up jet engine co-production talks", "", T + timedelta(hours=73)
    )
    assert later.story_id == "new"
    assert len(index) == 1


def test_title_terms_drop_shared_words_and_fold_plurals() -> None:
    assert title_terms("India, U.S. sign tariffs deal; Trump says") == {"sign", "tariff", "deal"}


def test_the_index_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    store = FeedStore(tmp_path / "s.sqlite3")
    first = StoryIndex()
    pairs = list(itertools.islice(((f"u{i}", t) for i, t in enumerate(UNRELATED)), 5))
    members = [first.assign(aid, t, LEADS[i], T) for i, (aid, t) in enumerate(pairs)]
    store.commit(FeedState(feed_id="f", url="https://f.example/", created_at=T), now=T, stories=members)
    second = StoryIndex()
    for m in store.recent_stories(T - timedelta(hours=1)):
        second.add(m)
    assert len(second) == 5
    again = second.assign("copy", "Fresh headline", LEADS[2], T)  # a reprint of u2's lead
    assert again.story_id == "u2"
    assert store.recent_stories(T + timedelta(hours=1)) == []
    store.close()
