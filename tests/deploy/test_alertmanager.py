"""The Alertmanager starter config: valid for amtool (Debian's prometheus-alertmanager), grouped by
subject, warnings inhibited by a critical alert on the same subject, a webhook receiver; compose wires the
alerter and Prometheus to it."""

from __future__ import annotations

from pathlib import Path

from deploy.stackfiles import COMPOSE_FILE, PROMETHEUS_CONFIG, REPO, load_yaml, run_tool, tool

ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def test_amtool_check_config() -> None:
    proc = run_tool(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_starter_config_groups_by_subject_inhibits_warnings_and_has_a_webhook() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert route["group_by"] == ["subject"]
    (receiver,) = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].startswith("http://") and webhook["send_resolved"] is True
    (inhibit,) = config["inhibit_rules"]
    assert 'severity="critical"' in inhibit["source_matchers"]
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"] == ["subject"]
    # The alerter keeps firing alerts alive within Alertmanager's resolve timeout (its default: 5m).
    assert config["global"]["resolve_timeout"] == "5m"


def test_compose_wires_the_alerter_and_prometheus_to_alertmanager() -> None:
    services = load_yaml(COMPOSE_FILE)["services"]
    alertmanager = services["alertmanager"]
    assert "127.0.0.1:9093:9093" in alertmanager["ports"]
    mounts = [m.split(":") for m in alertmanager["volumes"]]
    assert ["./deploy/alertmanager/alertmanager.yml", "/etc/alertmanager/alertmanager.yml", "ro"] in mounts
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert (
        services["alerter"]["environment"]["MONITOR_ALERTER__ALERTMANAGER_URL"] == "http://alertmanager:9093"
    )
    assert "alertmanager" not in services["alerter"].get("depends_on", {})  # the alerter never waits for it
    targets = [
        t
        for am in load_yaml(PROMETHEUS_CONFIG)["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    assert Path(ALERTMANAGER_CONFIG).is_file()
