"""Story-level dedup in alerts: each story once in the evidence, with the number of outlets that carried
it, and one stable dedup key per episode."""

from __future__ import annotations

import json

from fixtures import scenarios
from fixtures.scenarios import run_engine

from monitor.config import parse_config
from monitor.events import AlertFiring, AlertResolved, Source, decode_alert

RULES = [
    {
        "name": "trade_strain_any",
        "severity": "warning",
        "subject": "trade_tariffs",
        "signal": "stance_index",
        "window": "24h",
        "threshold": {"below": -0.1, "clear_above": 0.5},
        "min_stories": 3,
        "renotify": "1h",
    }
]


def test_a_syndicated_story_is_listed_once_with_its_outlet_count():
    scenario = scenarios.load("syndicated_copies")
    articles = []
    copies = 0
    for original in scenario.articles:
        article = original
        if article.story_id.endswith("-wire"):
            # The original and its eleven copies come from seven outlets (some publish twice).
            article = article.model_copy(
                update={"source": Source(feed_id=f"o{copies % 7}", name=f"Outlet {copies % 7}", url="")}
            )
            copies += 1
        articles.append(article)
    assert copies == 12
    outputs = run_engine(articles, parse_config({"rules": RULES}, source="test"))
    events = [o for o in outputs if isinstance(o, AlertFiring | AlertResolved)]
    firing = [e for e in events if isinstance(e, AlertFiring)]
    assert firing, "the rule fires on the three stories"
    seen = []
    for event in firing:
        stories = [e.story_id for e in event.evidence]
        assert len(stories) == len(set(stories)) == 3, stories
        outlets = {e.story_id.rsplit("-", 1)[1]: e.outlets for e in event.evidence}
        assert outlets["ok1"] == outlets["ok2"] == 1
        seen.append(outlets["wire"])
        assert event.evidence[0].story_id.endswith("-wire")  # the most strained story first
    # Fired when the wire story first arrived; the re-notifications after the copies count every outlet.
    assert seen[0] == 1 and seen[-1] == 7 and seen == sorted(seen), seen
    # One dedup key per episode: every event of the episode carries it, and it survives the wire.
    episodes = {e.alert_id for e in events}
    for event in events:
        assert event.dedup_key == event.alert_id
        again = decode_alert(event.encode())
        assert again.dedup_key == event.dedup_key and again.evidence == event.evidence
    assert len({e.dedup_key for e in events}) == len(episodes)


def test_records_written_before_the_fields_read_with_defaults():
    scenario = scenarios.load("syndicated_copies")
    event = next(
        o
        for o in run_engine(scenario.articles, parse_config({"rules": RULES}, source="test"))
        if isinstance(o, AlertFiring)
    )
    old = event.to_json_dict()
    del old["dedup_key"]
    for item in old["evidence"]:
        del item["story_id"], item["outlets"]
    read = decode_alert(json.dumps(old))
    assert read.dedup_key == read.alert_id
    assert all(e.story_id == "" and e.outlets == 0 for e in read.evidence)
