"""A real, single-node Apache Kafka 4.x broker (KRaft) for the test suite.

The broker is the stock Apache Kafka server, taken from Maven Central
(``org.apache.kafka:kafka_2.13``) and run with the machine's Java 17; no Docker
and no fakes. Two entry points:

* :func:`resolve` downloads the broker's runtime jars once into a cache folder
  (``<repo>/.cache/kafka-4.1.1/libs``, or ``$MONITOR_TEST_KAFKA_CACHE``) and
  returns at once when they are already there.
* :class:`KafkaBroker` formats KRaft storage in a private temporary folder,
  runs ``kafka.Kafka`` as a child process on free loopback ports, and waits
  until the broker answers metadata requests. ``stop()`` / ``start()`` (or
  ``restart()``) keep the same log dir and ports, so data survives a restart.
  ``KafkaBroker(tls=True)`` adds TLS listeners (SASL_SSL with SCRAM users, SSL
  with client certificates, SSL with a certificate for another host) whose
  certificates come from a throwaway CA (:mod:`harness.tls`, made with ``openssl``).

As a script::

    python tests/harness/kafka.py resolve     # fetch the jars, print the folder
    python tests/harness/kafka.py start       # run a broker until Ctrl-C
    python tests/harness/kafka.py start --tls # ... with the TLS listeners

The file is named ``kafka.py``; run as a script, its own folder would shadow
the ``kafka`` package (kafka-python) on ``sys.path``, so the ``__main__``
block below drops that folder before anything imports kafka-python.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # pragma: no cover - script mode only
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import atexit
import base64
import contextlib
import hashlib
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

try:
    from harness.tls import TestPki, make_test_pki
except ImportError:  # pragma: no cover - script mode: tests/ is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from harness.tls import TestPki, make_test_pki
from harness.waiting import free_ports

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
# The slf4j 1.x binding matches the slf4j-api 1.7.x that Kafka's poms declare.
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ENV = "MONITOR_TEST_KAFKA_CACHE"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"
_MARKER = ".resolved"

DEFAULT_STARTUP_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms64m",
    "-Xmx384m",
    # A test broker moves little data: a serial collector and the C1 compiler
    # start faster and leave the machine's few cores to the tests.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

# Settings fit for a single-node test cluster; anything may be overridden
# through ``KafkaBroker(config=...)``.
TEST_BROKER_CONFIG: dict[str, str] = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "auto.create.topics.enable": "true",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "5",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "5",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # After a kill() the restarted broker cannot register until the controller fences the old
    # incarnation, one session timeout later (default 9 s).
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "background.threads": "4",
    # The default 128 MiB dedupe buffer would take a third of the small heap.
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    "log.cleaner.threads": "1",
}


# ``KafkaBroker(tls=True)`` without ``scram_users``: these SCRAM users (name: password).
DEFAULT_SCRAM_USERS: dict[str, str] = {"alice": "alice-secret"}
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaHarnessError(RuntimeError):
    """The test broker could not be resolved, formatted, started or stopped."""


# ---------------------------------------------------------------------------
# Resolving the broker's jars with Maven
# ---------------------------------------------------------------------------


def _pom() -> str:
    deps = [
        ("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION),
        # The command-line tools (console consumer, broker API versions) for the compose test's Kafka image.
        ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ]
    dependencies = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*dep)
        for dep in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.monitor.tests</groupId>
  <artifactId>kafka-test-broker</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


def default_cache_dir() -> Path:
    """The jar folder: ``$MONITOR_TEST_KAFKA_CACHE`` or ``<repo>/.cache/kafka-4.1.1/libs``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser().resolve() if override else DEFAULT_CACHE_DIR


def _is_resolved(libs: Path, stamp: str) -> bool:
    marker = libs / _MARKER
    try:
        return marker.read_text().strip() == stamp
    except OSError:
        return False


def resolve(cache_dir: str | os.PathLike[str] | None = None, *, mvn: str | None = None) -> Path:
    """Put Kafka's runtime jars into ``cache_dir`` and return that folder.

    Idempotent: a marker file records which pom filled the folder, so a second
    call returns without starting Maven. A fresh download goes to a staging
    folder that is renamed into place only when complete.
    """
    libs = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
    pom = _pom()
    stamp = hashlib.sha256(pom.encode()).hexdigest()
    if _is_resolved(libs, stamp):
        return libs

    mvn_cmd = mvn or shutil.which("mvn")
    if mvn_cmd is None:
        raise KafkaHarnessError("Maven (mvn) is not on PATH; it is needed to fetch the Kafka jars")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{libs.name}.staging-", dir=libs.parent))
    try:
        (staging / "pom.xml").write_text(pom)
        out_dir = staging / "libs"
        cmd = [
            mvn_cmd,
            "-q",
            "-B",
            "-f",
            str(staging / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={out_dir}",
            "-DincludeScope=runtime",
        ]
        log.info("resolving Kafka %s jars into %s", KAFKA_VERSION, libs)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(out_dir.glob(f"kafka_{SCALA_VERSION}-*.jar")):
            tail = (proc.stdout + proc.stderr)[-4000:]
            raise KafkaHarnessError(
                f"mvn could not resolve org.apache.kafka:kafka_{SCALA_VERSION}:{KAFKA_VERSION} "
                f"(exit {proc.returncode}):\n{tail}"
            )
        (out_dir / _MARKER).write_text(stamp + "\n")
        if _is_resolved(libs, stamp):  # another process won the race
            return libs
        if libs.exists():
            shutil.rmtree(libs)
        os.replace(out_dir, libs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


# ---------------------------------------------------------------------------
# The broker
# ---------------------------------------------------------------------------


def _cluster_id() -> str:
    """A Kafka cluster id: a random UUID in unpadded url-safe base64, as ``kafka-storage random-uuid``."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like options
            return text


def _java(java: str | None) -> str:
    if java:
        return java
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaHarnessError("java is not on PATH (Kafka 4.x needs Java 17 or later)")
    return found


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


_LOG4J2_TEMPLATE = """\
status = warn
name = kafka-test-broker
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


def _tls_config(pki: TestPki) -> dict[str, str]:
    """Broker properties of the TLS listeners (see ``KafkaBroker(tls=True)``).

    PKCS12 key stores, the test CA (PEM) as the trust store for client certificates.
    """
    jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props = {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.broker.keystore),
        "ssl.keystore.password": pki.broker.key_password,
        "ssl.key.password": pki.broker.key_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_file),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.wronghost.ssl.keystore.location": str(pki.wrong_host.keystore),
        "listener.name.wronghost.ssl.keystore.password": pki.wrong_host.key_password,
        "listener.name.wronghost.ssl.key.password": pki.wrong_host.key_password,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
    }
    for mechanism in SCRAM_MECHANISMS:
        props[f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"] = jaas
    return props


# Strong references: a broker object dropped without close() must still be stopped at exit.
_LIVE: set[KafkaBroker] = set()


@atexit.register
def _stop_leftovers() -> None:
    # A broker the caller forgot (or a run cut short by Ctrl-C) must not outlive the interpreter.
    for broker in list(_LIVE):
        try:
            broker.close()
        except Exception:  # best effort at exit; the error is logged
            log.exception("could not stop Kafka test broker %s at exit", broker.bootstrap)


class KafkaBroker:
    """One Kafka broker+controller process (KRaft) in its own temporary folder.

    ``start()`` formats storage on first use and waits until the broker answers
    metadata requests; ``stop()`` / ``kill()`` end the process but keep its log
    dir and ports, so a later ``start()`` brings back the same broker with its
    data. ``close()`` (or leaving the ``with`` block) stops it and deletes the
    folder.
    """

    def __init__(
        self,
        *,
        libs_dir: str | os.PathLike[str] | None = None,
        java: str | None = None,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        config: Mapping[str, str | int] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        node_id: int = 1,
        work_dir: str | os.PathLike[str] | None = None,
        tls: bool = False,
        scram_users: Mapping[str, str] | None = None,
    ) -> None:
        """Configure a broker; nothing runs until :meth:`start`.

        ``work_dir`` (an empty folder) replaces the temporary folder and is kept by
        :meth:`close`, for a look at the logs afterwards. ``config`` entries override the
        test settings in :data:`TEST_BROKER_CONFIG`.

        ``tls``: besides the PLAINTEXT listener (still the inter-broker one, and the one
        :attr:`bootstrap` names), three TLS listeners on free ports, with certificates signed by
        a test CA made in the work dir (:attr:`pki`, its ``ca_file`` for clients):

        * :attr:`sasl_ssl_bootstrap`: SASL_SSL, SCRAM-SHA-256 and -512, for ``scram_users``
          (name: password; default :data:`DEFAULT_SCRAM_USERS`), created when storage is formatted;
        * :attr:`ssl_bootstrap`: SSL, a client certificate signed by the test CA required
          (``pki.client``);
        * :attr:`wrong_host_bootstrap`: SSL, no client certificate, the broker's certificate made for
          ``wrong-host.invalid`` only (a client checking the hostname refuses it).
        """
        self._libs_dir = Path(libs_dir) if libs_dir else None
        self._java_arg = java
        self._jvm_options = tuple(jvm_options)
        self._extra_config = {k: str(v) for k, v in (config or {}).items()}
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.node_id = node_id
        self._work_dir_arg = Path(work_dir) if work_dir else None
        self._work_dir: Path | None = None
        self._owns_work_dir = False
        self._broker_port: int | None = None
        self._controller_port: int | None = None
        self._tls = tls
        self._scram_users = dict(DEFAULT_SCRAM_USERS if scram_users is None else scram_users)
        if scram_users and not tls:
            raise KafkaHarnessError("scram_users needs tls=True (they log in on the SASL_SSL listener)")
        for name, password in self._scram_users.items():
            if not name or not password or any(c in name + password for c in ',=[]"'):
                raise KafkaHarnessError(
                    f'SCRAM user {name!r}: name and password must not be empty nor hold ,=[]"'
                )
        self._tls_ports: dict[str, int] = {}
        self._pki: TestPki | None = None
        self._cluster_id: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._lock = threading.RLock()

    # -- public surface ----------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` for clients; fixed for the broker's whole life."""
        if self._broker_port is None:
            raise KafkaHarnessError("the broker has not been started yet")
        return f"127.0.0.1:{self._broker_port}"

    @property
    def port(self) -> int:
        if self._broker_port is None:
            raise KafkaHarnessError("the broker has not been started yet")
        return self._broker_port

    @property
    def sasl_ssl_bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` of the SASL_SSL (SCRAM) listener; needs ``tls=True``."""
        return self._tls_bootstrap("SASL_SSL")

    @property
    def ssl_bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` of the SSL listener that requires a client certificate (``tls=True``)."""
        return self._tls_bootstrap("SSL")

    @property
    def wrong_host_bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` of the SSL listener whose certificate names another host (``tls=True``)."""
        return self._tls_bootstrap("WRONGHOST")

    @property
    def pki(self) -> TestPki:
        """The test CA and certificates of the TLS listeners; needs ``tls=True``."""
        if self._pki is None:
            raise KafkaHarnessError("the broker has no TLS listeners (tls=True), or has not been started")
        return self._pki

    @property
    def scram_users(self) -> dict[str, str]:
        """The SCRAM users of the SASL_SSL listener (name: password)."""
        return dict(self._scram_users) if self._tls else {}

    def _tls_bootstrap(self, listener: str) -> str:
        port = self._tls_ports.get(listener)
        if port is None:
            raise KafkaHarnessError("the broker has no TLS listeners (tls=True), or has not been started yet")
        return f"127.0.0.1:{port}"

    @property
    def cluster_id(self) -> str | None:
        return self._cluster_id

    @property
    def work_dir(self) -> Path | None:
        """The temporary folder (config, ``data/`` log dir, ``logs/``)."""
        return self._work_dir

    @property
    def log_dir(self) -> Path:
        """Kafka's ``log.dirs``: the topic data and KRaft metadata."""
        return self._require_work_dir() / "data"

    @property
    def log_file(self) -> Path:
        """The broker's own log (log4j), appended to across restarts."""
        return self._require_work_dir() / "logs" / "server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float | None = None) -> KafkaBroker:
        """Start the broker (formatting storage the first time) and wait until it is ready."""
        with self._lock:
            if self.running:
                return self
            limit = self.startup_timeout if timeout is None else timeout
            deadline = time.monotonic() + limit
            if self._work_dir is None:
                self._prepare(deadline)
            self._launch()
            try:
                self._wait_ready(deadline, limit)
            except BaseException:
                self._terminate(kill=True)
                raise
            return self

    def stop(self, *, timeout: float | None = None) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it has not exited in time."""
        with self._lock:
            self._terminate(kill=False, timeout=self.stop_timeout if timeout is None else timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the broker's data is concerned."""
        with self._lock:
            self._terminate(kill=True)

    def restart(self, *, timeout: float | None = None) -> KafkaBroker:
        """Stop, then start again with the same log dir and ports."""
        with self._lock:
            self.stop()
            return self.start(timeout=timeout)

    def close(self) -> None:
        """Stop the broker and delete its temporary folder."""
        with self._lock:
            try:
                self._terminate(kill=False, timeout=self.stop_timeout)
            finally:
                _LIVE.discard(self)
                if self._owns_work_dir and self._work_dir is not None:
                    shutil.rmtree(self._work_dir, ignore_errors=True)
                    self._work_dir = None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        port = self._broker_port if self._broker_port is not None else "-"
        return f"<KafkaBroker 127.0.0.1:{port} {state} work_dir={self._work_dir}>"

    # -- internals ---------------------------------------------------------

    def _require_work_dir(self) -> Path:
        if self._work_dir is None:
            raise KafkaHarnessError("the broker has no work dir (not started, or closed)")
        return self._work_dir

    def _classpath(self) -> str:
        libs = self._libs_dir or resolve()
        if not any(libs.glob(f"kafka_{SCALA_VERSION}-*.jar")):
            raise KafkaHarnessError(f"no Kafka jars in {libs}; run `python tests/harness/kafka.py resolve`")
        return str(libs / "*")

    def _prepare(self, deadline: float) -> None:
        """Pick ports, write the configs and format KRaft storage: once per broker."""
        if self._work_dir_arg is not None:
            self._work_dir_arg.mkdir(parents=True, exist_ok=True)
            work = self._work_dir_arg
            self._owns_work_dir = False
        else:
            work = Path(tempfile.mkdtemp(prefix="kafka-test-broker-"))
            self._owns_work_dir = True
        try:
            self._write_and_format(work, deadline)
        except BaseException:
            if self._owns_work_dir:
                shutil.rmtree(work, ignore_errors=True)
            raise
        self._work_dir = work
        _LIVE.add(self)

    def _write_and_format(self, work: Path, deadline: float) -> None:
        (work / "data").mkdir(exist_ok=True)
        (work / "logs").mkdir(exist_ok=True)
        ports = free_ports(5 if self._tls else 2)
        self._broker_port, self._controller_port = ports[:2]
        self._cluster_id = _cluster_id()

        listeners = {"PLAINTEXT": self._broker_port}
        protocols = {"CONTROLLER": "PLAINTEXT", "PLAINTEXT": "PLAINTEXT"}
        tls_props: dict[str, str] = {}
        if self._tls:
            self._pki = make_test_pki(work / "tls")
            self._tls_ports = dict(zip(("SASL_SSL", "SSL", "WRONGHOST"), ports[2:], strict=True))
            listeners.update(self._tls_ports)
            protocols.update({"SASL_SSL": "SASL_SSL", "SSL": "SSL", "WRONGHOST": "SSL"})
            tls_props = _tls_config(self._pki)
        advertised = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": f"{self.node_id}@127.0.0.1:{self._controller_port}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self._controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "log.dirs": str(work / "data"),
            **tls_props,
            **TEST_BROKER_CONFIG,
            **self._extra_config,
        }
        (work / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (work / "log4j2.properties").write_text(
            _LOG4J2_TEMPLATE.format(log_file=work / "logs" / "server.log")
        )

        cmd = [
            _java(self._java_arg),
            *self._jvm_options,
            f"-Dlog4j2.configurationFile={work / 'log4j2.properties'}",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(work / "server.properties"),
            "--cluster-id",
            self._cluster_id,
        ]
        if self._tls:  # SCRAM credentials live in the KRaft metadata: written at format time
            for name, password in self._scram_users.items():
                for mechanism in SCRAM_MECHANISMS:
                    cmd += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=False,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaHarnessError(
                f"kafka StorageTool format did not finish in time ({exc.timeout:.0f}s)"
            ) from exc
        if proc.returncode != 0:
            raise KafkaHarnessError(
                f"kafka StorageTool format failed (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-4000:]}"
            )

    def _launch(self) -> None:
        work = self._require_work_dir()
        cmd = [
            _java(self._java_arg),
            *self._jvm_options,
            f"-Dlog4j2.configurationFile={work / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={work / 'logs'}",
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(work / "server.properties"),
        ]
        try:
            self._log_offset = (work / "logs" / "server.log").stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        with (work / "logs" / "stdout.log").open("ab") as out:
            out.write(f"--- starting: {' '.join(cmd)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        log.info("started Kafka test broker pid=%s on %s (work dir %s)", self._proc.pid, self.bootstrap, work)

    def _logs_tail(self) -> str:
        work = self._require_work_dir()
        first_error = ""
        try:
            with (work / "logs" / "server.log").open("rb") as fh:
                fh.seek(self._log_offset)  # this run only: the log is appended across restarts
                first_error = next(
                    (
                        line.decode(errors="replace")
                        for line in fh
                        if b"] ERROR " in line or b"] FATAL " in line
                    ),
                    "",
                )
        except OSError:
            pass
        header = f"--- first error in the broker log ---\n{first_error[:2000]}" if first_error else ""
        return (
            f"{header}--- {work / 'logs' / 'server.log'} (tail) ---\n{_tail(work / 'logs' / 'server.log')}\n"
            f"--- {work / 'logs' / 'stdout.log'} (tail) ---\n{_tail(work / 'logs' / 'stdout.log', 3000)}"
        )

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        """Poll until the broker answers a metadata request with itself in the broker list."""
        assert self._proc is not None
        last_error: str = "no attempt yet"
        while True:
            remaining = deadline - time.monotonic()
            if self._proc.poll() is not None:
                raise KafkaHarnessError(
                    f"Kafka test broker exited with code {self._proc.returncode} during startup\n"
                    f"{self._logs_tail()}"
                )
            if remaining <= 0:
                raise KafkaHarnessError(
                    f"Kafka test broker on {self.bootstrap} not ready after {timeout:.0f}s "
                    f"(last error: {last_error})\n{self._logs_tail()}"
                )
            if not self._port_open():
                last_error = "connection refused"
                # Waiting on the process doubles as the pause between polls and as the exit check.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=min(0.25, remaining))
                continue
            ok, last_error = self._answers_metadata(min(5.0, remaining))
            if ok:
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=min(0.5, max(0.0, deadline - time.monotonic())))

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def _answers_metadata(self, timeout: float) -> tuple[bool, str]:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        timeout_ms = max(1000, int(timeout * 1000))
        admin = None
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id="kafka-test-harness-readiness",
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
            )
            cluster = admin.describe_cluster()
        except (KafkaError, OSError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            if admin is not None:
                admin.close()
        broker_ids = {b.get("broker_id") for b in cluster.get("brokers", [])}
        if self.node_id not in broker_ids:
            return False, f"metadata lists brokers {sorted(broker_ids)}, not node {self.node_id}"
        return True, ""

    def _terminate(self, *, kill: bool, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                if kill:
                    proc.kill()
                else:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "Kafka test broker pid=%s ignored SIGTERM for %.0fs; killing it", proc.pid, timeout
                    )
                    proc.kill()
                    proc.wait(timeout=30)
        finally:
            self._proc = None
        log.info("Kafka test broker pid=%s exited with %s", proc.pid, proc.returncode)


# ---------------------------------------------------------------------------
# Script entry point
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A real Apache Kafka broker for the tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_resolve = sub.add_parser("resolve", help="fetch the Kafka jars with Maven (idempotent)")
    p_resolve.add_argument("--cache-dir", help=f"jar folder (default: ${CACHE_ENV} or {DEFAULT_CACHE_DIR})")
    p_start = sub.add_parser("start", help="run a broker in the foreground until Ctrl-C / SIGTERM")
    p_start.add_argument("--cache-dir", help="jar folder, as for resolve")
    p_start.add_argument("--timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT, help="startup timeout (s)")
    p_start.add_argument("--tls", action="store_true", help="add the TLS listeners (see KafkaBroker)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    # kafka-python logs every refused connection while the broker boots.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    try:
        libs = resolve(args.cache_dir)
    except KafkaHarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command == "resolve":
        print(libs)
        return 0

    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    broker = KafkaBroker(libs_dir=libs, startup_timeout=args.timeout, tls=args.tls)
    try:
        started = time.monotonic()
        broker.start()
        print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        if args.tls:
            users = ", ".join(f"{name}:{password}" for name, password in broker.scram_users.items())
            print(
                f"SASL_SSL (SCRAM users {users}): {broker.sasl_ssl_bootstrap}\n"
                f"SSL with client certificates: {broker.ssl_bootstrap}\n"
                f"SSL, certificate for another host: {broker.wrong_host_bootstrap}\n"
                f"CA and certificates: {broker.pki.folder}",
                flush=True,
            )
        log.info("ready in %.1fs; log: %s", time.monotonic() - started, broker.log_file)
        while not stop_requested.wait(1.0):
            if not broker.running:
                print("error: the broker exited", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    except KafkaHarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        broker.close()
    return 0


if __name__ == "__main__":  # pragma: no cover - script mode only
    sys.exit(main())
