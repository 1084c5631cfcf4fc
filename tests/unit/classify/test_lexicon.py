"""Word lists, lexical features and the rule baselines."""

from __future__ import annotations

import pytest

from monitor.classify import TextItem
from monitor.classify.lexicon import (
    FEATURE_GROUPS,
    RuleClassifier,
    mentions_india,
    mentions_us,
    relevance_features,
    stance_features,
    topic_features,
    topic_hits,
)
from monitor.events import TOPICS


@pytest.mark.parametrize(
    ("text", "india", "us"),
    [
        ("New Delhi and Washington agree", True, True),
        ("Modi speaks to Trump", True, True),
        ("the U.S. and India", True, True),
        ("US tariffs", False, True),
        ("let us go", False, False),  # "us" is not the US
        ("Indiana votes", False, False),  # whole words only
        ("Americans abroad", False, True),
    ],
)
def test_country_terms(text: str, india: bool, us: bool) -> None:
    assert mentions_india(text) is india
    assert mentions_us(text) is us


def test_feature_groups_have_their_declared_sizes() -> None:
    text = "India and the US sign a defence pact amid tariff tensions with China"
    for group in FEATURE_GROUPS.values():
        assert len(group.compute(text)) == group.size
    assert relevance_features(text) == [1.0, 1.0, 1.0, 1.0]
    hits = dict(zip(TOPICS, topic_features(text), strict=True))
    assert hits["defence"] == 1.0 and hits["trade_tariffs"] == 1.0 and hits["critical_minerals"] == 0.0
    strain, coop, balance = stance_features(text)
    assert strain == 1.0 and coop == 1.0 and -1.0 <= balance <= 1.0


def test_names_and_joint_frameworks() -> None:
    assert relevance_features("HAL signs deal with GE Aerospace for engines")[:3] == [1.0, 1.0, 1.0]
    assert relevance_features("Quad ministers meet in Tokyo")[2] == 1.0  # a grouping both belong to
    assert relevance_features("Rahul Gandhi writes to Modi on mining tenders")[:3] == [1.0, 0.0, 0.0]


def test_topic_keywords() -> None:
    assert topic_hits("Rare earth magnets and lithium")["critical_minerals"] == 3
    assert topic_hits("H-1B visa fee")["diplomacy_other"] == 2
    assert topic_hits("ISRO and NASA launch a satellite")["technology"] == 3


def test_rule_classifier_baselines() -> None:
    rules = RuleClassifier()
    deal, eu, fee = rules.score(
        [
            TextItem("India and US agree trade deal cutting tariffs", "The pact will boost exports."),
            TextItem("EU and US reach trade deal", "Brussels agreed to 15% tariffs."),
            TextItem("Trump's H-1B fee shock rattles Indian techies", "Families fear the steep hike."),
        ]
    )
    assert deal.relevant and deal.topic_labels == ["trade_tariffs"]
    assert deal.stance_label == "cooperation" and deal.stance_score > 0
    assert deal.evidence
    assert not eu.relevant and eu.topic_labels == [] and eu.stance_label == "neutral"
    assert fee.relevant and fee.topic_labels == ["diplomacy_other"] and fee.stance_label == "strain"
    assert fee.evidence == ["Families fear the steep hike."] or fee.evidence[0].startswith("Trump")
    for s in (deal, eu, fee):
        assert abs(sum(s.stance_probabilities.values()) - 1.0) < 1e-9
        assert -1.0 <= s.stance_score <= 1.0
