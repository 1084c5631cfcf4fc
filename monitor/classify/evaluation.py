"""Figures of a classifier on labelled items: relevance F1, topic micro/macro and per-topic F1, stance
macro F1 and confusion matrix. Pure functions over gold labels and :class:`Scores`.

Conventions (the usual ones, as in scikit-learn): topic figures count every item (an irrelevant item's
gold topics are empty); a topic with neither gold nor predicted items is left out of the macro average.
Stance figures count the items whose gold stance is strain, cooperation or neutral ("mixed" and
unlabelled items are left out); the macro average runs over the labels that occur in gold or predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.classify.base import Scores
from monitor.classify.data import LabelledItem
from monitor.events import STANCE_LABELS, TOPICS


@dataclass(frozen=True)
class F1:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp else 0.0

    @property
    def defined(self) -> bool:
        return self.tp + self.fp + self.fn > 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def count(gold: Sequence[bool], predicted: Sequence[bool]) -> F1:
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p and not g)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g and not p)
    return F1(tp, fp, fn)


@dataclass(frozen=True)
class StanceFigures:
    n: int
    macro_f1: float
    accuracy: float
    per_label: dict[str, F1]
    confusion: list[list[int]]  # rows: gold STANCE_LABELS, columns: predicted STANCE_LABELS


def stance_figures(gold: Sequence[str], predicted: Sequence[str]) -> StanceFigures:
    per_label: dict[str, F1] = {
        lab: count([g == lab for g in gold], [p == lab for p in predicted]) for lab in STANCE_LABELS
    }
    present = [lab for lab in STANCE_LABELS if lab in gold or lab in predicted]
    macro = sum(per_label[lab].f1 for lab in present) / len(present) if present else 0.0
    confusion = [
        [sum(1 for g, p in zip(gold, predicted, strict=True) if g == a and p == b) for b in STANCE_LABELS]
        for a in STANCE_LABELS
    ]
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return StanceFigures(len(gold), macro, correct / len(gold) if gold else 0.0, per_label, confusion)


@dataclass(frozen=True)
class Report:
    """All figures of one evaluation."""

    n_items: int
    relevance: F1
    topic_micro: F1
    topic_macro_f1: float
    per_topic: dict[str, F1]
    stance: StanceFigures
    stance_relevant: StanceFigures
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """The headline figures."""
        return {
            "relevance_f1": round(self.relevance.f1, 4),
            "topic_micro_f1": round(self.topic_micro.f1, 4),
            "topic_macro_f1": round(self.topic_macro_f1, 4),
            "stance_macro_f1": round(self.stance.macro_f1, 4),
            "stance_macro_f1_relevant": round(self.stance_relevant.macro_f1, 4),
        }

    def to_json_dict(self) -> dict[str, Any]:
        def stance(s: StanceFigures) -> dict[str, Any]:
            return {
                "n": s.n,
                "macro_f1": round(s.macro_f1, 4),
                "accuracy": round(s.accuracy, 4),
                "per_label": {k: v.as_dict() for k, v in s.per_label.items()},
                "confusion": {"labels": list(STANCE_LABELS), "rows_gold_columns_predicted": s.confusion},
            }

        return {
            "items": self.n_items,
            **self.summary(),
            "relevance": self.relevance.as_dict(),
            "topics": {
                "micro": self.topic_micro.as_dict(),
                "macro_f1": round(self.topic_macro_f1, 4),
                "per_topic": {k: v.as_dict() for k, v in self.per_topic.items()},
            },
            "stance": stance(self.stance),
            "stance_relevant_only": stance(self.stance_relevant),
            "notes": list(self.notes),
        }

    def format_text(self) -> str:
        """A readable table of the figures (what ``monitor eval`` prints)."""
        lines = [f"items: {self.n_items}"]
        r = self.relevance
        lines.append(
            f"relevance F1 {r.f1:.3f}  (precision {r.precision:.3f}, recall {r.recall:.3f}; "
            f"tp {r.tp} fp {r.fp} fn {r.fn})"
        )
        t = self.topic_micro
        lines.append(f"topics micro F1 {t.f1:.3f}  macro F1 {self.topic_macro_f1:.3f}")
        lines.append(f"  {'topic':<20} {'F1':>6} {'prec':>6} {'rec':>6} {'gold':>5} {'pred':>5}")
        for name, f in self.per_topic.items():
            lines.append(
                f"  {name:<20} {f.f1:>6.3f} {f.precision:>6.3f} {f.recall:>6.3f} "
                f"{f.tp + f.fn:>5} {f.tp + f.fp:>5}"
            )
        for title, s in (
            ("stance", self.stance),
            ("stance (gold-relevant items only)", self.stance_relevant),
        ):
            lines.append(f"{title}: macro F1 {s.macro_f1:.3f}  accuracy {s.accuracy:.3f}  (n={s.n})")
            lines.append("  confusion (rows gold, columns predicted):")
            lines.append("  " + " " * 12 + "".join(f"{lab:>13}" for lab in STANCE_LABELS))
            for lab, row in zip(STANCE_LABELS, s.confusion, strict=True):
                lines.append(f"  {lab:<12}" + "".join(f"{v:>13}" for v in row))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def evaluate(gold: Sequence[LabelledItem], predicted: Sequence[Scores]) -> Report:
    """Compare ``predicted`` with ``gold`` item by item."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold items but {len(predicted)} predictions")
    relevance = count([g.relevant for g in gold], [p.relevant for p in predicted])
    per_topic = {
        t: count([t in g.topics for g in gold], [t in p.topic_labels for p in predicted]) for t in TOPICS
    }
    micro = F1(*(sum(getattr(f, k) for f in per_topic.values()) for k in ("tp", "fp", "fn")))
    defined = [f.f1 for f in per_topic.values() if f.defined]
    macro = sum(defined) / len(defined) if defined else 0.0
    stance_pairs = [(g, p) for g, p in zip(gold, predicted, strict=True) if g.stance in STANCE_LABELS]
    stance = stance_figures(
        [str(g.stance) for g, _ in stance_pairs], [p.stance_label for _, p in stance_pairs]
    )
    relevant_pairs = [(g, p) for g, p in stance_pairs if g.relevant]
    stance_rel = stance_figures(
        [str(g.stance) for g, _ in relevant_pairs], [p.stance_label for _, p in relevant_pairs]
    )
    notes = []
    mixed = sum(1 for g in gold if g.stance == "mixed")
    if mixed:
        notes.append(f"{mixed} item(s) with stance 'mixed' left out of the stance figures")
    return Report(len(gold), relevance, micro, macro, per_topic, stance, stance_rel, notes)
