"""`monitor train` on the real encoder rebuilds the packaged heads: same version, same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.classify.artefact import HeadSet
from monitor.classify.data import read_training_data
from monitor.classify.train import run_training

pytestmark = pytest.mark.model


def test_retraining_reproduces_the_packaged_heads(tmp_path: Path) -> None:
    packaged = HeadSet.load()
    result = run_training(
        read_training_data(), output=tmp_path / "heads", cache_dir=tmp_path / "cache", threads=2
    )
    rebuilt = HeadSet.load(tmp_path / "heads")
    # The version is a digest of data, recipe and encoder: equal means the packaged heads are up to date.
    assert rebuilt.version == packaged.version, "the packaged heads are stale: run `monitor train`"
    for a, b in zip(rebuilt.heads(), packaged.heads(), strict=True):
        assert a.labels == b.labels and a.features == b.features
        assert np.allclose(a.weight, b.weight, rtol=1e-3, atol=1e-5)
        assert np.allclose(a.bias, b.bias, rtol=1e-3, atol=1e-5)
    assert result.heldout is not None
    assert rebuilt.meta["heldout"] == packaged.meta["heldout"]
