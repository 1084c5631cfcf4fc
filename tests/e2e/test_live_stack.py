"""The live stack: what ``docker compose up`` starts, started natively, and proven end to end.

No Docker engine runs here, so this test starts the same parts as separate processes:

* the test Kafka broker (Apache Kafka 4.1, KRaft, from the harness; or ``$KAFKA_BOOTSTRAP_SERVERS``);
* ``monitor topics create`` (compose's topics-init), then ``monitor poller``, ``monitor scorer`` and
  ``monitor alerter``, each its own process with its own ``MONITOR_METRICS__PORT``;
* local feeds served by :class:`feedserver.FeedServer`: strained India-US stories, unrelated news, and two
  broken feeds (a server error and an unparsable body);
* a local webhook receiver for the alerter;
* Prometheus from Debian's ``prometheus`` package, with ``deploy/prometheus/prometheus.yml`` and its rules
  changed only in the target addresses.

Once articles have flowed, every PromQL expression of every dashboard panel and every recording rule is
evaluated through Prometheus's HTTP API and must be valid and return data; an alert is read from the
alert topic with ``kcat`` (a Kafka client that is not ours), and so is the dead letter of a record we
produced with ``kcat`` that no stage can decode.

Needs: java and the Kafka jars (``python tests/harness/kafka.py resolve``), Debian's ``prometheus`` and
``kcat``, and the ``classifier`` extra. Takes two to four minutes on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.stackfiles import (
    DOCKERFILE,
    PROMETHEUS_CONFIG,
    RULES_DIR,
    panel_queries,
    rules,
    variable_queries,
)
from feedserver import FeedServer, rss_feed
from harness.kafka import KafkaBroker, resolve
from harness.waiting import free_port, wait_for
from stories import TARIFF_STRAIN, UNRELATED

from monitor.events import AlertFiring, DeadLetter, decode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

STAGES = ("poller", "scorer", "alerter")
STARTUP_TIMEOUT = 180.0  # the scorer loads torch and the model on a busy two-core machine
FLOW_TIMEOUT = 300.0
QUERY_TIMEOUT = 180.0
GARBAGE = "this is not an ArticleFetched event"


# --- small helpers ------------------------------------------------------------------------------------


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def samples(metrics_text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one series name in Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                out.append((dict(sample.labels), float(sample.value)))
    return out


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


# --- the processes ------------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process with its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(repr=False)
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def describe(self) -> str:
        code = None if self.proc is None else self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"--- {self.name} ({state}), {self.log_path} ---\n{tail(self.log_path)}"


class WebhookReceiver:
    """Collects the JSON bodies the alerter POSTs."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    received.append(json.loads(body))
                except ValueError:
                    received.append(body.decode(errors="replace"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/alerts"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the feeds ---------------------------------------------------------------------------------------


def feed_items(
    stories: list[tuple[str, str]], *, site: str, now: datetime, age: timedelta
) -> list[dict[str, str]]:
    """RSS items for ``stories``; item i was published ``age * (i + 1)`` before ``now``."""
    items = []
    for i, (headline, lead) in enumerate(stories):
        slug = "-".join("".join(c for c in word if c.isalnum()) for word in headline.lower().split()[:8])
        items.append(
            {
                "title": headline,
                "link": f"https://{site}/news/{i}-{slug}",
                "guid": f"https://{site}/news/{i}",
                "description": lead,
                "pub_date": format_datetime(now - age * (i + 1), usegmt=True),
            }
        )
    return items


# --- Prometheus ---------------------------------------------------------------------------------------


def adapt_prometheus_config(targets: dict[str, str]) -> str:
    """deploy/prometheus/prometheus.yml with each compose target address replaced, and nothing else."""
    original = PROMETHEUS_CONFIG.read_text(encoding="utf-8")
    adapted = original
    for old, new in targets.items():
        quoted = f'"{old}"'
        assert adapted.count(quoted) == 1, f"target {old} not found once in {PROMETHEUS_CONFIG}"
        adapted = adapted.replace(quoted, f'"{new}"')
    # Only the addresses changed: the parsed configs are equal once the targets are mapped back.
    before, after = yaml.safe_load(original), yaml.safe_load(adapted)
    back = {new: old for old, new in targets.items()}
    jobs = [*after["scrape_configs"], *after.get("alerting", {}).get("alertmanagers", [])]
    for job in jobs:
        for static in job["static_configs"]:
            static["targets"] = [back.get(t, t) for t in static["targets"]]
    assert before == after
    return adapted


@dataclass
class Prometheus:
    url: str
    process: Process

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query through the HTTP API: the whole JSON answer (status, data or error)."""
        body = urllib.parse.urlencode({"query": expr}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400 / 422: a bad expression, with the error in the body
            answer = json.loads(exc.read())
        return answer

    def api(self, path: str, **params: str | list[str]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = http_get(f"{self.url}{path}?{query}", timeout=30)
        assert status == 200, f"{path}: HTTP {status}: {body[:500]!r}"
        answer: dict[str, Any] = json.loads(body)
        return answer


def has_data(answer: dict[str, Any]) -> bool:
    return answer.get("status") == "success" and bool(answer["data"]["result"])


# --- the stack ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    bootstrap: str
    topics: dict[str, str]
    stages: dict[str, Process]
    ports: dict[str, int]
    prometheus: Prometheus
    webhook: WebhookReceiver
    work: Path
    strained_titles: list[str]
    others: list[Process] = field(default_factory=list)

    def metrics(self, stage: str) -> str:
        status, body = http_get(f"http://127.0.0.1:{self.ports[stage]}/metrics")
        return body.decode() if status == 200 else ""

    def total(self, stage: str, name: str, **labels: str) -> float:
        return sum(
            value
            for sample_labels, value in samples(self.metrics(stage), name)
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def diagnose(self) -> str:
        return "\n".join(p.describe() for p in [*self.stages.values(), *self.others])


def kcat() -> str:
    found = shutil.which("kcat")
    if found is None:
        pytest.fail("kcat is not on PATH: apt-get install kcat")
    return found


def kcat_read(bootstrap: str, topic: str) -> list[tuple[str, str]]:
    """Every record of ``topic`` as (key, value), read with kcat from the beginning to the end."""
    proc = subprocess.run(
        [
            kcat(),
            "-C",
            "-b",
            bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k\\t%s\\n",
            "-X",
            "topic.metadata.refresh.interval.ms=1000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [tuple(line.split("\t", 1)) for line in proc.stdout.splitlines() if "\t" in line]  # type: ignore[misc]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """The harness's Kafka broker (or the external one named by KAFKA_BOOTSTRAP_SERVERS)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    broker = KafkaBroker(libs_dir=resolve())
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.close()


@pytest.fixture(scope="module")
def stack(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        pytest.fail("prometheus is not on PATH: apt-get install prometheus")
    monitor_bin = Path(sys.executable).with_name("monitor")
    assert monitor_bin.exists(), f"the monitor console script is not installed next to {sys.executable}"
    work = tmp_path_factory.mktemp("live-stack")
    run_id = uuid.uuid4().hex[:8]
    topics = {
        kind: f"e2e-{run_id}.{kind}" for kind in ("articles", "scored", "signals", "alerts", "deadletter")
    }
    ports = {stage: free_port() for stage in STAGES}
    now = datetime.now(UTC)

    with FeedServer() as feeds, WebhookReceiver() as webhook:
        feeds.add(
            "/strain.xml",
            rss_feed(
                feed_items(TARIFF_STRAIN, site="trade-desk.example", now=now, age=timedelta(minutes=7)),
                title="India-US trade desk",
            ),
            etag='"strain-1"',
        )
        feeds.add(
            "/world.xml",
            rss_feed(
                feed_items(UNRELATED, site="world.example", now=now, age=timedelta(minutes=11)),
                title="World news",
            ),
            etag='"world-1"',
        )
        feeds.add("/broken.xml", "upstream failure", status=500, content_type="text/plain")
        feeds.add("/garbled.xml", b"<rss><channel><item><title>unterminated")
        config = {
            "feeds": [
                {
                    "id": "strain",
                    "name": "India-US trade desk",
                    "url": feeds.url("/strain.xml"),
                    "interval": "1m",
                    "viewpoint": "india",  # the per-viewpoint panels have data to show
                },
                {"id": "world", "name": "World news", "url": feeds.url("/world.xml"), "interval": "1m"},
                {"id": "broken", "name": "Broken feed", "url": feeds.url("/broken.xml"), "interval": "1m"},
                {"id": "garbled", "name": "Garbled feed", "url": feeds.url("/garbled.xml"), "interval": "1m"},
            ],
            "signals": {"windows": ["6h", "24h", "7d"], "allowed_lateness": "6h"},
            "rules": [
                {
                    "name": "e2e-overall-strain",
                    "severity": "warning",
                    "subject": "overall",
                    "signal": "stance_index",
                    "window": "24h",
                    "threshold": {"below": -0.2},
                    "min_stories": 2,
                }
            ],
        }
        config_path = work / "monitor.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))

        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith("MONITOR_") and k.upper() != "KAFKA_BOOTSTRAP_SERVERS"
        }
        base_env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "MONITOR_CONFIG": str(config_path),
                "MONITOR_LOG_FORMAT": "text",
                "MONITOR_METRICS__HOST": "127.0.0.1",
                "MONITOR_POLLER__MIN_INTERVAL": "1m",
                # The alerter evaluates on a 5-minute grid with 3 minutes' grace by default; a finer grid
                # lets the test's alert fire within seconds of the articles instead of minutes.
                "MONITOR_ALERTER__EVALUATION_STEP": "10s",
                "MONITOR_ALERTER__ARRIVAL_GRACE": "5s",
                "MONITOR_KAFKA__PARTITIONS": "1",
                **{f"MONITOR_KAFKA__TOPICS__{kind.upper()}": name for kind, name in topics.items()},
            }
        )

        def stage_env(stage: str) -> dict[str, str]:
            state = work / "state" / stage
            state.mkdir(parents=True, exist_ok=True)
            env = {**base_env, "MONITOR_STATE_DIR": str(state), "MONITOR_METRICS__PORT": str(ports[stage])}
            if stage == "alerter":
                env["MONITOR_ALERTER__WEBHOOK_URL"] = webhook.url
                env["MONITOR_ALERTER__GROUP_ID"] = f"e2e-{run_id}-alerter"
            return env

        # compose's topics-init: a one-shot that must succeed before the stages start.
        init = subprocess.run(
            [str(monitor_bin), "topics", "create"],
            env={**base_env, "MONITOR_METRICS__PORT": "0"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        assert all(name in init.stdout for name in topics.values()), init.stdout

        stages = {
            stage: Process(stage, [str(monitor_bin), stage], stage_env(stage), work / f"{stage}.log")
            for stage in STAGES
        }
        prom_port = free_port()
        prom_dir = work / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "prometheus.yml").write_text(
            adapt_prometheus_config(
                {
                    **{
                        f"{stage}:{port}": f"127.0.0.1:{ports[stage]}"
                        for stage, port in (("poller", 9101), ("scorer", 9102), ("alerter", 9103))
                    },
                    "localhost:9090": f"127.0.0.1:{prom_port}",
                    # No Alertmanager in this test: a loopback port nothing listens on (no lookups).
                    "alertmanager:9093": "127.0.0.1:9",
                }
            )
        )
        (prom_dir / RULES_DIR.name).symlink_to(RULES_DIR, target_is_directory=True)
        prom_process = Process(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            dict(os.environ),
            work / "prometheus.log",
        )
        live = Stack(
            bootstrap=bootstrap,
            topics=topics,
            stages=stages,
            ports=ports,
            prometheus=Prometheus(f"http://127.0.0.1:{prom_port}", prom_process),
            webhook=webhook,
            work=work,
            strained_titles=[title for title, _ in TARIFF_STRAIN],
            others=[prom_process],
        )
        try:
            for process in stages.values():
                process.start()
            prom_process.start()

            def all_healthy() -> bool:
                for stage, process in stages.items():
                    if not process.alive:
                        pytest.fail(f"the {stage} stage exited during startup\n{live.diagnose()}")
                    if http_get(f"http://127.0.0.1:{ports[stage]}/healthz")[0] != 200:
                        return False
                return True

            wait_for(
                "every stage's /healthz to answer 200",
                all_healthy,
                timeout=STARTUP_TIMEOUT,
                diagnose=live.diagnose,
            )
            wait_for(
                "Prometheus to be ready",
                lambda: http_get(f"{live.prometheus.url}/-/ready")[0] == 200,
                timeout=60,
                diagnose=live.diagnose,
            )

            # A record no stage can decode, produced by a client that is not ours: it must be dead-lettered.
            produced = subprocess.run(
                [kcat(), "-P", "-b", bootstrap, "-t", topics["articles"], "-k", "e2e-garbage"],
                input=GARBAGE,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert produced.returncode == 0, produced.stderr

            wait_for(
                "the poller to publish the strained stories",
                lambda: live.total("poller", "monitor_articles_published_total") >= 3,
                timeout=FLOW_TIMEOUT,
                diagnose=live.diagnose,
            )
            wait_for(
                "the scorer to score them",
                lambda: live.total("scorer", "monitor_articles_scored_total") >= 3,
                timeout=FLOW_TIMEOUT,
                diagnose=live.diagnose,
            )
            wait_for(
                "the scorer to dead-letter the garbage record",
                lambda: live.total("scorer", "monitor_deadletters_total") >= 1,
                timeout=FLOW_TIMEOUT,
                diagnose=live.diagnose,
            )
            wait_for(
                "the alerter to fire an alert",
                lambda: live.total("alerter", "monitor_alerts_total", state="firing") >= 1,
                timeout=FLOW_TIMEOUT,
                diagnose=live.diagnose,
            )
            yield live
        finally:
            prom_process.stop()
            for process in stages.values():
                process.stop()


# --- the checks ---------------------------------------------------------------------------------------


def test_stages_are_healthy_by_the_images_healthcheck(stack: Stack) -> None:
    """The Dockerfile's HEALTHCHECK command, run as Docker runs it, passes against each stage."""
    line = next(ln for ln in DOCKERFILE.read_text().splitlines() if ln.strip().startswith("CMD ["))
    command = json.loads(line.strip()[len("CMD") :])
    assert command[0] == "python"
    for stage, port in stack.ports.items():
        env = {**os.environ, "MONITOR_METRICS__PORT": str(port)}
        proc = subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, f"{stage}: {proc.stderr}"


def test_prometheus_scrapes_every_stage(stack: Stack) -> None:
    answer = wait_for(
        "Prometheus to scrape the three stages",
        lambda: (
            (a := stack.prometheus.query('up{job="monitor"} == 1')) and len(a["data"]["result"]) == 3 and a
        ),
        timeout=QUERY_TIMEOUT,
        diagnose=stack.diagnose,
    )
    assert {r["metric"]["service"] for r in answer["data"]["result"]} == set(STAGES)


def _evaluate_until_all_have_data(stack: Stack, exprs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Evaluate every expression until each returns data (rates need a few scrapes); the last answers."""
    answers: dict[str, dict[str, Any]] = {}

    def all_have_data() -> bool:
        for where, expr in exprs.items():
            if where not in answers or not has_data(answers[where]):
                answers[where] = stack.prometheus.query(expr)
        return all(has_data(a) for a in answers.values())

    deadline = time.monotonic() + QUERY_TIMEOUT
    pause = threading.Event()
    while not all_have_data() and time.monotonic() < deadline:
        if any(a.get("status") == "error" for a in answers.values()):
            break  # an invalid expression does not become valid by waiting
        pause.wait(5)
    return answers


def _report(exprs: dict[str, str], answers: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for where, expr in exprs.items():
        answer = answers[where]
        if answer.get("status") != "success":
            problems.append(f"INVALID {where}: {expr}\n    {answer.get('errorType')}: {answer.get('error')}")
        elif not answer["data"]["result"]:
            problems.append(f"NO DATA {where}: {expr}")
    return problems


def test_every_dashboard_panel_query_is_valid_and_returns_data(stack: Stack) -> None:
    exprs = {q.where: q.expr for q in panel_queries()}
    assert len(exprs) >= 30
    answers = _evaluate_until_all_have_data(stack, exprs)
    problems = _report(exprs, answers)
    assert not problems, "\n".join(problems) + "\n" + stack.diagnose()


def test_every_recording_rule_is_valid_and_returns_data(stack: Stack) -> None:
    recording = [r for r in rules() if r.kind == "record"]
    exprs = {f"{r.file} / {r.name}": r.expr for r in recording}
    # The recorded series too: Prometheus evaluates the rules itself every 15 s.
    exprs |= {f"{r.file} / {r.name} (recorded)": r.name for r in recording}
    answers = _evaluate_until_all_have_data(stack, exprs)
    problems = _report(exprs, answers)
    assert not problems, "\n".join(problems) + "\n" + stack.diagnose()


def test_prometheus_evaluates_every_rule_without_error(stack: Stack) -> None:
    loaded = stack.prometheus.api("/api/v1/rules")["data"]["groups"]
    names = {rule["name"] for group in loaded for rule in group["rules"]}
    assert names == {r.name for r in rules()}
    unhealthy = [
        f"{rule['name']}: {rule.get('lastError')}"
        for group in loaded
        for rule in group["rules"]
        if rule.get("health") == "err"
    ]
    assert not unhealthy, unhealthy


def test_dashboard_variables_offer_their_defaults(stack: Stack) -> None:
    for var in variable_queries():
        values = wait_for(
            f"values for ${var.name} of {var.dashboard}",
            lambda var=var: stack.prometheus.api(
                f"/api/v1/label/{var.label}/values", **{"match[]": var.metric_selector}
            )["data"],
            timeout=QUERY_TIMEOUT,
            poll=5,
        )
        if var.default is not None:
            assert var.default in values, f"{var.dashboard} ${var.name}: {var.default!r} not in {values}"


def test_an_alert_is_read_with_kcat(stack: Stack) -> None:
    records = wait_for(
        "an alert on the alert topic",
        lambda: kcat_read(stack.bootstrap, stack.topics["alerts"]),
        timeout=60,
        poll=2,
        diagnose=stack.diagnose,
    )
    firing = [value for _, value in records if json.loads(value).get("state") == "firing"]
    assert firing, records
    alert = decode(AlertFiring, firing[0].encode())
    assert alert.rule == "e2e-overall-strain"
    assert alert.subject == "overall"
    assert alert.value < -0.2
    assert alert.summary
    assert {e.title for e in alert.evidence} & set(stack.strained_titles)
    # The alerter's webhook got the same alert.
    wait_for("the webhook delivery", lambda: stack.webhook.bodies, timeout=60, poll=1)


def test_the_undecodable_record_is_dead_lettered(stack: Stack) -> None:
    records = wait_for(
        "a dead letter",
        lambda: kcat_read(stack.bootstrap, stack.topics["deadletter"]),
        timeout=60,
        poll=2,
        diagnose=stack.diagnose,
    )
    letters = [decode(DeadLetter, value.encode()) for _, value in records]
    (letter,) = [d for d in letters if d.original_value == GARBAGE.encode()]
    assert letter.stage == "scorer"
    assert letter.topic == stack.topics["articles"]
    assert letter.key == "e2e-garbage"
    assert letter.reason
