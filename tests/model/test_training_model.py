"""`monitor train` on the real encoder rebuilds the packaged heads.

What must hold on any machine: the same version (a digest of data, recipe and encoder), the same
hyperparameters chosen by cross-validation, weights close in relative norm (BLAS and CPU kernels differ in
the last bits, so bit-identical training holds only on the machine that trained) and the same decisions on
the labelled data. The environment the packaged heads were trained in is recorded in heads.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.classify.artefact import HeadSet
from monitor.classify.data import read_training_data
from monitor.classify.model import apply_heads, combine, with_stance_prior
from monitor.classify.train import EmbeddingCache, Recipe, cached_embedder, run_training

pytestmark = pytest.mark.model
pytest.importorskip("torch", reason="training needs the monitor[torch] extra")

MAX_RELATIVE_DISTANCE = 0.02
"""||rebuilt - packaged|| / ||packaged|| per head: far above float noise, far below a different fit."""
MIN_AGREEMENT = 0.99
HELDOUT_TOLERANCE = 0.01


def _relative_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def test_retraining_reproduces_the_packaged_heads(tmp_path: Path) -> None:
    packaged = HeadSet.load()
    items = read_training_data()
    recipe = Recipe()
    result = run_training(items, output=tmp_path / "heads", cache_dir=tmp_path / "cache", threads=2)
    rebuilt = HeadSet.load(tmp_path / "heads")
    assert rebuilt.version == packaged.version, "the packaged heads are stale: run `monitor train`"
    assert "environment" in packaged.meta and "numpy" in packaged.meta["environment"]

    cal_new, cal_old = rebuilt.meta["calibration"], packaged.meta["calibration"]
    chosen = [("relevance", cal_new["relevance"], cal_old["relevance"])]
    chosen += [(t, cal_new["topics"][t], cal_old["topics"][t]) for t in cal_old["topics"]]
    chosen += [("stance", cal_new["stance"], cal_old["stance"])]
    for name, new, old in chosen:
        assert (new["l2"], new["lexical_boost"]) == (old["l2"], old["lexical_boost"]), name

    for a, b in zip(rebuilt.heads(), packaged.heads(), strict=True):
        assert a.labels == b.labels and a.features == b.features
        assert _relative_distance(a.weight, b.weight) <= MAX_RELATIVE_DISTANCE, a.name
        assert _relative_distance(a.bias, b.bias) <= MAX_RELATIVE_DISTANCE, a.name

    # Decisions of both head sets on every labelled item, from the vectors this machine computed.
    def no_encoding(_: object) -> list[object]:
        raise AssertionError("every vector is in the training cache")

    namespace = f"{rebuilt.encoder}:{recipe.max_tokens}:{recipe.max_chunks}"
    embed = cached_embedder(no_encoding, EmbeddingCache(tmp_path / "cache", namespace))  # type: ignore[arg-type]
    inputs = embed(items)
    share = recipe.report_neutral_share
    new = combine(apply_heads(with_stance_prior(rebuilt, share), inputs))
    old = combine(apply_heads(with_stance_prior(packaged, share), inputs))
    n = len(items)
    assert sum(a.relevant == b.relevant for a, b in zip(new, old, strict=True)) >= MIN_AGREEMENT * n
    assert sum(a.stance_label == b.stance_label for a, b in zip(new, old, strict=True)) >= MIN_AGREEMENT * n
    for topic in old[0].topics:
        same = sum(
            (a.topics[topic] >= 0.5) == (b.topics[topic] >= 0.5) for a, b in zip(new, old, strict=True)
        )
        assert same >= MIN_AGREEMENT * n, topic

    assert result.heldout is not None
    for key, value in packaged.meta["heldout"].items():
        if isinstance(value, float):
            assert abs(rebuilt.meta["heldout"][key] - value) <= HELDOUT_TOLERANCE, key
