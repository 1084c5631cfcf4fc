"""Evaluate one rule's condition at one tick: a pure function of the rule and the tick's articles.

The result says whether the firing condition holds (``fire``: the level is crossed and the window holds at
least ``min_stories`` stories) and whether a firing alert may stay firing (``hold``: the clear level is not
crossed back), with the value, threshold and baseline the alert reports.

Standard errors and deviations have floors, so a quiet or uniform baseline cannot make one story look like
an earthquake: the stance spread is taken as at least :data:`MIN_STANCE_STD`, and the spread of a count as
at least its Poisson noise ``sqrt(mean)`` and at least 1.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

from monitor.alerts.rules import RuleConfig
from monitor.signals.windows import TickView, WindowStats, duration_us, window_stats

MIN_STANCE_STD = 0.1
"""Floor of the stance spread used by z-score rules (stance in [-1, 1])."""

MIN_BASELINE_WINDOWS = 2
"""An anomaly rule needs at least this many baseline windows of history before it may fire."""

Side = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class Observation:
    """A rule's view of one tick."""

    value: float | None
    threshold: float | None
    baseline: float | None
    fire: bool
    hold: bool
    direction: Side
    stats: WindowStats
    """The statistics of the rule's own subject and window (stories, evidence); for a burst rule, of the
    articles past its stance level."""
    outlets: int | None = None
    """Burst rules: the distinct outlets among those articles."""
    sides: tuple[WindowStats, WindowStats] | None = None
    """For a divergence rule: the statistics over each viewpoint's outlets (in ``between`` order)."""


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def observe(
    rule: RuleConfig, view: TickView, *, coverage_start_us: int | None, episode: Side | None = None
) -> Observation:
    """Evaluate ``rule`` at ``view``'s tick.

    ``coverage_start_us``: the event time from which the monitor has data (anomaly baselines before it are
    unknown, not zero). ``episode``: the direction of the firing episode, for ``either`` change rules.
    """
    stats = view.stats(rule.subject, duration_us(rule.window))
    enough = stats.stories >= rule.min_stories
    if rule.threshold is not None:
        return _threshold(rule, stats, enough)
    if rule.change is not None:
        return _change(rule, view, stats, enough, episode)
    if rule.divergence is not None:
        return _divergence(rule, view, stats, episode)
    if rule.burst is not None:
        return _burst(rule, view, enough)
    return _anomaly(rule, view, stats, enough, coverage_start_us)


def _threshold(rule: RuleConfig, stats: WindowStats, enough: bool) -> Observation:
    c = rule.threshold
    assert c is not None
    value = stats.value(rule.signal)
    if value is None:
        fire = hold = False
    elif c.direction == "up":
        fire, hold = value >= c.fire_level, value >= c.clear_level
    else:
        fire, hold = value <= c.fire_level, value <= c.clear_level
    return Observation(value, c.fire_level, None, fire and enough, hold, c.direction, stats)


def _change(
    rule: RuleConfig, view: TickView, stats: WindowStats, enough: bool, episode: Side | None
) -> Observation:
    c = rule.change
    assert c is not None
    long = view.stats(rule.subject, duration_us(c.baseline))
    short_value, long_value = stats.value(rule.signal), long.value(rule.signal)
    default: Side = "down" if c.direction == "down" else "up"
    if short_value is None or long_value is None:
        return Observation(short_value, None, long_value, False, False, episode or default, stats)
    diff = short_value - long_value
    if c.delta is not None:
        scale = 1.0
    else:
        if rule.signal == "strained_share":
            spread = math.sqrt(long_value * (1.0 - long_value))
        else:
            spread = long.stance_std or 0.0
        scale = max(spread, MIN_STANCE_STD) / math.sqrt(max(stats.stories, 1))
    measure = diff / scale
    side: Side = c.direction if c.direction != "either" else episode or ("up" if diff >= 0 else "down")
    sign = 1.0 if side == "up" else -1.0
    if c.direction == "either":
        fire = abs(measure) >= c.fire_level
        hold = sign * measure >= c.clear_level
    else:
        fire = sign * measure >= c.fire_level
        hold = sign * measure >= c.clear_level
    fire = fire and enough and long.stories >= c.min_baseline_stories
    threshold = long_value + sign * c.fire_level * scale
    return Observation(short_value, _r(threshold), long_value, fire, hold, side, stats)


def _burst(rule: RuleConfig, view: TickView, enough: bool) -> Observation:
    """Distinct stories past the stance level in the window, and the outlets that carried them."""
    c = rule.burst
    assert c is not None
    articles = view.articles(rule.subject, duration_us(rule.window))
    stats = window_stats([a for a in articles if c.qualifies(a.stance)])
    outlets = len({a.source for a in articles if c.qualifies(a.stance)})
    fire = enough and stats.stories >= c.stories and outlets >= c.outlets
    hold = stats.stories >= c.clear_level
    return Observation(float(stats.stories), float(c.stories), None, fire, hold, c.direction, stats, outlets)


def usable_buckets(rule: RuleConfig, tick_us: int, coverage_start_us: int | None) -> int:
    """How many of an anomaly rule's baseline windows lie after the start of the monitor's data."""
    if rule.anomaly is None or coverage_start_us is None:
        return 0
    length = duration_us(rule.window)
    buckets = duration_us(rule.anomaly.baseline) // length
    return sum(1 for i in range(1, buckets + 1) if tick_us - (i + 1) * length >= coverage_start_us)


def _anomaly(
    rule: RuleConfig, view: TickView, stats: WindowStats, enough: bool, coverage_start_us: int | None
) -> Observation:
    c = rule.anomaly
    assert c is not None
    length = duration_us(rule.window)
    buckets = duration_us(c.baseline) // length
    counts = view.bucket_counts(rule.subject, length, buckets, rule.signal)
    usable = counts[: usable_buckets(rule, view.tick_us, coverage_start_us)]
    current = float(stats.stories if rule.signal == "stories" else stats.volume)
    if len(usable) < MIN_BASELINE_WINDOWS:
        return Observation(current, None, None, False, False, "up", stats)
    mean = statistics.fmean(usable)
    spread = max(statistics.pstdev(usable), math.sqrt(max(mean, 1.0)))
    threshold = mean + c.k * spread
    fire = current >= threshold and enough
    hold = current >= mean + c.clear_level * spread
    return Observation(current, _r(threshold), _r(mean), fire, hold, "up", stats)


def _divergence(rule: RuleConfig, view: TickView, stats: WindowStats, episode: Side | None) -> Observation:
    """Two viewpoints against each other, as a change rule sets a window against its baseline: ``value`` is
    the first viewpoint's, ``baseline`` the second's, ``threshold`` the level the first must reach
    (``baseline`` plus or minus ``delta``); direction ``up`` when the first reads higher."""
    c = rule.divergence
    assert c is not None
    length = duration_us(rule.window)
    first, second = (view.stats(rule.subject, length, viewpoint=v) for v in c.between)
    sides = (first, second)
    mine, theirs = first.value(rule.signal), second.value(rule.signal)
    if mine is None or theirs is None:
        return Observation(mine, None, theirs, False, False, episode or "up", stats, sides=sides)
    gap = mine - theirs
    side: Side = episode or ("up" if gap >= 0 else "down")
    sign = 1.0 if side == "up" else -1.0
    enough = first.stories >= rule.min_stories and second.stories >= rule.min_stories
    fire = abs(gap) >= c.delta and enough
    hold = sign * gap >= c.clear_level
    return Observation(mine, _r(theirs + sign * c.delta), theirs, fire, hold, side, stats, sides=sides)
