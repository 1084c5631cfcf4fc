"""The classifier's interface and plain data types (no torch here).

A :class:`Classifier` turns article texts into :class:`Scores`: relevance to India-US relations, seven
independent topic probabilities and a stance on the strain <-> cooperation axis, with the sentences that
drove the stance. Implementations: :class:`monitor.classify.model.TransformerClassifier` (the encoder plus
trained heads, what the scorer runs) and :class:`monitor.classify.lexicon.RuleClassifier` (the keyword
baselines the model must beat; also the light-weight classifier of the unit tests).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.events import STANCE_LABELS, TOPICS, ModelInfo, Stance, StanceLabel

__all__ = ["STANCE_LABELS", "TOPICS", "Classifier", "Scores", "TextItem"]

DECISION_THRESHOLD = 0.5
"""Every probability the classifier emits is calibrated so that 0.5 is its decision threshold."""

DEFAULT_NEUTRAL_SHARE = 0.10
"""The share of neutral items assumed among relevant news (the training data has a third by design; in
real India-US news most relevant items lean one way: none of the 30 relevant real articles of the dev file
is neutral). The stance head's neutral logit is shifted by log(share / training share), the textbook
correction for a change of class priors; strain and cooperation share the rest equally."""


@dataclass(frozen=True, slots=True)
class TextItem:
    """What is scored: a headline and an optional lead or body."""

    title: str
    summary: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.title.strip() or self.summary.strip())


@dataclass(frozen=True, slots=True)
class Scores:
    """The judgement on one item.

    ``relevance`` and each of ``topics`` are probabilities whose decision threshold is 0.5;
    ``stance_probabilities`` sum to 1 and ``stance_score`` = P(cooperation) - P(strain) lies in [-1, +1].
    """

    relevance: float
    topics: dict[str, float]
    stance_score: float
    stance_label: StanceLabel
    stance_probabilities: dict[StanceLabel, float]
    evidence: list[str] = field(default_factory=list)

    @property
    def relevant(self) -> bool:
        return self.relevance >= DECISION_THRESHOLD

    @property
    def topic_labels(self) -> list[str]:
        """The topics whose probability reaches the decision threshold, in the fixed label order."""
        return [t for t in TOPICS if self.topics.get(t, 0.0) >= DECISION_THRESHOLD]

    def stance(self) -> Stance:
        """The stance as the event field (``ArticleScored.stance``)."""
        return Stance(
            score=self.stance_score, label=self.stance_label, probabilities=dict(self.stance_probabilities)
        )

    def to_json_dict(self) -> dict[str, object]:
        """The scored fields of ``monitor score`` output and of ``ArticleScored`` (DESIGN §4, §5)."""
        return {
            "relevance": round(self.relevance, 6),
            "relevant": self.relevant,
            "topics": {t: round(p, 6) for t, p in self.topics.items()},
            "stance": {
                "score": round(self.stance_score, 6),
                "label": self.stance_label,
                "probabilities": {k: round(v, 6) for k, v in self.stance_probabilities.items()},
            },
            "evidence": list(self.evidence),
        }


class Classifier(ABC):
    """Scores batches of items; deterministic (same input, same output)."""

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """Name and version of the model, as written into every scored record."""

    @abstractmethod
    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        """Scores of ``items``, in order. Raises :class:`~monitor.errors.ModelError` if it cannot."""
