"""Rule conditions at one tick: threshold with hysteresis, change by delta and z-score, volume anomaly."""

from __future__ import annotations

import math

import pytest

from monitor.alerts.conditions import MIN_STANCE_STD, observe
from monitor.alerts.rules import RuleConfig
from monitor.signals.windows import Article, TickView

H = 3600 * 1_000_000
D = 24 * H


def art(
    aid: str,
    stance: float,
    *,
    hours_ago: float,
    tick: int,
    topic: str = "trade_tariffs",
    label: str | None = None,
) -> Article:
    event = tick - int(hours_ago * H)
    if label is None:
        label = "strain" if stance <= -0.2 else "cooperation" if stance >= 0.2 else "neutral"
    return Article(
        article_id=aid,
        story_id=aid,
        arrival_us=event,
        event_us=event,
        relevance=1.0,
        subjects=frozenset({"overall", topic}),
        stance=stance,
        label=label,
        title=aid,
        url=f"https://x/{aid}",
        source="Wire",
        evidence=None,
    )


def rule(**values) -> RuleConfig:
    base = {"name": "r", "subject": "trade_tariffs", "signal": "stance_index", "window": "24h"}
    return RuleConfig.model_validate({**base, **values})


TICK = 30 * D


def view(stances: list[float], *, hours_ago: float = 1.0, older: list[float] = ()) -> TickView:
    items = [art(f"n{i}", s, hours_ago=hours_ago, tick=TICK) for i, s in enumerate(stances)]
    items += [art(f"o{i}", s, hours_ago=72, tick=TICK) for i, s in enumerate(older)]
    return TickView(TICK, items)


@pytest.mark.parametrize(
    ("stances", "fire", "hold"),
    [
        ([-0.5, -0.5, -0.5], True, True),  # below the alert level
        ([-0.3, -0.3, -0.3], False, True),  # between the levels: not firing, but a firing alert holds
        ([-0.1, -0.1, -0.1], False, False),  # past the clear level
        ([-0.5, -0.5], False, True),  # too few stories to fire
        ([], False, False),  # no stories: no index
    ],
)
def test_threshold_with_hysteresis(stances, fire, hold):
    r = rule(threshold={"below": -0.35, "clear_above": -0.15}, min_stories=3)
    obs = observe(r, view(stances), coverage_start_us=0)
    assert (obs.fire, obs.hold) == (fire, hold)
    assert obs.threshold == -0.35
    assert obs.direction == "down"


def test_threshold_upwards_on_strained_share():
    r = rule(signal="strained_share", threshold={"above": 0.6, "clear_below": 0.4})
    obs = observe(r, view([-0.5, -0.5, 0.5]), coverage_start_us=0)
    assert obs.value == pytest.approx(2 / 3, abs=1e-6)
    assert (obs.fire, obs.hold, obs.direction) == (True, True, "up")


def test_change_by_delta_against_the_longer_window():
    r = rule(change={"baseline": "7d", "delta": 0.4, "direction": "up", "clear_delta": 0.2}, min_stories=2)
    obs = observe(r, view([0.7, 0.7], older=[-0.2] * 6), coverage_start_us=0)
    long = (2 * 0.7 + 6 * -0.2) / 8
    assert obs.baseline == pytest.approx(long)
    assert obs.threshold == pytest.approx(long + 0.4)
    assert (obs.fire, obs.hold, obs.direction) == (True, True, "up")
    down = observe(
        rule(change={"baseline": "7d", "delta": 0.4, "direction": "down"}),
        view([0.7, 0.7], older=[-0.2] * 6),
        coverage_start_us=0,
    )
    assert not down.fire


def test_change_needs_enough_baseline_stories():
    r = rule(change={"baseline": "7d", "delta": 0.4, "min_baseline_stories": 10}, min_stories=2)
    assert not observe(r, view([0.7, 0.7], older=[-0.2] * 6), coverage_start_us=0).fire


def test_change_by_z_score_uses_the_standard_error_of_the_short_window():
    r = rule(window="6h", change={"baseline": "7d", "z": 3, "direction": "either"}, min_stories=4)
    older = [-0.1, 0.1] * 10
    obs = observe(r, view([-0.6] * 4, older=older), coverage_start_us=0)
    values = [-0.6] * 4 + older
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    z = (-0.6 - mean) / (max(spread, MIN_STANCE_STD) / 2)
    assert z < -3
    assert obs.fire and obs.direction == "down"
    assert obs.threshold == pytest.approx(mean - 3 * max(spread, MIN_STANCE_STD) / 2, abs=1e-6)


def test_z_score_spread_has_a_floor():
    # A uniform week (no spread at all) must not turn any small move into an infinite z-score.
    r = rule(window="6h", change={"baseline": "7d", "z": 3, "direction": "either"}, min_stories=4)
    obs = observe(r, view([0.05] * 4, older=[0.0] * 8), coverage_start_us=0)
    assert not obs.fire


def test_either_direction_keeps_the_direction_of_its_episode():
    r = rule(
        change={"baseline": "7d", "delta": 0.4, "direction": "either", "clear_delta": 0.2}, min_stories=2
    )
    v = view([0.7, 0.7], older=[-0.2] * 6)
    assert observe(r, v, coverage_start_us=0, episode="up").hold
    assert not observe(r, v, coverage_start_us=0, episode="down").hold


def anomaly_view(counts: list[int], current: int) -> TickView:
    """``counts[i]`` stories on the day i+1 days before the current window, ``current`` in it."""
    items = [
        art(f"c{i}", 0.1, hours_ago=1 + i * 0.1, tick=TICK, topic="critical_minerals") for i in range(current)
    ]
    for day, n in enumerate(counts, start=1):
        items += [
            art(f"d{day}-{i}", 0.1, hours_ago=24 * day + 2 + i * 0.1, tick=TICK, topic="critical_minerals")
            for i in range(n)
        ]
    return TickView(TICK, items)


def minerals(**anomaly) -> RuleConfig:
    return rule(
        subject="critical_minerals",
        signal="stories",
        anomaly={"baseline": "7d", "k": 3, **anomaly},
        min_stories=4,
    )


def test_volume_anomaly_against_the_baseline_mean_and_deviation():
    counts = [2, 3, 1, 2, 4, 2, 1]
    mean = sum(counts) / 7
    spread = max(math.sqrt(sum((c - mean) ** 2 for c in counts) / 7), math.sqrt(mean))
    obs = observe(minerals(), anomaly_view(counts, 9), coverage_start_us=0)
    assert obs.baseline == pytest.approx(mean, abs=1e-6)
    assert obs.threshold == pytest.approx(mean + 3 * spread, abs=1e-6)
    assert obs.value == 9.0 and obs.fire
    assert not observe(minerals(), anomaly_view(counts, 6), coverage_start_us=0).fire


def test_volume_anomaly_ignores_days_before_the_monitor_had_data():
    # Only two days of history: unknown days are not zeros, and two windows are the minimum.
    counts = [2, 2, 0, 0, 0, 0, 0]
    coverage = TICK - 3 * D
    obs = observe(minerals(), anomaly_view(counts, 8), coverage_start_us=coverage)
    assert obs.baseline == 2.0
    assert obs.fire
    short = observe(minerals(), anomaly_view(counts, 8), coverage_start_us=TICK - 2 * D)
    assert (short.fire, short.threshold) == (False, None)


def test_volume_anomaly_has_a_poisson_floor():
    # A dead quiet week, one story a day: the spread is at least sqrt(mean), so 3 stories are no surge.
    obs = observe(minerals(), anomaly_view([1] * 7, 3), coverage_start_us=0)
    assert obs.threshold == pytest.approx(4.0)
    assert not obs.fire
