"""Sample events for tests: one valid instance of each event type, with overridable fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.events import (
    AlertEvidence,
    AlertFiring,
    AlertResolved,
    ArticleFetched,
    ArticleScored,
    DeadLetter,
    ModelInfo,
    SignalUpdated,
    Source,
    Stance,
)

T0 = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)


def article(n: int = 1, **fields: Any) -> ArticleFetched:
    values: dict[str, Any] = {
        "article_id": f"a{n:04d}",
        "story_id": f"s{n:04d}",
        "url": f"https://news.example/india-us/{n}",
        "title": f"India and US agree on tariff roadmap, part {n}",
        "summary": "New Delhi and Washington said negotiators closed the first tranche of a trade deal.",
        "published_at": T0 + timedelta(minutes=n),
        "fetched_at": T0 + timedelta(minutes=n, seconds=30),
        "language": "en",
        "source": Source(feed_id="wire", name="Wire", url="https://news.example/rss"),
        "relevance_hint": 0.9,
    }
    values.update(fields)
    return ArticleFetched(**values)


def scored(n: int = 1, *, stance: float = 0.6, **fields: Any) -> ArticleScored:
    label = "cooperation" if stance > 0.2 else "strain" if stance < -0.2 else "neutral"
    values: dict[str, Any] = {
        "relevance": 0.97,
        "topics": {"trade_tariffs": 0.93, "energy_nuclear": 0.12},
        "stance": Stance(
            score=stance,
            label=label,
            probabilities={"strain": 0.1, "cooperation": 0.8, "neutral": 0.1},
        ),
        "model": ModelInfo(name="minilm-heads", version="test"),
        "evidence": ["negotiators closed the first tranche of a trade deal"],
        "scored_at": T0 + timedelta(minutes=n, seconds=40),
    }
    values.update(fields)
    return ArticleScored.from_article(article(n), **values)


def signal(**fields: Any) -> SignalUpdated:
    values: dict[str, Any] = {
        "signal": "stance_index",
        "topic": "trade_tariffs",
        "window": "6h",
        "value": -0.42,
        "articles": 12,
        "stories": 7,
        "at": T0,
    }
    values.update(fields)
    return SignalUpdated(**values)


def _alert_fields() -> dict[str, Any]:
    return {
        "alert_id": "tariff-strain-high/trade_tariffs/20260202T0930Z",
        "rule": "tariff-strain-high",
        "severity": "warning",
        "subject": "trade_tariffs",
        "signal": "stance_index",
        "value": -0.55,
        "threshold": -0.4,
        "baseline": None,
        "window": "24h",
        "started_at": T0,
        "at": T0 + timedelta(hours=2),
        "evidence": [
            AlertEvidence(
                article_id="a0001",
                title="US doubles tariffs on Indian goods",
                url="https://news.example/1",
                stance=-0.8,
                evidence="doubles tariffs",
            )
        ],
        "summary": "Trade and tariffs stance index fell to -0.55 over 24h (threshold -0.40).",
    }


def firing(**fields: Any) -> AlertFiring:
    return AlertFiring(**(_alert_fields() | fields))


def resolved(**fields: Any) -> AlertResolved:
    return AlertResolved(**(_alert_fields() | fields))


def deadletter(**fields: Any) -> DeadLetter:
    values: dict[str, Any] = {
        "stage": "scorer",
        "reason": "undecodable: not valid JSON",
        "topic": "news.articles",
        "partition": 1,
        "offset": 42,
        "key": "a0001",
        "value_base64": "/3Jhdw==",
        "at": T0,
    }
    values.update(fields)
    return DeadLetter(**values)


ALL_EVENTS = (article, scored, signal, firing, resolved, deadletter)


def config_error(tmp_path: Any, rules: list[dict[str, Any]]) -> Any:
    """The :class:`~monitor.errors.ConfigError` that loading a ``monitor.yaml`` of these ``rules`` raises
    (fails the test if it loads)."""
    import pytest
    import yaml

    from monitor.config import load_config
    from monitor.errors import ConfigError

    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value
