"""The signal engine's clock: dedup, lateness, per-partition arrival order, watermark, ticks, eviction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fixtures.scenarios import article

from monitor.signals.engine import SignalEngine, SignalParams
from monitor.signals.windows import from_us, to_us

START = datetime(2025, 8, 4, tzinfo=UTC)
M = 60 * 1_000_000


def params(**overrides) -> SignalParams:
    values = {
        "windows": (timedelta(hours=6), timedelta(hours=24)),
        "allowed_lateness": timedelta(hours=6),
        "span": timedelta(hours=24),
        "step": timedelta(minutes=5),
        "grace": timedelta(minutes=3),
    }
    values.update(overrides)
    return SignalParams(**values)


def make(aid: str, t: str, **spec):
    spec.setdefault("story", aid)
    spec.setdefault("topics", ["trade_tariffs"])
    return article(START, {"id": aid, "t": t, **spec})


def at(offset_minutes: float) -> int:
    return to_us(START) + int(offset_minutes * M)


def never_active() -> bool:
    return False


def test_each_article_id_counts_once():
    engine = SignalEngine(params())
    first = engine.ingest(make("a", "1h"), partition="p0")
    again = engine.ingest(make("a", "1h", fetched="3h"), partition="p0")
    assert (first.outcome, again.outcome) == ("accepted", "duplicate")
    assert list(engine.state.articles) == ["a"]


def test_articles_later_than_the_allowed_lateness_are_dropped_not_counted():
    engine = SignalEngine(params())
    ok = engine.ingest(make("ok", "0h", fetched="5h59m"), partition="p0")
    late = engine.ingest(make("late", "0h", fetched="6h01m"), partition="p0")
    assert (ok.outcome, late.outcome) == ("accepted", "dropped")
    assert late.lateness == timedelta(hours=6, minutes=1)
    assert "late" not in engine.state.articles
    assert "late" in engine.state.seen  # a redelivery is still recognised


def test_irrelevant_articles_and_topics_under_the_threshold():
    engine = SignalEngine(params(min_relevance=0.5, topic_threshold=0.5))
    assert engine.ingest(make("noise", "0h", relevance=0.3), partition="p0").outcome == "irrelevant"
    engine.ingest(make("mixed", "0h", topics={"defence": 0.8, "technology": 0.4}), partition="p0")
    assert engine.state.articles["mixed"].subjects == {"overall", "defence"}


def test_event_time_never_later_than_fetch_time():
    engine = SignalEngine(params())
    engine.ingest(make("future", "5h", fetched="1h"), partition="p0")  # a feed dating items ahead
    stored = engine.state.articles["future"]
    assert from_us(stored.event_us) == START + timedelta(hours=1)


def test_arrival_is_kept_in_partition_order_within_the_grace():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="2h"), partition="p0")
    engine.ingest(make("b", "0h", fetched="1h59m"), partition="p0")  # 1 minute out of order: fine
    engine.ingest(make("c", "0h", fetched="1h"), partition="p0")  # 1 hour out of order: held back
    engine.ingest(make("d", "0h", fetched="1h"), partition="p1")  # another partition: its own order
    scored = {k: from_us(v) - START for k, v in engine.state.seen.items()}
    # scored_at is fetched + 30s in the fixtures
    assert scored["b"] == timedelta(hours=1, minutes=59, seconds=30)
    assert scored["c"] == timedelta(hours=1, minutes=57, seconds=30)  # frontier 2h00m30s - 3m grace
    assert scored["d"] == timedelta(hours=1, seconds=30)


def test_watermark_waits_for_partitions_with_unread_records():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="1h"), partition="p0")
    engine.ingest(make("b", "0h", fetched="2h"), partition="p1")
    grace = 3 * M
    assert engine.watermark({"p0", "p1"}) == at(60.5) - grace
    assert engine.watermark({"p1"}) == at(120.5) - grace
    assert engine.watermark(set()) == at(120.5) - grace  # everything read: the most advanced partition
    assert engine.watermark({"p2"}) is None  # p2 has records but delivered none yet
    assert engine.watermark(None) == at(60.5) - grace  # lag unknown: the slowest known partition


def test_ticks_see_exactly_the_articles_arrived_by_then():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="10m"), partition="p0")
    engine.ingest(make("b", "0h", fetched="22m"), partition="p0")
    views = list(engine.ticks(at(30), active=never_active))
    seen = {from_us(v.tick_us) - START: v.stats("overall", 6 * 60 * M).volume for v in views}
    assert seen == {timedelta(minutes=15): 1, timedelta(minutes=20): 1, timedelta(minutes=25): 2}
    assert engine.state.last_tick == at(25)


def test_a_record_for_an_evaluated_tick_counts_from_the_next_tick():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="10m"), partition="p0")
    list(engine.ticks(at(60), active=never_active))
    result = engine.ingest(make("b", "0h", fetched="20m"), partition="p1")
    assert result.bumped
    assert engine.state.seen["b"] == engine.state.last_tick + 1


def test_quiet_stretches_are_skipped_but_the_emptying_is_published():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="10m"), partition="p0")
    ticks = []
    for view in engine.ticks(at(3 * 24 * 60), active=never_active):
        ticks.append(view.tick_us)
        engine.signal_updates(view)
    # evaluated while the article is in a window, once more to publish the empty windows, then skipped
    in_window = (24 * 60 - 5 - 15) // 5 + 1  # 00:15 (first tick after arrival) to 23:55
    assert len(ticks) == in_window + 1
    assert engine.state.last_tick == at(3 * 24 * 60 - 5)
    assert engine.state.articles == {}


def test_signal_updates_are_published_only_when_they_change():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="10m", stance=-0.5), partition="p0")
    views = list(engine.ticks(at(25), active=never_active))
    first = engine.signal_updates(views[0])
    assert len(first) == 8 * 2 * 4  # subjects x windows x signals
    assert engine.signal_updates(views[1]) == []
    trade = {(u.signal, u.window): u.value for u in first if u.topic == "trade_tariffs"}
    assert trade[("stance_index", "6h")] == -0.5
    assert trade[("volume", "24h")] == 1.0
    assert trade[("strained_share", "6h")] == 1.0


def test_late_articles_are_the_ones_older_than_something_already_counted():
    engine = SignalEngine(params())
    engine.ingest(make("new", "2h", fetched="2h10m"), partition="p0")
    list(engine.ticks(at(130), active=never_active))
    engine.ingest(make("old", "1h", fetched="2h20m"), partition="p0")  # arrives after a newer one counted
    engine.ingest(make("newer", "2h15m", fetched="2h20m"), partition="p0")
    list(engine.ticks(at(150), active=never_active))
    assert engine.state.late_accepted == 1


def test_old_articles_leave_the_store_and_old_ids_are_forgotten():
    engine = SignalEngine(params())
    engine.ingest(make("a", "0h", fetched="10m"), partition="p0")
    engine.ingest(make("b", "30h", fetched="30h10m"), partition="p0")
    list(engine.ticks(at(31 * 60), active=never_active))
    assert set(engine.state.articles) == {"b"}
    engine.ingest(make("c", "3d", fetched="3d10m"), partition="p0")
    list(engine.ticks(at(3 * 24 * 60 + 60), active=never_active))
    assert "a" not in engine.state.seen  # older than span + lateness
    assert "c" in engine.state.seen


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="step"):
        params(step=timedelta(0))
