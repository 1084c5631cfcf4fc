"""Divergence rules: two viewpoints' stance on one subject, the config checks, the condition at one tick,
and the engine over a whole scenario (hysteresis, ``min_stories`` per side, evidence from each side)."""

from __future__ import annotations

import pytest
import yaml
from fixtures import scenarios
from fixtures.scenarios import run_engine
from samples import config_error

from monitor.alerts.conditions import observe
from monitor.alerts.describe import evidence, firing_summary, resolved_summary
from monitor.alerts.rules import RuleConfig
from monitor.config import load_config, parse_config
from monitor.errors import ConfigError
from monitor.events import AlertFiring, AlertResolved
from monitor.signals.windows import Article, TickView

H = 3600 * 1_000_000
TICK = 30 * 24 * H

RULE = {
    "name": "views",
    "subject": "trade_tariffs",
    "signal": "stance_index",
    "window": "24h",
    "divergence": {"between": ["india", "us"], "delta": 0.5, "clear_delta": 0.25},
    "min_stories": 3,
}


def rule(**changes) -> dict:
    values = {**RULE, **changes}
    return {k: v for k, v in values.items() if v is not None}


def art(
    aid: str, stance: float, viewpoint: str, *, hours_ago: float = 1.0, relevance: float = 1.0
) -> Article:
    event = TICK - int(hours_ago * H)
    return Article(
        article_id=aid,
        story_id=aid,
        arrival_us=event,
        event_us=event,
        relevance=relevance,
        subjects=frozenset({"overall", "trade_tariffs"}),
        stance=stance,
        label="strain" if stance <= -0.2 else "cooperation" if stance >= 0.2 else "neutral",
        title=f"title {aid}",
        url=f"https://x/{aid}",
        source=f"{viewpoint} wire",
        evidence=None,
        viewpoint=viewpoint,
    )


def view(india: list[float], us: list[float], international: list[float] = ()) -> TickView:
    items = [art(f"in{i}", s, "india") for i, s in enumerate(india)]
    items += [art(f"us{i}", s, "us") for i, s in enumerate(us)]
    items += [art(f"xx{i}", s, "international") for i, s in enumerate(international)]
    return TickView(TICK, items)


# -- config ------------------------------------------------------------------------------------------


def test_a_divergence_rule_parses():
    (r,) = parse_config({"rules": [rule(**{"for": "30m"})]}, source="m.yaml").rules
    assert r.kind == "divergence"
    assert r.divergence.between == ("india", "us")
    assert (r.divergence.delta, r.divergence.clear_level) == (0.5, 0.25)
    (plain,) = parse_config(
        {"rules": [rule(divergence={"between": ["us", "india"], "delta": 0.4})]}, source="m"
    ).rules
    assert plain.divergence.clear_level == 0.4  # no clear_delta: clears at the firing level


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        (
            {"divergence": {"between": ["india", "india"], "delta": 0.5}},
            "rules[0].divergence",
            "two different",
        ),
        (
            {"divergence": {"between": ["india", "china"], "delta": 0.5}},
            "rules[0].divergence.between[1]",
            "india",
        ),
        ({"divergence": {"between": ["india"], "delta": 0.5}}, "rules[0].divergence.between[1]", "required"),
        ({"divergence": {"between": ["india", "us"]}}, "rules[0].divergence.delta", "this key is required"),
        (
            {"divergence": {"between": ["india", "us"], "delta": 0}},
            "rules[0].divergence.delta",
            "greater than 0",
        ),
        ({"divergence": {"between": ["india", "us"], "delta": 2.5}}, "rules[0].divergence", "whole range"),
        (
            {"divergence": {"between": ["india", "us"], "delta": 0.3, "clear_delta": 0.4}},
            "rules[0].divergence",
            "must not exceed",
        ),
        ({"signal": "volume"}, "rules[0].divergence", "compares 'stance_index' or 'strained_share'"),
        (
            {"divergence": {"between": ["india", "us"], "delta": 0.5, "gap": 1}},
            "rules[0].divergence.gap",
            "no such key",
        ),
        ({"threshold": {"below": -0.3}}, "rules[0]", "exactly one condition"),
    ],
)
def test_a_divergence_rule_that_cannot_work_is_rejected_naming_rule_and_field(
    tmp_path, changes, key, message
):
    error = config_error(tmp_path, [rule(**changes)])
    assert error.key == key
    assert message in error.expected
    assert "rule 'views'" in error.expected


def test_the_feed_viewpoint_defaults_to_international_and_rejects_unknown_ones():
    feed = {"id": "f", "name": "F", "url": "https://f.example/rss"}
    config = parse_config({"feeds": [feed, {**feed, "id": "g", "viewpoint": "india"}]}, source="m.yaml")
    assert [f.viewpoint for f in config.feeds] == ["international", "india"]
    with pytest.raises(ConfigError) as info:
        parse_config({"feeds": [{**feed, "viewpoint": "china"}]}, source="m.yaml")
    assert info.value.key == "feeds[0].viewpoint"


def test_every_default_feed_declares_the_viewpoint_its_tags_say():
    for feed in load_config(None).feeds:
        assert feed.viewpoint == feed.tags[0], feed.id
    assert {f.viewpoint for f in load_config(None).feeds} == {"india", "us", "international"}


# -- condition ---------------------------------------------------------------------------------------


def test_fires_when_the_sides_disagree_by_delta_and_not_when_they_agree():
    r = RuleConfig.model_validate(rule())
    apart = observe(r, view([0.6, 0.6, 0.6], [-0.4, -0.4, -0.4]), coverage_start_us=None)
    assert apart.fire and apart.hold and apart.direction == "up"
    assert (apart.value, apart.baseline) == pytest.approx((0.6, -0.4))
    assert apart.threshold == pytest.approx(0.1)  # the US reading plus delta
    flipped = observe(r, view([-0.4, -0.4, -0.4], [0.6, 0.6, 0.6]), coverage_start_us=None)
    assert flipped.fire and flipped.direction == "down"
    assert flipped.threshold == pytest.approx(0.1)  # the US reading minus delta
    agree = observe(
        r, view([-0.5, -0.5, -0.5], [-0.4, -0.4, -0.4], international=[0.9] * 3), coverage_start_us=None
    )
    assert not agree.fire and not agree.hold


def test_min_stories_counts_each_side():
    r = RuleConfig.model_validate(rule())
    short = observe(r, view([0.6] * 6, [-0.6] * 2), coverage_start_us=None)
    assert not short.fire  # six Indian stories do not make up for two US ones
    missing = observe(r, view([0.6] * 6, []), coverage_start_us=None)
    assert not missing.fire and not missing.hold and missing.baseline is None


@pytest.mark.parametrize(
    ("us", "episode", "fire", "hold"),
    [
        ([-0.4, -0.4, -0.4], None, True, True),  # gap 1.0
        ([0.2, 0.2, 0.2], "up", False, True),  # gap 0.4: under delta, above clear_delta: stays firing
        ([0.5, 0.5, 0.5], "up", False, False),  # gap 0.1: under clear_delta: clears
        ([1.0, 1.0, 1.0], "up", False, False),  # reversed (US reads higher by 0.4): the up episode clears
    ],
)
def test_hysteresis_between_the_alert_and_clear_levels(us, episode, fire, hold):
    r = RuleConfig.model_validate(rule())
    obs = observe(r, view([0.6, 0.6, 0.6], us), coverage_start_us=None, episode=episode)
    assert (obs.fire, obs.hold) == (fire, hold)


def test_evidence_is_the_top_story_of_each_side_and_the_summary_says_who_reads_it_how():
    r = RuleConfig.model_validate(rule())
    tick = view([0.6, 0.3, 0.8], [-0.4, -0.7, 0.1], international=[-0.9])
    obs = observe(r, tick, coverage_start_us=None)
    items = evidence(r, obs, count=3)
    assert [(i.article_id, i.viewpoint) for i in items] == [("in2", "india"), ("us1", "us")]
    text = firing_summary(r, obs, items)
    assert "Indian outlets read it as cooperation (+0.57) across 3 stories" in text
    assert "US outlets read it as strain (-0.33) across 3 stories" in text
    assert "0.90 apart (alert level 0.50)" in text
    assert "led by \u201ctitle in2\u201d (Indian outlets) and \u201ctitle us1\u201d (US outlets)" in text
    done = resolved_summary(
        r, observe(r, view([0.6] * 3, [0.5] * 3), coverage_start_us=None), started_us=TICK
    )
    assert done.startswith(
        "Resolved: India-US trade and tariffs, Indian outlets and US outlets read it 0.10 apart"
    )


# -- engine over scenarios ---------------------------------------------------------------------------


def _events(name: str, **rule_changes):
    scenario = scenarios.load(name)
    rules = [{**r, **rule_changes} for r in scenario.rules]
    if "divergence" in rule_changes and rule_changes["divergence"] is None:
        rules = [{k: v for k, v in r.items() if k != "divergence"} for r in rules]
    config = parse_config({"rules": rules}, source=name)
    outputs = run_engine(scenario.articles, config)
    return scenario, [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]


def test_the_engine_fires_on_divergent_views_with_one_story_from_each_side():
    scenario, events = _events("views_diverge")
    assert [(e.state, e.at) for e in events] == [
        ("firing", scenario.at("3h25m")),
        ("resolved", scenario.at("10h25m")),
    ]
    firing = events[0]
    assert (firing.value, firing.baseline) == pytest.approx((0.6, -0.4))
    assert [e.viewpoint for e in firing.evidence] == ["india", "us"]
    # Each side's stories all read alike: on a tie the most recent shows.
    assert [e.title for e in firing.evidence] == [
        "Indian exporters welcome progress in US talks",
        "USTR says India offer falls short",
    ]
    assert firing.started_at == scenario.at("2h55m")


def test_without_a_clear_level_the_alert_resolves_as_soon_as_the_gap_is_under_delta():
    scenario, events = _events("views_diverge", divergence={"between": ["india", "us"], "delta": 0.5})
    # The second cooperative US story (7h25m tick) narrows the gap to 0.48.
    assert [(e.state, e.at) for e in events] == [
        ("firing", scenario.at("3h25m")),
        ("resolved", scenario.at("7h25m")),
    ]


@pytest.mark.parametrize("name", ["views_agree", "views_one_sided"])
def test_no_divergence_alert_when_the_sides_agree_or_one_is_thin(name):
    _, events = _events(name)
    assert events == []


def test_a_lower_min_stories_lets_the_one_sided_scenario_fire():
    _, events = _events("views_one_sided", min_stories=2)
    assert [e.state for e in events] == ["firing"]


def test_the_commented_example_in_the_default_config_is_a_valid_divergence_rule():
    from importlib import resources

    lines = resources.files("monitor").joinpath("default.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("#  - name: trade_views_diverge")
    example = []
    for line in lines[start:]:
        if not line.startswith("#  "):
            break
        example.append(line[1:])
    (r,) = parse_config({"rules": yaml.safe_load("\n".join(example))}, source="default.yaml").rules
    assert r.kind == "divergence" and r.divergence.between == ("india", "us")
