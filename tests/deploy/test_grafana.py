"""The Grafana provisioning and dashboards: well formed, described, and every query valid PromQL over
metrics the stages export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy.stackfiles import (
    COMPOSE_FILE,
    DATASOURCE_UID,
    PROVISIONING_DIR,
    dashboard_files,
    load_dashboard,
    load_yaml,
    metric_names,
    panel_queries,
    panels,
    rules,
    run_tool,
    scrape_interval_seconds,
    tool,
    variable_queries,
)
from deploy.test_metrics_catalogue import exported_series

DASHBOARDS = {p.name: load_dashboard(p) for p in dashboard_files()}


def _by_title(title: str) -> dict:
    found = [d for d in DASHBOARDS.values() if d["title"] == title]
    assert len(found) == 1, f"expected one dashboard titled {title!r}, found {len(found)}"
    return found[0]


def test_datasource_is_the_compose_prometheus() -> None:
    (datasource,) = load_yaml(PROVISIONING_DIR / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    compose = load_yaml(COMPOSE_FILE)
    assert "prometheus" in compose["services"]
    assert datasource["url"] == "http://prometheus:9090"
    # $__rate_interval is derived from this; it must be the scrape interval.
    assert datasource["jsonData"]["timeInterval"] == f"{scrape_interval_seconds()}s"


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    (provider,) = load_yaml(PROVISIONING_DIR / "dashboards" / "dashboards.yml")["providers"]
    mounts = load_yaml(COMPOSE_FILE)["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_the_two_dashboards_exist_with_unique_uids() -> None:
    assert len(DASHBOARDS) >= 2
    _by_title("India-US relations")
    _by_title("Pipeline health")
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_are_complete(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard.get("description"), "dashboard description"
    all_panels = dashboard["panels"]
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        mine = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine
    for panel in panels(dashboard):
        title = panel["title"]
        assert panel.get("description", "").strip(), f"{title}: description"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, title
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{title}: unit"
        steps = defaults["thresholds"]["steps"]
        assert steps and steps[0]["value"] is None, f"{title}: thresholds start with a base step"
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), f"{title}: thresholds ascend"
        targets = panel["targets"]
        assert targets, f"{title}: no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in targets:
            assert target["datasource"]["uid"] == DATASOURCE_UID, title
            assert target["expr"].strip(), title


def test_dashboards_cover_the_issue() -> None:
    """What each dashboard is for (issue: observability and deployment)."""
    relations = " ".join(t["expr"] for p in panels(_by_title("India-US relations")) for t in p["targets"])
    for needle in ('signal="stance_index"', 'signal="volume"', 'signal="stories"', 'signal="strained_share"'):
        assert needle in relations, needle
    assert "topic=~" in relations  # per topic
    assert "monitor_alert_state" in relations  # latest alert states
    pipeline = " ".join(t["expr"] for p in panels(_by_title("Pipeline health")) for t in p["targets"])
    for metric in (
        "monitor_feed_polls_total",  # polls by outcome
        "monitor_feed_fetch_duration_seconds_bucket",  # fetch latency
        "monitor_feed_staleness_seconds",  # staleness
        "monitor_articles_scored_total",  # scorer throughput
        "monitor_scorer_inference_seconds_bucket",  # scorer latency
        "monitor:consumer_lag_records:sum",  # consumer lag
        "monitor_deadletters_total",  # dead letters
    ):
        assert metric in pipeline, metric


def test_relations_dashboard_sets_indian_against_us_outlets_per_topic() -> None:
    """The viewpoint split: one panel per selected topic, a line for Indian and one for US outlets."""
    (panel,) = [
        p
        for p in panels(_by_title("India-US relations"))
        if any("monitor_viewpoint_signal_value" in t["expr"] for t in p["targets"])
    ]
    assert panel["repeat"] == "topic"
    (target,) = panel["targets"]
    for needle in ('signal="stance_index"', 'viewpoint=~"india|us"', 'topic=~"$topic"', "max by (viewpoint)"):
        assert needle in target["expr"], needle
    assert target["legendFormat"] == "{{viewpoint}}"


def test_every_panel_query_parses(tmp_path: Path) -> None:
    """promtool parses each query (template variables replaced) as the expression of a rule."""
    queries = panel_queries()
    assert len(queries) >= 30
    doc = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": q.expr} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_tool(tool("promtool"), "check", "rules", str(path))
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        bad = [q.where for i, q in enumerate(queries) if f"dashboard:query_{i}:check" in output]
        pytest.fail(f"promtool rejects dashboard queries {bad or ''}:\n{output}")


def test_a_broken_query_is_caught(tmp_path: Path) -> None:
    """The parse check above can fail."""
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "a:b:c", "expr": "sum by (x (up)"}]}]})
    )
    assert run_tool(tool("promtool"), "check", "rules", str(path)).returncode != 0


def test_panel_queries_read_metrics_that_exist() -> None:
    exported = exported_series()
    recorded = {r.name for r in rules() if r.kind == "record"}
    unknown = [
        f"{q.where} reads {name}"
        for q in panel_queries()
        for name in sorted(metric_names(q.expr))
        if name not in (recorded if ":" in name else exported)
    ]
    assert not unknown, "\n".join(unknown)


def test_variables_are_label_values_queries_over_exported_metrics() -> None:
    exported = exported_series()
    variables = variable_queries()
    assert {v.name for v in variables} >= {"window", "topic", "feed"}
    for var in variables:
        for name in metric_names(var.metric_selector):
            assert name in exported, f"{var.dashboard} ${var.name} reads {name}"
