"""Tests that load the real encoder (the ``monitor[classifier]`` extra), loaded once per session."""

from __future__ import annotations

import pytest

from monitor.settings import ScorerSettings

pytest.importorskip("torch", reason="the model tests need the monitor[classifier] extra")
pytest.importorskip("transformers", reason="the model tests need the monitor[classifier] extra")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/model/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def classifier():  # type: ignore[no-untyped-def]
    """The scorer's classifier with the default settings (packaged heads, auto precision), loaded once."""
    from monitor.classify import load_classifier

    return load_classifier(ScorerSettings(threads=2))
