"""The alerts a history of scored articles gives, and how two such histories differ (``monitor eval-alerts``).

Pure: :func:`replay_alerts` runs the :class:`~monitor.alerts.engine.AlertEngine` over scored records as a
fresh alerter reading them from the beginning would (each record in its partition's order, the
partitions' receipt times bounding the arrival times, a first start's back catalogue folded in when
``backfill``), then ends the input as ``monitor run --once`` does. Burst rules are evaluated at their
ticks, without the live fast path (:meth:`AlertEngine.on_arrival`): the same ``alert_id``, stamped at the
tick instead of at the arrival of the article that completed the burst. :func:`compare` pairs the alert
episodes of two replays: one ``alert_id`` is one episode (rule, subject and start), so the same id in
both is the same episode, compared event by event; an episode whose start moved has another id and is
paired with the overlapping episode of the same rule and subject on the other side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.alerts.engine import AlertEngine, AlertEvent
from monitor.alerts.rules import RuleConfig
from monitor.events import AlertFiring, AlertResolved, ArticleScored, format_time
from monitor.signals.engine import SignalParams


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """One scored article as read: the name of its input partition and its receipt time, if known."""

    partition: str
    event: ArticleScored
    received_us: int | None = None


def replay_alerts(
    records: Iterable[ScoredRecord],
    *,
    rules: Sequence[RuleConfig],
    params: SignalParams,
    now_us: int | None,
    backfill: bool = True,
    evidence_count: int = 3,
) -> list[AlertEvent]:
    """The alert events a fresh alerter computes from ``records`` (in their order within each partition).

    ``now_us``: the present (what the end of input decides later is stamped at it, as ``monitor run
    --once`` does); ``None`` treats the input as history with no present.
    """
    engine = AlertEngine(rules=rules, params=params, evidence_count=evidence_count)
    for record in records:
        engine.ingest(
            record.event, partition=record.partition, received_us=record.received_us, backfill=backfill
        )
    outputs = [*engine.advance(set()), *engine.end_of_input(now_us=now_us)]
    return [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]


@dataclass(frozen=True)
class Episode:
    """The events of one ``alert_id``, in order."""

    events: tuple[AlertEvent, ...]

    @property
    def first(self) -> AlertEvent:
        return self.events[0]

    @property
    def alert_id(self) -> str:
        return self.first.alert_id

    @property
    def rule(self) -> str:
        return self.first.rule

    @property
    def subject(self) -> str:
        return self.first.subject

    @property
    def started_at(self) -> datetime:
        return self.first.started_at

    @property
    def fired_at(self) -> datetime | None:
        firing = [e for e in self.events if isinstance(e, AlertFiring)]
        return firing[0].at if firing else None

    @property
    def value(self) -> float | None:
        firing = [e for e in self.events if isinstance(e, AlertFiring)]
        return firing[0].value if firing else None

    @property
    def resolved_at(self) -> datetime | None:
        resolved = [e for e in self.events if e.state == "resolved"]
        return resolved[-1].at if resolved else None

    def overlaps(self, other: Episode) -> bool:
        end, other_end = self.resolved_at, other.resolved_at
        return (end is None or other.started_at <= end) and (
            other_end is None or self.started_at <= other_end
        )

    def signature(self, places: int = 6) -> list[tuple[str, str, float | None]]:
        """What is compared: each event's state, time and value (rounded: scores are floats)."""
        return [
            (e.state, format_time(e.at), None if e.value is None else round(e.value, places))
            for e in self.events
        ]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "subject": self.subject,
            "severity": self.first.severity,
            "started_at": format_time(self.started_at),
            "fired_at": None if self.fired_at is None else format_time(self.fired_at),
            "value": self.value,
            "resolved_at": None if self.resolved_at is None else format_time(self.resolved_at),
            "events": [{"state": e.state, "at": format_time(e.at), "value": e.value} for e in self.events],
        }


def episodes(events: Iterable[AlertEvent]) -> list[Episode]:
    """The events grouped by ``alert_id``, episodes in order of their first event."""
    grouped: dict[str, list[AlertEvent]] = {}
    for event in events:
        grouped.setdefault(event.alert_id, []).append(event)
    return [Episode(tuple(group)) for group in grouped.values()]


Kind = Literal["same", "changed", "only_a", "only_b"]


@dataclass(frozen=True)
class Pairing:
    """One line of the comparison: an episode of A, of B, or of both."""

    kind: Kind
    a: Episode | None
    b: Episode | None

    @property
    def rule(self) -> str:
        episode = self.a or self.b
        assert episode is not None
        return episode.rule

    @property
    def subject(self) -> str:
        episode = self.a or self.b
        assert episode is not None
        return episode.subject

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "subject": self.subject,
            "a": None if self.a is None else self.a.to_json_dict(),
            "b": None if self.b is None else self.b.to_json_dict(),
        }


@dataclass
class Comparison:
    """Every episode of A and B, paired."""

    pairings: list[Pairing] = field(default_factory=list)

    def of(self, kind: Kind) -> list[Pairing]:
        return [p for p in self.pairings if p.kind == kind]

    @property
    def differs(self) -> bool:
        return any(p.kind != "same" for p in self.pairings)

    def counts(self) -> dict[str, int]:
        return {kind: len(self.of(kind)) for kind in ("same", "changed", "only_a", "only_b")}


def compare(a: Iterable[AlertEvent], b: Iterable[AlertEvent]) -> Comparison:
    """Pair the episodes of ``a`` with those of ``b`` (see the module docstring)."""
    left, right = episodes(a), episodes(b)
    by_id = {e.alert_id: e for e in right}
    paired: set[str] = set()
    out = Comparison()
    unmatched_a: list[Episode] = []
    for episode in left:
        other = by_id.get(episode.alert_id)
        if other is None:
            unmatched_a.append(episode)
            continue
        paired.add(other.alert_id)
        kind: Kind = "same" if episode.signature() == other.signature() else "changed"
        out.pairings.append(Pairing(kind, episode, other))
    rest_b = [e for e in right if e.alert_id not in paired]
    for episode in unmatched_a:
        other = next(
            (
                e
                for e in rest_b
                if e.rule == episode.rule and e.subject == episode.subject and e.overlaps(episode)
            ),
            None,
        )
        if other is None:
            out.pairings.append(Pairing("only_a", episode, None))
        else:
            rest_b.remove(other)
            out.pairings.append(Pairing("changed", episode, other))
    out.pairings.extend(Pairing("only_b", None, e) for e in rest_b)
    out.pairings.sort(
        key=lambda p: (min(e.started_at for e in (p.a, p.b) if e is not None), p.rule, p.subject)
    )
    return out


def _cell(episode: Episode | None) -> str:
    if episode is None:
        return "-"
    fired = "-" if episode.fired_at is None else format_time(episode.fired_at)
    value = "-" if episode.value is None else f"{episode.value:+.3f}"
    resolved = "" if episode.resolved_at is None else f" resolved {format_time(episode.resolved_at)}"
    return f"fired {fired} value {value}{resolved}"


def format_table(comparison: Comparison, *, label_a: str, label_b: str) -> str:
    """The comparison as a plain-text table, differences first."""
    order = {"only_a": 0, "only_b": 1, "changed": 2, "same": 3}
    rows = [("", "rule", "subject", f"A: {label_a}", f"B: {label_b}")]
    for p in sorted(comparison.pairings, key=lambda p: order[p.kind]):
        rows.append((p.kind, p.rule, p.subject, _cell(p.a), _cell(p.b)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    counts = comparison.counts()
    lines.append(
        f"{counts['same']} same, {counts['changed']} changed, {counts['only_a']} only in A, "
        f"{counts['only_b']} only in B"
    )
    return "\n".join(lines)
