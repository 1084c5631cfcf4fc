"""Fixtures for the integration tests: a real Kafka broker, unique names.

``KAFKA_BOOTSTRAP_SERVERS`` set: the tests use that broker (e.g. the compose one) and tests that need
to stop a broker of their own are skipped. Unset: one broker (Apache Kafka 4.1.1, KRaft, from the
Maven jars in ``.cache/``) is started for the session; ``MONITOR_TEST_KAFKA_STARTUP_TIMEOUT`` (s)
bounds each broker start.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.kafka import DEFAULT_STARTUP_TIMEOUT, KafkaBroker, resolve
from harness.tls import PkiUnavailable

EXTERNAL_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


def _startup_timeout() -> float:
    return float(os.environ.get("MONITOR_TEST_KAFKA_STARTUP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT))


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """The folder with Kafka's jars (downloaded with Maven on first use)."""
    return resolve()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers of the session's broker: the external one, or one started here."""
    external = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    libs = request.getfixturevalue("kafka_libs")
    broker = KafkaBroker(libs_dir=libs, startup_timeout=_startup_timeout())
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.close()


@pytest.fixture
def kafka_broker_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., KafkaBroker]]:
    """Start a broker owned by the test (to stop, kill or restart); closed at the test's end.

    Keyword arguments go to :class:`KafkaBroker` (e.g. ``config={...}``).
    """
    if os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip():
        pytest.skip(f"needs a broker of its own; {EXTERNAL_BOOTSTRAP_ENV} points at an external one")
    libs = request.getfixturevalue("kafka_libs")
    brokers: list[KafkaBroker] = []

    def start(**kwargs: Any) -> KafkaBroker:
        kwargs.setdefault("libs_dir", libs)
        kwargs.setdefault("startup_timeout", _startup_timeout())
        broker = KafkaBroker(**kwargs)
        brokers.append(broker)
        return broker.start()

    try:
        yield start
    finally:
        for broker in reversed(brokers):
            broker.close()


@pytest.fixture(scope="module")
def tls_broker(request: pytest.FixtureRequest) -> Iterator[KafkaBroker]:
    """A broker of the module's own with TLS listeners (``KafkaBroker(tls=True)``: SASL_SSL with SCRAM,
    SSL with client certificates, SSL with a certificate for another host); skipped without openssl."""
    if os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip():
        pytest.skip(f"needs a broker of its own; {EXTERNAL_BOOTSTRAP_ENV} points at an external one")
    libs = request.getfixturevalue("kafka_libs")
    broker = KafkaBroker(libs_dir=libs, startup_timeout=_startup_timeout(), tls=True)
    try:
        try:
            broker.start()
        except PkiUnavailable as exc:
            pytest.skip(str(exc))
        yield broker
    finally:
        broker.close()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("topic")`` -> ``"topic-<test-name>-<8 hex>"``, a legal, fresh Kafka name."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-").lower()[:80] or "test"

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{slug}-{uuid.uuid4().hex[:8]}"

    return make
