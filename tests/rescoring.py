"""Helpers for the re-scoring tests: scenario articles as the poller published them, and two stand-in models.

A scenario (``tests/fixtures/scenarios``) is written as scored articles. :func:`fetched` strips the
judgement off (what was on ``news.articles``); :class:`ScenarioModel` gives back the scenario's judgement of
each text (what the live model said); :class:`StanceBlindModel` is a second model version that sees the
same relevance and topics but no stance at all (every article neutral, score 0), so no stance rule can fire.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.classify import Classifier, Scores, TextItem
from monitor.events import ArticleFetched, ArticleScored, ModelInfo


def fetched(article: ArticleScored) -> ArticleFetched:
    """The article as the poller published it."""
    fields = article.model_dump(include=set(ArticleFetched.model_fields) - {"type", "schema_version"})
    return ArticleFetched(**fields)


class ScenarioModel(Classifier):
    """Scores each text as the scenario's articles say (the live model's judgement)."""

    def __init__(self, articles: Sequence[ArticleScored], *, version: str = "1") -> None:
        self._by_text = {(a.title, a.summary): a for a in articles}
        self._info = ModelInfo(name="scenario", version=version)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        out = []
        for item in items:
            a = self._by_text[(item.title, item.summary)]
            out.append(
                Scores(
                    relevance=a.relevance,
                    topics=dict(a.topics),
                    stance_score=a.stance.score,
                    stance_label=a.stance.label,
                    stance_probabilities=dict(a.stance.probabilities),
                    evidence=list(a.evidence),
                )
            )
        return out


class StanceBlindModel(ScenarioModel):
    """The scenario's relevance and topics, but every stance neutral with score 0."""

    def __init__(self, articles: Sequence[ArticleScored]) -> None:
        super().__init__(articles, version="stance-blind")

    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        return [
            Scores(
                relevance=s.relevance,
                topics=s.topics,
                stance_score=0.0,
                stance_label="neutral",
                stance_probabilities={"strain": 0.0, "cooperation": 0.0, "neutral": 1.0},
                evidence=[],
            )
            for s in super().score(items)
        ]
