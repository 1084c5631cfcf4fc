"""Shared pytest setup for every test folder."""

from __future__ import annotations

import sys
from pathlib import Path

# The test helpers live in tests/harness/ and are imported as ``harness``; make that work in any
# pytest import mode (importlib mode does not put tests/ on sys.path by itself).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


# --- Kafka clients: every test closes what it opens ----------------------------------------------------
#
# A client left open keeps its background thread talking to a broker that may be gone, and its garbage
# collection later fails some unrelated test (PytestUnraisableExceptionWarning from __del__). So each
# kafka-python client is recorded when it is made, and a test that ends with one of its own still open
# fails, naming the client; the client is then closed so that it cannot disturb the tests after it.

import kafka  # noqa: E402
import pytest  # noqa: E402

_CLIENT_TYPES = (kafka.KafkaProducer, kafka.KafkaConsumer, kafka.KafkaAdminClient)
_opened: list[object] = []


def _recording(cls: type) -> None:
    original = cls.__init__

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        _opened.append(self)
        original(self, *args, **kwargs)  # type: ignore[misc]

    cls.__init__ = __init__  # type: ignore[misc]


for _cls in _CLIENT_TYPES:
    _recording(_cls)


def _force_close(client: object) -> None:
    try:
        if isinstance(client, kafka.KafkaProducer):
            client.close(timeout=0)
        elif isinstance(client, kafka.KafkaConsumer):
            client.close(autocommit=False)
        else:
            client.close()  # type: ignore[attr-defined]
    except Exception:  # closing a half-made client: best effort
        pass


@pytest.fixture(autouse=True)
def _kafka_clients_closed(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Fail the test that leaves a Kafka client of its own (or of its function fixtures) open."""
    before = len(_opened)
    yield
    mine = _opened[before:]
    del _opened[before:]
    leaked = [c for c in mine if hasattr(c, "_closed") and not c._closed]  # type: ignore[attr-defined]
    for client in leaked:
        _force_close(client)
    if leaked:
        names = ", ".join(type(c).__name__ for c in leaked)
        pytest.fail(f"{request.node.nodeid} left {len(leaked)} Kafka client(s) open: {names}", pytrace=False)
