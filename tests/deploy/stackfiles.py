"""Readers for the deploy files, shared by the deploy checks and the live-stack test.

They turn the Grafana dashboards and the Prometheus rule files into plain lists of PromQL queries,
with the dashboards' template variables replaced the way Grafana would replace them, so the
queries can be parsed by ``promtool`` or run against a live Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
COMPOSE_FILE = REPO / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

DATASOURCE_UID = "prometheus"
"""The uid of the provisioned Prometheus datasource, which every panel names."""

INSTALL_HINT = "apt-get install prometheus (Debian's package brings promtool)"


def tool(name: str) -> str:
    """Path of a command-line tool from Debian's packages; fails the test with the install line if absent."""
    import pytest

    found = shutil.which(name)
    if found is None:
        hint = INSTALL_HINT if name in ("promtool", "prometheus") else name
        if name in ("amtool", "prometheus-alertmanager"):
            hint = "apt-get install prometheus-alertmanager"
        pytest.fail(f"{name} is not on PATH: {hint}")
    return found


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


# --- Prometheus -------------------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    kind: str  # "record" or "alert"
    name: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]
    for_: str | None = None
    keep_firing_for: str | None = None


def rules() -> list[Rule]:
    out = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                out.append(
                    Rule(
                        file=path.name,
                        group=group["name"],
                        kind=kind,
                        name=rule[kind],
                        expr=rule["expr"],
                        labels=dict(rule.get("labels", {})),
                        annotations=dict(rule.get("annotations", {})),
                        for_=rule.get("for"),
                        keep_firing_for=rule.get("keep_firing_for"),
                    )
                )
    return out


def scrape_interval_seconds() -> int:
    text = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    match = re.fullmatch(r"(\d+)([sm])", text)
    assert match, f"unexpected scrape_interval {text!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


# --- Grafana ----------------------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that is not a row, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    raw: str
    expr: str  # with the template variables replaced

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref_id}"


_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each template variable's value as Grafana would put it in a query (the saved current value;
    "All" as the variable's allValue regex)."""
    values: dict[str, str] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if isinstance(current, list):
            if "$__all" in current:
                values[var["name"]] = var.get("allValue") or ".*"
            else:
                values[var["name"]] = "|".join(current) if len(current) > 1 else current[0]
        elif current == "$__all":
            values[var["name"]] = var.get("allValue") or ".*"
        elif current is not None:
            values[var["name"]] = str(current)
    return values


def builtin_values() -> dict[str, str]:
    """Grafana's built-in interval variables for the provisioned datasource (timeInterval = scrape interval).

    ``$__rate_interval`` is max(4 x scrape interval, $__interval + scrape interval); at the shortest
    ``$__interval`` (one scrape interval) that is four scrape intervals.
    """
    scrape = scrape_interval_seconds()
    return {
        "__interval": f"{scrape}s",
        "__rate_interval": f"{4 * scrape}s",
        "__range": "1h",
        "__range_s": "3600",
    }


def substitute(expr: str, values: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(repl, expr)


def panel_queries() -> list[PanelQuery]:
    out = []
    builtins = builtin_values()
    for path in dashboard_files():
        dashboard = load_dashboard(path)
        values = {**builtins, **variable_values(dashboard)}
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("hide"):
                    continue
                raw = target["expr"]
                out.append(
                    PanelQuery(
                        dashboard=dashboard["title"],
                        panel=panel["title"],
                        ref_id=target["refId"],
                        raw=raw,
                        expr=substitute(raw, values),
                    )
                )
    return out


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    metric_selector: str
    label: str
    default: str | None  # the saved current value, unless it is "All"


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def variable_queries() -> list[VariableQuery]:
    out = []
    for path in dashboard_files():
        dashboard = load_dashboard(path)
        for var in dashboard.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = _LABEL_VALUES.match(query.strip())
            assert match and match["selector"], (
                f"{dashboard['title']}: ${var['name']} is not label_values(selector, label)"
            )
            current = var.get("current", {}).get("value")
            default = None if current in ("$__all", ["$__all"]) else current
            out.append(
                VariableQuery(dashboard["title"], var["name"], match["selector"], match["label"], default)
            )
    return out


# --- metric names -----------------------------------------------------------------------------

_METRIC = re.compile(r"(?<![\w:])(monitor_[a-z0-9_]+|monitor:[a-z0-9_:]+)")


def metric_names(expr: str) -> set[str]:
    """The ``monitor_*`` series and ``monitor:*`` recorded series an expression reads."""
    return set(_METRIC.findall(expr))
