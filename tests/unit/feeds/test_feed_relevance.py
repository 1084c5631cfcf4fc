"""The India-US relevance gate: unit cases and the yardstick (../shared/eval/articles-dev.jsonl)."""

from __future__ import annotations

import json

import pytest
from feedtest import SHARED_EVAL

from monitor.feeds.relevance import DEFAULT_THRESHOLD, gate, relevance_hint


@pytest.mark.parametrize(
    ("title", "summary", "keep", "reason"),
    [
        ("India-US trade talks resume", "", True, "bilateral"),
        ("U.S.-India defence pact signed", "", True, "bilateral"),
        ("Jaishankar meets Rubio in Washington", "", True, "both"),
        ("Tiruppur exporters hit by Trump tariffs", "", True, "both"),
        ("Quad summit postponed", "", True, "bilateral marker"),
        ("H-1B fee hike: what it means", "", True, "bilateral marker"),
        ("Engine talks conclude", "New Delhi and Washington closed a round of talks.", True, "bilateral"),
        ("Engine talks conclude", "Officials in Delhi said the US side agreed.", True, "both"),
        (
            "Bihar election results: NDA sweeps",
            "Nitish Kumar returns as chief minister.",
            False,
            "india only",
        ),
        ("EU and US reach trade deal", "Von der Leyen met Trump in Scotland.", False, "us only"),
        ("Chess olympiad enters final round", "Three teams are level.", False, "neither"),
        ("Let us talk about it", "a plain sentence", False, "neither"),  # 'us' the pronoun
        ("Indiana votes on budget", "", False, "neither"),  # not India
    ],
)
def test_gate_cases(title: str, summary: str, keep: bool, reason: str) -> None:
    decision = gate(title, summary)
    assert (decision.keep, decision.reason) == (keep, reason)
    assert decision.hint == relevance_hint(title, summary)
    assert 0.0 <= decision.hint <= 1.0


def test_hint_orders_evidence() -> None:
    outright = relevance_hint("India-US trade deal signed", "")
    both = relevance_hint("Modi to meet Trump", "")
    one = relevance_hint("Modi inaugurates bridge", "")
    none = relevance_hint("Chess olympiad", "")
    assert outright > both > DEFAULT_THRESHOLD > one > none == 0.0


def test_threshold_is_a_parameter() -> None:
    assert gate("Modi inaugurates bridge", "", threshold=0.1).keep
    assert not gate("Modi to meet Trump", "", threshold=0.95).keep


@pytest.mark.skipif(
    not SHARED_EVAL.is_file(), reason=f"evaluation file not available: {SHARED_EVAL} is absent"
)
def test_gate_on_the_dev_evaluation_file() -> None:
    rows = [json.loads(line) for line in SHARED_EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    relevant = [r for r in rows if r["relevant"]]
    other = [r for r in rows if not r["relevant"]]
    kept_relevant = sum(gate(r["title"], r["lead"]).keep for r in relevant)
    dropped_other = sum(not gate(r["title"], r["lead"]).keep for r in other)
    recall = kept_relevant / len(relevant)
    print(
        f"gate on {SHARED_EVAL.name}: kept {kept_relevant}/{len(relevant)} relevant ({recall:.1%}), "
        f"dropped {dropped_other}/{len(other)} non-relevant"
    )
    assert recall >= 0.97
    # Measured when the gate was written: 30/30 kept, 5 of the 6 non-relevant dropped (the kept one mentions
    # Sensex, Infosys and the US Fed). Guard against the gate quietly becoming a no-op.
    assert dropped_other >= 4
