"""Rules in monitor.yaml: the shipped set validates; a rule that cannot work is rejected, clearly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from samples import config_error

from monitor.config import load_config, parse_config
from monitor.errors import ConfigError

BASE = {
    "name": "tariffs",
    "subject": "trade_tariffs",
    "signal": "stance_index",
    "window": "24h",
    "threshold": {"below": -0.3},
}


def rule(**changes):
    values = {**BASE, **changes}
    return {k: v for k, v in values.items() if v is not None}


def test_default_rule_set_validates_and_covers_the_issue():
    config = load_config(None)
    names = {r.name: r for r in config.rules}
    assert set(names) == {
        "tariff_strain_high",
        "tariff_shock",
        "trade_cooperation_surge",
        "relationship_shift",
        "critical_minerals_surge",
        "defence_cooperation_shift",
        "energy_cooperation_shift",
    }
    assert names["tariff_strain_high"].kind == "threshold"
    assert names["trade_cooperation_surge"].kind == "change"
    assert names["relationship_shift"].subject == "overall"
    assert names["critical_minerals_surge"].kind == "anomaly"
    assert names["tariff_shock"].kind == "burst"
    assert names["tariff_strain_high"].for_ == timedelta(minutes=30)
    assert names["tariff_strain_high"].renotify == timedelta(hours=12)


def test_a_full_rule_parses():
    config = parse_config(
        {
            "rules": [
                rule(
                    threshold={"below": -0.3, "clear_above": -0.1},
                    min_stories=2,
                    keep_firing_for="1h",
                    renotify="6h",
                    **{"for": "15m"},
                )
            ]
        },
        source="m.yaml",
    )
    r = config.rules[0]
    assert (r.for_, r.keep_firing_for, r.renotify) == (
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=6),
    )
    assert (r.threshold.fire_level, r.threshold.clear_level, r.threshold.direction) == (-0.3, -0.1, "down")
    assert r.span == timedelta(hours=24)


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"subject": "tarrifs"}, "rules[0].subject", "unknown topic 'tarrifs'"),
        ({"window": "-1h"}, "rules[0].window", "positive window"),
        ({"window": "soon"}, "rules[0].window", "duration"),
        ({"threshold": {"below": -0.3, "clear_above": -0.5}}, "rules[0].threshold", "wrong side"),
        ({"threshold": {"above": 0.3, "clear_below": 0.5}}, "rules[0].threshold", "wrong side"),
        ({"threshold": {"above": 0.3, "clear_above": 0.5}}, "rules[0].threshold", "goes with 'below'"),
        ({"threshold": {"above": 0.3, "below": -0.3}}, "rules[0].threshold", "exactly one of"),
        ({"threshold": {"below": -1.5}}, "rules[0].threshold", "outside the range of stance_index"),
        (
            {"signal": "strained_share", "threshold": {"above": 1.2}},
            "rules[0].threshold",
            "outside the range",
        ),
        ({"signal": "mood"}, "rules[0].signal", "stance_index"),
        ({"threshold": None}, "rules[0]", "exactly one condition"),
        ({"change": {"baseline": "7d", "delta": 0.3}}, "rules[0]", "exactly one condition"),
        ({"threshold": None, "change": {"baseline": "12h", "delta": 0.3}}, "rules[0].change", "longer than"),
        (
            {"threshold": None, "change": {"baseline": "7d"}},
            "rules[0].change",
            "exactly one of 'delta' or 'z'",
        ),
        (
            {"threshold": None, "change": {"baseline": "7d", "delta": 0.3, "clear_delta": 0.5}},
            "rules[0].change",
            "must not exceed",
        ),
        (
            {"threshold": None, "signal": "stories", "change": {"baseline": "7d", "z": 2}},
            "rules[0].change",
            "use 'delta'",
        ),
        (
            {"threshold": None, "change": {"baseline": "7d", "delta": -0.3}},
            "rules[0].change.delta",
            "greater than 0",
        ),
        ({"threshold": None, "anomaly": {"baseline": "7d", "k": 3}}, "rules[0].anomaly", "counts 'stories'"),
        (
            {"threshold": None, "signal": "stories", "anomaly": {"baseline": "36h", "k": 3}},
            "rules[0].anomaly",
            "two windows",
        ),
        ({"for": "-5m"}, "rules[0].for", "zero or more"),
        ({"keep_firing_for": "-1h"}, "rules[0].keep_firing_for", "zero or more"),
        ({"renotify": "0s"}, "rules[0].renotify", "positive"),
        ({"min_stories": -1}, "rules[0].min_stories", "greater than or equal to 0"),
        ({"severity": "panic"}, "rules[0].severity", "info"),
        ({"colour": "red"}, "rules[0].colour", "no such key"),
        ({"name": "Bad Name"}, "rules[0].name", "slug"),
    ],
)
def test_a_rule_that_cannot_work_is_rejected_naming_rule_and_field(tmp_path, changes, key, message):
    error = config_error(tmp_path, [rule(**changes)])
    assert error.key == key
    assert message in error.expected
    name = changes.get("name", "tariffs")
    if name == "tariffs":
        assert "rule 'tariffs'" in error.expected


def test_a_missing_field_names_the_rule():
    with pytest.raises(ConfigError) as info:
        parse_config({"rules": [rule(signal=None)]}, source="m.yaml")
    assert info.value.key == "rules[0].signal"
    assert info.value.expected == "rule 'tariffs': this key is required"


def test_rule_names_are_unique():
    with pytest.raises(ConfigError, match="duplicated"):
        parse_config({"rules": [rule(), rule()]}, source="m.yaml")
