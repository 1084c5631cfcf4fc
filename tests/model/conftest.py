"""Tests that load the real encoder (the ``monitor[classifier]`` extra), loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.settings import ScorerSettings

pytest.importorskip("onnxruntime", reason="the model tests need the monitor[classifier] extra")
pytest.importorskip("onnx", reason="the model tests need the monitor[classifier] extra")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/model/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX graph cache for the session (each graph is built once)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def classifier(model_cache: Path):  # type: ignore[no-untyped-def]
    """The scorer's classifier, default settings (onnx, packaged heads, auto precision), loaded once."""
    from monitor.classify import load_classifier

    return load_classifier(ScorerSettings(threads=2, model_cache=model_cache))
