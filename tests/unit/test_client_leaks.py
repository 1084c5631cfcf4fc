"""The suite's own guard: a test that leaves a Kafka client open fails, and the client is closed.

Runs pytest on two small tests in a scratch folder, with this suite's conftest, in a process of its own
(no broker needed: a consumer with a fixed API version connects only when used).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

LEAKY = """
import kafka

def test_leaves_a_consumer_open():
    kafka.KafkaConsumer(bootstrap_servers="127.0.0.1:9", api_version=(2, 5))

def test_closes_its_consumer():
    consumer = kafka.KafkaConsumer(bootstrap_servers="127.0.0.1:9", api_version=(2, 5))
    consumer.close()
"""


def test_a_leaked_kafka_client_fails_the_test_that_leaked_it(tmp_path: Path) -> None:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(LEAKY, encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "2 passed, 1 error" in out, out  # the leaky test's call passed; its teardown failed
    assert "ERROR test_leaky.py::test_leaves_a_consumer_open" in out, out
    assert "test_leaves_a_consumer_open left 1 Kafka client(s) open: KafkaConsumer" in out, out


def test_a_failed_bootstrap_leaves_no_network_thread_behind() -> None:
    # kafka-python 3 starts a client's IO thread before bootstrapping and loses it when the constructor
    # raises; the bus closes what a failed attempt made. A bound socket that does not listen refuses.
    import socket
    import threading

    import pytest

    from monitor.bus.kafka import KafkaBus
    from monitor.errors import BusError
    from monitor.settings import KafkaSettings

    def io_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("kafka-io")]

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        bus = KafkaBus(KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", request_timeout="1s"))
        before = io_threads()
        for _ in range(3):
            with pytest.raises(BusError, match="refused"):
                bus.consumer(["news.articles"], group_id="leak-check")
            with pytest.raises(BusError, match="refused"):
                bus.create_topics([])
            with pytest.raises(BusError, match="refused"):
                bus.topic_partitions("news.articles")
        assert io_threads() == before
