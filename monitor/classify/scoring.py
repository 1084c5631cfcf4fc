"""From fetched articles to scored events: the pure part of the scorer stage (no bus, no threads)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.classify.base import Classifier, Scores, TextItem
from monitor.events import ArticleFetched, ArticleScored, ModelInfo


def text_item(article: ArticleFetched) -> TextItem:
    """What the classifier reads of an article: its headline and summary."""
    return TextItem(article.title, article.summary)


def scored_event(
    article: ArticleFetched, scores: Scores, model: ModelInfo, *, now: datetime
) -> ArticleScored:
    """The ``ArticleScored`` event for ``article`` (all its fields, plus the judgement)."""
    return ArticleScored.from_article(
        article,
        relevance=scores.relevance,
        topics=dict(scores.topics),
        stance=scores.stance(),
        model=model,
        evidence=list(scores.evidence),
        scored_at=now,
    )


@dataclass(frozen=True, slots=True)
class Unscorable:
    """An article the classifier cannot judge, and why."""

    article: ArticleFetched
    reason: str


def score_articles(
    classifier: Classifier, articles: Sequence[ArticleFetched], *, now: datetime
) -> list[ArticleScored | Unscorable]:
    """Score ``articles`` in one batch; articles with no text at all come back as :class:`Unscorable`."""
    results: list[ArticleScored | Unscorable | None] = [None] * len(articles)
    todo: list[int] = []
    for index, article in enumerate(articles):
        if text_item(article).is_empty:
            results[index] = Unscorable(article, "unscorable: the article has neither title nor summary")
        else:
            todo.append(index)
    if todo:
        scores = classifier.score([text_item(articles[i]) for i in todo])
        for index, s in zip(todo, scores, strict=True):
            results[index] = scored_event(articles[index], s, classifier.info, now=now)
    return [r for r in results if r is not None]
