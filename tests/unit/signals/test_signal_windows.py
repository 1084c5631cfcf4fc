"""One window's signals: each story once, relevance weights, strained share, exact window bounds."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.signals.windows import (
    Article,
    TickView,
    duration_us,
    from_us,
    representatives,
    to_us,
    window_label,
    window_stats,
)

H = 3600 * 1_000_000


def art(
    aid: str,
    story: str,
    stance: float,
    *,
    relevance: float = 1.0,
    event_h: float = 0.0,
    label: str | None = None,
    subjects: tuple[str, ...] = ("overall", "trade_tariffs"),
) -> Article:
    if label is None:
        label = "strain" if stance <= -0.2 else "cooperation" if stance >= 0.2 else "neutral"
    event = int(event_h * H)
    return Article(
        article_id=aid,
        story_id=story,
        arrival_us=event,
        event_us=event,
        relevance=relevance,
        subjects=frozenset(subjects),
        stance=stance,
        label=label,
        title=aid,
        url=f"https://x/{aid}",
        source="Wire",
        evidence=None,
    )


def test_time_conversions_are_exact():
    t = datetime(2025, 8, 4, 7, 25, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(t)) == t
    assert duration_us(timedelta(hours=6)) == 6 * H
    assert [window_label(timedelta(hours=h)) for h in (6, 24, 168)] == ["6h", "24h", "7d"]
    assert window_label(timedelta(minutes=90)) == "90m"


def test_each_story_counts_once_however_many_copies():
    # One strained story syndicated ten times, two cooperative stories.
    copies = [art(f"w{i}", "wire", -0.8) for i in range(10)]
    stats = window_stats([*copies, art("a", "a", 0.4), art("b", "b", 0.4)])
    assert (stats.volume, stats.stories) == (12, 3)
    assert stats.stance_index == pytest.approx(0.0)  # (-0.8 + 0.4 + 0.4) / 3, not -0.6
    assert stats.strained_share == pytest.approx(1 / 3)


def test_index_is_relevance_weighted_and_story_is_its_most_relevant_copy():
    items = [
        art("a1", "a", -1.0, relevance=0.5),
        art("a2", "a", -0.2, relevance=0.9),  # the representative of story a
        art("b1", "b", 0.6, relevance=0.6),
    ]
    assert [a.article_id for a in representatives(items)] == ["a2", "b1"]
    stats = window_stats(items)
    assert stats.stance_index == pytest.approx((0.9 * -0.2 + 0.6 * 0.6) / 1.5)
    mean = (0.9 * -0.2 + 0.6 * 0.6) / 1.5
    spread = math.sqrt((0.9 * (-0.2 - mean) ** 2 + 0.6 * (0.6 - mean) ** 2) / 1.5)
    assert stats.stance_std == pytest.approx(spread, abs=1e-6)


def test_representative_ties_break_on_earliest_then_smallest_id():
    items = [art("z", "s", 0.1, event_h=2), art("y", "s", 0.2, event_h=1), art("x", "s", 0.3, event_h=1)]
    assert representatives(items)[0].article_id == "x"


def test_empty_window_has_no_index_and_no_share():
    stats = window_stats([])
    assert (stats.volume, stats.stories, stats.stance_index, stats.strained_share) == (0, 0, None, None)
    assert stats.value("volume") == 0.0
    with pytest.raises(ValueError, match="unknown signal"):
        stats.value("mood")


def test_values_do_not_depend_on_article_order():
    rng = random.Random(7)
    items = [art(f"a{i}", f"s{i % 13}", rng.uniform(-1, 1), relevance=rng.uniform(0.5, 1)) for i in range(60)]
    expected = window_stats(items)
    for _ in range(20):
        rng.shuffle(items)
        again = window_stats(items)
        assert (again.stance_index, again.strained_share, again.stance_std) == (
            expected.stance_index,
            expected.strained_share,
            expected.stance_std,
        )


def test_window_is_open_at_the_start_and_closed_at_the_end():
    view = TickView(
        24 * H,
        [art("old", "o", -1, event_h=0), art("edge", "e", 0.5, event_h=24), art("in", "i", 0.1, event_h=0.5)],
    )
    assert [a.article_id for a in view.articles("overall", 24 * H)] == ["in", "edge"]
    assert view.stats("trade_tariffs", 24 * H).stories == 2
    assert view.stats("defence", 24 * H).stories == 0


def test_bucket_counts_cover_the_windows_before_the_current_one():
    articles = [
        art(f"d{d}-{i}", f"d{d}-{i}", 0.0, event_h=d * 24 + 1)
        for d, n in enumerate([1, 2, 3])
        for i in range(n)
    ]
    view = TickView(3 * 24 * H, articles)
    assert view.stats("overall", 24 * H).stories == 3  # day 2, the current window
    assert view.bucket_counts("overall", 24 * H, 2, "stories") == [2, 1]


@pytest.mark.parametrize("subjects", list(itertools.combinations(["overall", "defence", "technology"], 2)))
def test_articles_count_for_each_of_their_subjects(subjects):
    view = TickView(H, [art("a", "a", 0.2, subjects=subjects, event_h=0.5)])
    for subject in ("overall", "defence", "technology"):
        assert view.stats(subject, H).volume == (1 if subject in subjects else 0)
