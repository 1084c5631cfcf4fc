"""What an alert shows a reader: the evidence articles and a one-sentence summary."""

from __future__ import annotations

from monitor.alerts.conditions import Observation
from monitor.alerts.rules import RuleConfig
from monitor.events import AlertEvidence, format_time
from monitor.signals.windows import Article, from_us, window_label

SUBJECT_NAMES: dict[str, str] = {
    "trade_tariffs": "India-US trade and tariffs",
    "critical_minerals": "India-US critical minerals",
    "energy_nuclear": "India-US energy and nuclear",
    "defence": "India-US defence",
    "technology": "India-US technology",
    "indo_pacific_quad": "India-US Indo-Pacific and Quad",
    "diplomacy_other": "India-US diplomacy",
    "overall": "India-US relations overall",
}

SIGNAL_NAMES: dict[str, str] = {
    "stance_index": "stance index",
    "volume": "article count",
    "stories": "story count",
    "strained_share": "share of strained stories",
}


VIEWPOINT_NAMES: dict[str, str] = {
    "india": "Indian outlets",
    "us": "US outlets",
    "international": "international outlets",
}


def evidence(rule: RuleConfig, obs: Observation, *, count: int) -> list[AlertEvidence]:
    """The ``count`` stories that best show why the rule fired, most telling first: each story once (its
    most relevant copy), with the number of outlets that carried it. A divergence rule shows the top story
    of each side instead (see :func:`divergence_evidence`)."""
    if rule.divergence is not None:
        return divergence_evidence(rule, obs)
    reps = list(obs.stats.representatives)
    if rule.burst is not None:  # the most telling stories of the burst first
        sign = 1.0 if obs.direction == "down" else -1.0
        reps.sort(key=lambda a: (sign * a.stance, -a.relevance, -a.event_us, a.article_id))
    elif rule.signal in ("stance_index", "strained_share"):
        # Falling stance or rising strained share: the most strained stories first; else the most cooperative.
        strained_first = (rule.signal == "stance_index") == (obs.direction == "down")
        sign = 1.0 if strained_first else -1.0
        reps.sort(key=lambda a: (sign * a.stance, -a.relevance, -a.event_us, a.article_id))
    else:
        reps.sort(key=lambda a: (-a.relevance, -a.event_us, a.article_id))
    return [_evidence(a, obs.stats.outlets.get(a.story_id, 1)) for a in reps[:count]]


def divergence_evidence(rule: RuleConfig, obs: Observation) -> list[AlertEvidence]:
    """The top story of each side, in ``between`` order: on the side that reads higher, its story with the
    highest stance for ``stance_index`` (most cooperative) or the most strained for ``strained_share``; on
    the other side the opposite. A side without stories shows none."""
    if obs.sides is None:
        return []
    first_higher = obs.direction == "up"
    out = []
    for stats, higher in zip(obs.sides, (first_higher, not first_higher), strict=True):
        # sign -1 puts the highest stance first.
        sign = -1.0 if higher == (rule.signal == "stance_index") else 1.0
        reps = sorted(
            stats.representatives, key=lambda a: (sign * a.stance, -a.relevance, -a.event_us, a.article_id)
        )
        if reps:
            out.append(_evidence(reps[0], stats.outlets.get(reps[0].story_id, 1)))
    return out


def _evidence(article: Article, outlets: int) -> AlertEvidence:
    return AlertEvidence(
        article_id=article.article_id,
        title=article.title,
        url=article.url,
        stance=article.stance,
        evidence=article.evidence,
        story_id=article.story_id,
        outlets=outlets,
        viewpoint=article.viewpoint,
    )


def _fmt(signal: str, value: float | None) -> str:
    if value is None:
        return "undefined"
    if signal == "stance_index":
        return f"{value:+.2f}"
    if signal == "strained_share":
        return f"{value:.0%}"
    return f"{value:g}"


def _lead(obs: Observation, items: list[AlertEvidence]) -> str:
    stories = obs.stats.stories
    text = f"across {stories} {'story' if stories == 1 else 'stories'}"
    if items:
        text += f", led by \u201c{items[0].title}\u201d"
    return text


def firing_summary(rule: RuleConfig, obs: Observation, items: list[AlertEvidence]) -> str:
    """One readable sentence for a firing alert."""
    subject = SUBJECT_NAMES.get(rule.subject, rule.subject)
    signal = SIGNAL_NAMES[rule.signal]
    window = window_label(rule.window)
    value = _fmt(rule.signal, obs.value)
    threshold = _fmt(rule.signal, obs.threshold)
    still = "" if obs.fire else "still "
    if rule.divergence is not None:
        return _divergence_summary(rule, obs, items, subject=subject, signal=signal, still=still)
    if rule.threshold is not None:
        where = "above" if rule.threshold.direction == "up" else "below"
        if obs.fire:
            level = f"{where} the alert level {threshold}"
        else:  # a re-notification while the value sits between the alert and the clear level
            clear = _fmt(rule.signal, rule.threshold.clear_level)
            level = f"not yet back past {clear} (alert level {threshold})"
        head = f"{subject}: the {window} {signal} is {value}, {level}"
    elif rule.change is not None:
        moved = "rose" if obs.direction == "up" else "fell"
        base = _fmt(rule.signal, obs.baseline)
        head = (
            f"{subject}: the {window} {signal} {still}{moved} to {value} against {base} over "
            f"{window_label(rule.change.baseline)} (alert level {threshold})"
        )
    elif rule.burst is not None:
        b = rule.burst
        if b.stance_below is not None:
            level = f"below {b.stance_below:+.2f}"
        else:
            level = f"above {b.stance_above:+.2f}"
        count = int(obs.value or 0)
        outlets = obs.outlets or 0
        head = (
            f"{subject}: {count} {'story' if count == 1 else 'stories'} from {outlets} "
            f"{'outlet' if outlets == 1 else 'outlets'} in {window} with stance {level} (alert level "
            f"{b.stories} stories from {b.outlets} outlets)"
        )
        items_text = f", led by \u201c{items[0].title}\u201d" if items else ""
        return f"{head}{items_text}."
    else:
        assert rule.anomaly is not None
        mean = "?" if obs.baseline is None else f"{obs.baseline:.1f}"
        head = (
            f"{subject}: {value} {'stories' if rule.signal == 'stories' else 'articles'} in "
            f"{window}, {still}against a usual {mean} per {window} over the previous "
            f"{window_label(rule.anomaly.baseline)} (alert level {threshold})"
        )
    return f"{head}, {_lead(obs, items)}."


def _reading(signal: str, value: float | None) -> str:
    if signal == "stance_index" and value is not None:
        if value <= -0.2:
            return f"as strain ({_fmt(signal, value)})"
        if value >= 0.2:
            return f"as cooperation ({_fmt(signal, value)})"
        return f"as neutral ({_fmt(signal, value)})"
    return f"at {_fmt(signal, value)}"


def _divergence_summary(
    rule: RuleConfig, obs: Observation, items: list[AlertEvidence], *, subject: str, signal: str, still: str
) -> str:
    c = rule.divergence
    assert c is not None and obs.sides is not None
    names = [VIEWPOINT_NAMES.get(v, v) for v in c.between]
    values = (obs.value, obs.baseline)
    parts = [
        f"{name} read it {_reading(rule.signal, value)} across {stats.stories} "
        f"{'story' if stats.stories == 1 else 'stories'}"
        for name, value, stats in zip(names, values, obs.sides, strict=True)
    ]
    gap = abs((obs.value or 0.0) - (obs.baseline or 0.0))
    head = (
        f"{subject}: {parts[0]}, {parts[1]}: the {window_label(rule.window)} {signal} is {still}{gap:.2f} "
        f"apart (alert level {c.delta:.2f})"
    )
    names_by_viewpoint = dict(zip(c.between, names, strict=True))
    led = [f"\u201c{i.title}\u201d ({names_by_viewpoint.get(i.viewpoint, i.viewpoint)})" for i in items]
    return f"{head}, led by {' and '.join(led)}." if led else f"{head}."


def resolved_summary(rule: RuleConfig, obs: Observation, *, started_us: int) -> str:
    """One readable sentence for a resolved alert."""
    subject = SUBJECT_NAMES.get(rule.subject, rule.subject)
    signal = SIGNAL_NAMES[rule.signal]
    window = window_label(rule.window)
    since = format_time(from_us(started_us))
    if rule.divergence is not None:
        first, second = (VIEWPOINT_NAMES.get(v, v) for v in rule.divergence.between)
        if obs.value is None or obs.baseline is None:
            now = f"the {window} window no longer holds stories from both {first} and {second}"
        else:
            gap = abs(obs.value - obs.baseline)
            now = (
                f"{first} and {second} read it {gap:.2f} apart again ({window} {signal} "
                f"{_fmt(rule.signal, obs.value)} and {_fmt(rule.signal, obs.baseline)})"
            )
        return f"Resolved: {subject}, {now} (the episode began {since})."
    if obs.value is None:
        now = f"the {window} window holds no stories any more"
    else:
        now = f"the {window} {signal} is back at {_fmt(rule.signal, obs.value)}"
    return f"Resolved: {subject}, {now} (the episode began {since})."
