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


def evidence(rule: RuleConfig, obs: Observation, *, count: int) -> list[AlertEvidence]:
    """The ``count`` stories that best show why the rule fired, most telling first: each story once (its
    most relevant copy), with the number of outlets that carried it."""
    reps = list(obs.stats.representatives)
    if rule.signal in ("stance_index", "strained_share"):
        # Falling stance or rising strained share: the most strained stories first; else the most cooperative.
        strained_first = (rule.signal == "stance_index") == (obs.direction == "down")
        sign = 1.0 if strained_first else -1.0
        reps.sort(key=lambda a: (sign * a.stance, -a.relevance, -a.event_us, a.article_id))
    else:
        reps.sort(key=lambda a: (-a.relevance, -a.event_us, a.article_id))
    return [_evidence(a, obs.stats.outlets.get(a.story_id, 1)) for a in reps[:count]]


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
    else:
        assert rule.anomaly is not None
        mean = "?" if obs.baseline is None else f"{obs.baseline:.1f}"
        head = (
            f"{subject}: {value} {'stories' if rule.signal == 'stories' else 'articles'} in "
            f"{window}, {still}against a usual {mean} per {window} over the previous "
            f"{window_label(rule.anomaly.baseline)} (alert level {threshold})"
        )
    return f"{head}, {_lead(obs, items)}."


def resolved_summary(rule: RuleConfig, obs: Observation, *, started_us: int) -> str:
    """One readable sentence for a resolved alert."""
    subject = SUBJECT_NAMES.get(rule.subject, rule.subject)
    signal = SIGNAL_NAMES[rule.signal]
    window = window_label(rule.window)
    since = format_time(from_us(started_us))
    if obs.value is None:
        now = f"the {window} window holds no stories any more"
    else:
        now = f"the {window} {signal} is back at {_fmt(rule.signal, obs.value)}"
    return f"Resolved: {subject}, {now} (the episode began {since})."
