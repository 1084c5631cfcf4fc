"""The Prometheus config and rules pass promtool's checks and their unit tests, and read real metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from deploy.stackfiles import (
    PROMETHEUS_CONFIG,
    RULE_TESTS_DIR,
    RULES_DIR,
    load_yaml,
    metric_names,
    rule_files,
    rules,
    run_tool,
    tool,
)
from deploy.test_metrics_catalogue import exported_series
from monitor.alerts.rules import RuleConfig
from monitor.config import load_config
from monitor.durations import format_duration
from monitor.signals.windows import window_label


def test_promtool_check_config() -> None:
    proc = run_tool(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rule_files())} rule files found" in proc.stdout + proc.stderr


def test_promtool_check_rules() -> None:
    files = rule_files()
    assert {p.name for p in files} >= {"recording.yml", "pipeline-alerts.yml", "relations-alerts.yml"}
    proc = run_tool(tool("promtool"), "check", "rules", *map(str, files))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules() -> None:
    tests = sorted(RULE_TESTS_DIR.glob("*.test.yml"))
    assert tests, "no promtool rule tests"
    proc = run_tool(tool("promtool"), "test", "rules", *map(str, tests))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(tests), proc.stdout


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: the same test with one expected label changed must not pass."""
    source = RULE_TESTS_DIR / "pipeline-alerts.test.yml"
    data = load_yaml(source)
    data["rule_files"] = [str((source.parent / f).resolve()) for f in data["rule_files"]]
    case = next(t for t in data["tests"] if t["name"].startswith("a stage that cannot be scraped"))
    case["alert_rule_test"][-1]["exp_alerts"][0]["exp_labels"]["service"] = "poller"
    broken = tmp_path / "broken.test.yml"
    broken.write_text(yaml.safe_dump(data))
    proc = run_tool(tool("promtool"), "test", "rules", str(broken))
    assert proc.returncode != 0
    assert "MonitorStageDown" in proc.stdout + proc.stderr


def test_every_rule_is_unit_tested() -> None:
    """Each alert appears in an alert_rule_test that expects it to fire; each recording rule in a
    promql_expr_test."""
    fired: set[str] = set()
    queried: set[str] = set()
    for path in RULE_TESTS_DIR.glob("*.test.yml"):
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
            for check in case.get("promql_expr_test", []):
                queried.add(check["expr"].strip())
    all_rules = rules()
    untested_alerts = [r.name for r in all_rules if r.kind == "alert" and r.name not in fired]
    untested_records = [r.name for r in all_rules if r.kind == "record" and r.name not in queried]
    assert not untested_alerts, f"alerts never seen firing in a promtool test: {untested_alerts}"
    assert not untested_records, f"recording rules without a promql_expr_test: {untested_records}"


def test_alerts_have_severity_and_text() -> None:
    for rule in rules():
        if rule.kind != "alert":
            continue
        assert rule.labels.get("severity") in {"info", "warning", "critical"}, rule.name
        assert rule.annotations.get("summary"), rule.name
        assert rule.annotations.get("description"), rule.name


def test_recording_rule_names_follow_the_convention() -> None:
    """level:metric[:operations], at the level of the whole deployment ("monitor")."""
    for rule in rules():
        if rule.kind == "record":
            assert re.fullmatch(r"monitor:[a-z0-9_]+(:[a-z0-9_]+)?", rule.name), rule.name


def test_rules_read_metrics_the_stages_export() -> None:
    """Every ``monitor_*`` series a rule reads is exported by monitor.metrics, and every ``monitor:*``
    series is recorded by a rule: a misspelt name would otherwise give an alert that never fires."""
    exported = exported_series()
    recorded = {r.name for r in rules() if r.kind == "record"}
    unknown = [
        f"{rule.name} reads {name}"
        for rule in rules()
        for name in sorted(metric_names(rule.expr))
        if name not in (recorded if ":" in name else exported)
    ]
    assert not unknown, "\n".join(unknown)


def _level(value: float) -> str:
    return f"{value:g}"


@pytest.mark.parametrize(
    "rule", [r for r in load_config(None).rules if r.burst is None], ids=lambda r: r.name
)
def test_relationship_alerts_mirror_the_default_rules(rule: RuleConfig) -> None:
    """Each rule of the alerter's default set has a Prometheus alert with the same subject, signal, window,
    levels, severity and timings (the differences PromQL forces are listed in relations-alerts.yml; burst
    rules have none, see the next test)."""
    mirrors = [r for r in rules() if r.labels.get("mirrors") == rule.name]
    assert len(mirrors) == 1, f"no Prometheus alert mirrors the default rule {rule.name}"
    (alert,) = mirrors
    expr = " ".join(alert.expr.split())
    assert alert.labels["severity"] == rule.severity
    assert f'signal="{rule.signal}", topic="{rule.subject}", window="{window_label(rule.window)}"' in expr
    if rule.min_stories > 1:
        assert f'topic="{rule.subject}", window="{window_label(rule.window)}"}} >= {rule.min_stories}' in expr
    assert (alert.for_ or "0s") == (format_duration(rule.for_) if rule.for_ else "0s")
    assert (alert.keep_firing_for or "0s") == (
        format_duration(rule.keep_firing_for).replace("1w", "7d") if rule.keep_firing_for else "0s"
    )
    if rule.threshold is not None:
        op = "<" if rule.threshold.direction == "down" else ">"
        assert f"{op} {_level(rule.threshold.fire_level)}" in expr
    if rule.change is not None:
        assert f'window="{window_label(rule.change.baseline)}"' in expr
        if rule.change.min_baseline_stories:
            assert (
                f'window="{window_label(rule.change.baseline)}"}} >= {rule.change.min_baseline_stories}'
                in expr
            )
        if rule.change.delta is not None:
            assert f">= {_level(rule.change.delta)}" in expr
        assert ("abs(" in expr) is (rule.change.direction == "either")
    if rule.anomaly is not None:
        assert f"[{window_label(rule.anomaly.baseline)}]" in expr
        assert f">= {_level(rule.anomaly.k)}" in expr


def test_burst_rules_have_no_mirror_and_the_rule_file_says_why() -> None:
    bursts = [r.name for r in load_config(None).rules if r.burst is not None]
    assert bursts  # the default set has the fast path
    assert not [r for r in rules() if r.labels.get("mirrors") in bursts]
    header = (RULES_DIR / "relations-alerts.yml").read_text(encoding="utf-8").split("groups:", 1)[0]
    assert all(name in header for name in bursts)


def test_scrape_targets_are_the_stage_ports() -> None:
    """The config scrapes the three stages on the ports of the metric catalogue."""
    config = load_yaml(PROMETHEUS_CONFIG)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "monitor")
    targets = {sc["labels"]["service"]: sc["targets"] for sc in job["static_configs"]}
    assert targets == {"poller": ["poller:9101"], "scorer": ["scorer:9102"], "alerter": ["alerter:9103"]}
    assert config["rule_files"] == [f"{RULES_DIR.name}/*.yml"]
