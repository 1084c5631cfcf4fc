"""Pairing the alert episodes of two replays (``monitor eval-alerts``), table-driven over small histories."""

from __future__ import annotations

from datetime import timedelta

import pytest
from samples import T0, firing, resolved

from monitor.alerts.replay import compare, episodes, format_table

H = timedelta(hours=1)


def episode(start: int, *, fired: int, value: float, resolved_at: int | None = None, rule: str = "r") -> list:
    """The events of one episode of rule ``rule`` started ``start`` hours after T0."""
    alert_id = f"{rule}/trade_tariffs/{start}"
    common = {"alert_id": alert_id, "rule": rule, "started_at": T0 + start * H}
    events = [firing(**common, at=T0 + fired * H, value=value)]
    if resolved_at is not None:
        events.append(resolved(**common, at=T0 + resolved_at * H, value=-0.1))
    return events


@pytest.mark.parametrize(
    ("a", "b", "kinds"),
    [
        pytest.param(episode(1, fired=2, value=-0.5), episode(1, fired=2, value=-0.5), ["same"], id="same"),
        pytest.param(
            episode(1, fired=2, value=-0.5),
            episode(1, fired=2, value=-0.5 + 1e-9),
            ["same"],
            id="float-noise-is-the-same",
        ),
        pytest.param(
            episode(1, fired=2, value=-0.5), episode(1, fired=2, value=-0.6), ["changed"], id="other-value"
        ),
        pytest.param(
            episode(1, fired=2, value=-0.5, resolved_at=9),
            episode(1, fired=2, value=-0.5),
            ["changed"],
            id="resolved-only-in-a",
        ),
        pytest.param(
            episode(1, fired=2, value=-0.5, resolved_at=9),
            episode(3, fired=4, value=-0.5, resolved_at=9),
            ["changed"],
            id="later-start-overlapping",
        ),
        pytest.param(
            episode(1, fired=2, value=-0.5, resolved_at=3),
            episode(5, fired=6, value=-0.5),
            ["only_a", "only_b"],
            id="disjoint",
        ),
        pytest.param(
            episode(1, fired=2, value=-0.5, resolved_at=9),
            episode(3, fired=4, value=-0.5, rule="other"),
            ["only_a", "only_b"],
            id="other-rule",
        ),
        pytest.param(episode(1, fired=2, value=-0.5), [], ["only_a"], id="nothing-in-b"),
        pytest.param([], [], [], id="nothing-at-all"),
    ],
)
def test_pairing(a, b, kinds):
    comparison = compare(a, b)
    assert sorted(p.kind for p in comparison.pairings) == kinds
    assert comparison.differs == any(k != "same" for k in kinds)


def test_episodes_group_events_by_alert_id_in_order():
    events = episode(1, fired=2, value=-0.5, resolved_at=4) + episode(6, fired=7, value=-0.7)
    found = episodes(events)
    assert [(e.alert_id, e.fired_at, e.resolved_at) for e in found] == [
        ("r/trade_tariffs/1", T0 + 2 * H, T0 + 4 * H),
        ("r/trade_tariffs/6", T0 + 7 * H, None),
    ]


def test_the_table_lists_differences_first_and_counts_them():
    a = episode(1, fired=2, value=-0.5) + episode(20, fired=21, value=-0.4, rule="gone")
    b = episode(1, fired=2, value=-0.5)
    table = format_table(compare(a, b), label_a="news.scored", label_b="news.scored.v2")
    lines = table.splitlines()
    assert lines[0].split() == ["rule", "subject", "A:", "news.scored", "B:", "news.scored.v2"]
    assert lines[1].startswith("only_a") and " gone " in lines[1] and lines[1].rstrip().endswith("-")
    assert lines[2].startswith("same")
    assert lines[-1] == "1 same, 0 changed, 1 only in A, 0 only in B"
