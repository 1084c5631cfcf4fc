"""Where things stand now: one table of the latest signals per subject and the alerts firing. No I/O.

``monitor status`` (pipelines/status.py) reads the latest signal values and the firing alerts from the
local state (embedded mode) or from ``news.signals`` and ``news.alerts`` (Kafka) and hands them to
:func:`build_status`; :func:`format_text` and :func:`to_json` print the result.

Per subject (every topic, then ``overall``): the stance index over the short and the long window (24h and
7d when configured, else the shortest and the longest), its direction (the short window against the long
one as the baseline: ``rising`` toward cooperation, ``falling`` toward strain, ``steady`` within
:data:`STEADY` of it), the articles and distinct stories in both windows, the short window's stance index
over the Indian and over the US outlets, and the alerts firing about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.events import ALL_VIEWPOINTS, AlertFiring, format_time
from monitor.signals import SPLIT_VIEWPOINTS, SUBJECTS
from monitor.signals.engine import SignalRecord, signal_key
from monitor.signals.windows import window_label

STEADY = 0.05
"""A short-window stance index within this of the long window's (on the -1..1 scale) reads ``steady``.

A presentation threshold: about one article in twenty moving a full step of the stance scale."""

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class WindowFigures:
    stance_index: float | None
    articles: int
    stories: int


@dataclass(frozen=True)
class SubjectStatus:
    subject: str
    short: WindowFigures
    long: WindowFigures
    direction: str | None
    """``rising``, ``falling``, ``steady``, or None when either window has no stance index."""
    change: float | None
    """The short window's stance index minus the long one's."""
    firing: tuple[AlertFiring, ...]
    viewpoints: Mapping[str, WindowFigures] = field(default_factory=dict)
    """The short window over each viewpoint's outlets (``india``, ``us``)."""


@dataclass(frozen=True)
class Status:
    source: str
    """Where the figures come from, in words (the state file, or the Kafka topics)."""
    as_of: datetime | None
    """The time the signals stand at (None when nothing was ever computed)."""
    short_window: str
    long_window: str
    subjects: tuple[SubjectStatus, ...]
    firing: tuple[AlertFiring, ...]


def status_windows(windows: Sequence[timedelta]) -> tuple[str, str]:
    """The (short, long) window labels of the status: 24h and 7d where configured."""
    labels = [window_label(w) for w in sorted(windows)]
    if not labels:
        raise ValueError("no signal windows configured")
    short = "24h" if "24h" in labels else labels[0]
    long = "7d" if "7d" in labels else labels[-1]
    return short, long


def direction_of(short: float | None, long: float | None) -> tuple[str | None, float | None]:
    """(direction, change) of the short window's stance index against the long one's."""
    if short is None or long is None:
        return None, None
    change = short - long
    if abs(change) < STEADY:
        return "steady", change
    return ("rising" if change > 0 else "falling"), change


def build_status(
    signals: Mapping[str, SignalRecord],
    *,
    windows: Sequence[timedelta],
    firing: Iterable[AlertFiring],
    as_of: datetime | None,
    source: str,
) -> Status:
    """The status from the latest record per signal key (``signal/subject/window``, as published)."""
    short, long = status_windows(windows)
    alerts = sorted(firing, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.started_at, a.rule))

    def figures(subject: str, window: str, viewpoint: str = ALL_VIEWPOINTS) -> WindowFigures:
        stance = signals.get(signal_key("stance_index", subject, window, viewpoint))
        volume = signals.get(signal_key("volume", subject, window, viewpoint))
        stories = signals.get(signal_key("stories", subject, window, viewpoint))
        record = stance or volume or stories
        return WindowFigures(
            stance_index=None if stance is None else stance[0],
            articles=0 if record is None else record[1],
            stories=0 if record is None else record[2],
        )

    rows = []
    for subject in SUBJECTS:
        s, lg = figures(subject, short), figures(subject, long)
        direction, change = direction_of(s.stance_index, lg.stance_index)
        about = tuple(a for a in alerts if a.subject == subject)
        split: dict[str, WindowFigures] = {v: figures(subject, short, v) for v in SPLIT_VIEWPOINTS}
        rows.append(SubjectStatus(subject, s, lg, direction, change, about, split))
    return Status(source, as_of, short, long, tuple(rows), tuple(alerts))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def format_text(status: Status) -> str:
    """The status as a table for a terminal, then the firing alerts with their one-line summaries."""
    s, lg = status.short_window, status.long_window
    when = "no signals computed yet" if status.as_of is None else f"as of {format_time(status.as_of)}"
    lines = [f"India-US relations, {when} ({status.source})", ""]
    header = (
        f"{'subject':<18} {'stance ' + s:>11} {'stance ' + lg:>11} {'direction':>17} "
        f"{'articles ' + s:>13} {'stories ' + s:>12} {'stories ' + lg:>11} {'firing':>6}"
        + "".join(f" {v + ' ' + s:>10}" for v in SPLIT_VIEWPOINTS)
    )
    lines.append(header)
    for row in status.subjects:
        direction = "-" if row.direction is None else f"{row.direction} ({_num(row.change)})"
        lines.append(
            f"{row.subject:<18} {_num(row.short.stance_index):>11} {_num(row.long.stance_index):>11} "
            f"{direction:>17} {row.short.articles:>13} {row.short.stories:>12} {row.long.stories:>11} "
            f"{len(row.firing):>6}" + "".join(f" {_num(f.stance_index):>10}" for f in row.viewpoints.values())
        )
    lines.append("")
    if not status.firing:
        lines.append("No alerts firing.")
    else:
        lines.append(f"Alerts firing ({len(status.firing)}):")
        for alert in status.firing:
            what = f"{alert.severity:<8} {alert.rule} [{alert.subject}]"
            lines.append(f"  {what} since {format_time(alert.started_at)}: {alert.summary}")
    return "\n".join(lines) + "\n"


def to_json(status: Status) -> dict[str, Any]:
    """The status as one JSON object (``--format json``); alerts exactly as on the alert topic."""

    def window(f: WindowFigures) -> dict[str, Any]:
        return {"stance_index": f.stance_index, "articles": f.articles, "stories": f.stories}

    return {
        "source": status.source,
        "as_of": None if status.as_of is None else format_time(status.as_of),
        "windows": {"short": status.short_window, "long": status.long_window},
        "subjects": [
            {
                "subject": row.subject,
                status.short_window: window(row.short),
                status.long_window: window(row.long),
                "direction": row.direction,
                "change": row.change,
                "firing": [a.alert_id for a in row.firing],
                "viewpoints": {v: {status.short_window: window(f)} for v, f in row.viewpoints.items()},
            }
            for row in status.subjects
        ],
        "alerts_firing": [a.model_dump(mode="json") for a in status.firing],
    }
