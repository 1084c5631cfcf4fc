"""The training recipe on synthetic vectors: reproducible bytes, calibrated thresholds, held-out figures.

The embedder here is deterministic arithmetic over the items' labels plus noise (no model), so the test
checks the fitting, calibration, folding and artefact code that ``monitor train`` runs on real vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from monitor.classify.artefact import META_FILE, WEIGHTS_FILE, HeadSet
from monitor.classify.data import LabelledItem
from monitor.classify.model import FeatureInput, apply_heads, combine
from monitor.classify.train import EmbeddingCache, Recipe, cached_embedder, fold_ids, train_heads
from monitor.events import STANCE_LABELS, TOPICS

DIM = 16


def synthetic_items(n: int = 400) -> list[LabelledItem]:
    items = []
    for i in range(1, n + 1):
        relevant = i % 4 != 0
        topics = (
            (TOPICS[i % 7], TOPICS[(i * 3) % 7])
            if relevant and i % 3 == 0
            else ((TOPICS[i % 7],) if relevant else ())
        )
        stance = STANCE_LABELS[i % 3] if relevant else None
        items.append(
            LabelledItem(
                id=f"syn-{i:04d}",
                title=f"India US item {i}" if relevant else f"Other item {i}",
                summary=f"summary {i}",
                relevant=relevant,
                topics=tuple(sorted(set(topics), key=TOPICS.index)),
                stance=stance,
                split="heldout" if i % 5 == 0 else "train",
            )
        )
    return items


def vector(item: LabelledItem) -> np.ndarray:
    seed = int(hashlib.sha256(item.id.encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).normal(size=DIM) * 0.6
    v[0] += 2.0 if item.relevant else -2.0
    for t in item.topics:
        v[1 + TOPICS.index(t)] += 2.0
    if item.stance is not None:
        v[8 + STANCE_LABELS.index(item.stance)] += 2.0
    return v / np.linalg.norm(v)


def embed(items: Sequence[LabelledItem]) -> FeatureInput:
    emb = np.stack([vector(i) for i in items])
    return FeatureInput(emb, emb, [f"{i.title}. {i.summary}" for i in items], [i.title for i in items])


RECIPE = Recipe(l2_grid=(0.01, 0.1), folds=3, stance_features=("embedding", "stance_terms"))


def test_training_learns_and_reports_heldout_figures() -> None:
    result = train_heads(synthetic_items(), embed, encoder="synthetic", recipe=RECIPE)
    assert result.train_items == 320 and result.heldout_items == 80
    report = result.heldout
    assert report is not None
    assert report.relevance.f1 > 0.95
    assert report.topic_micro.f1 > 0.8
    assert report.stance.macro_f1 > 0.8
    meta = result.heads.meta
    assert meta["name"] == "minilm-l6-india-us" and meta["encoder"] == "synthetic"
    assert meta["heldout"]["relevance_f1"] == round(report.relevance.f1, 4)
    assert 0.05 <= meta["calibration"]["relevance"]["threshold"] <= 0.95
    assert set(meta["calibration"]["topics"]) == set(TOPICS)


def test_training_is_reproducible_to_the_byte(tmp_path: Path) -> None:
    items = synthetic_items()
    for name in ("a", "b"):
        train_heads(items, embed, encoder="synthetic", recipe=RECIPE).heads.save(tmp_path / name)
    for file in (WEIGHTS_FILE, META_FILE):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_saved_heads_load_and_score_the_same(tmp_path: Path) -> None:
    items = synthetic_items()
    heads = train_heads(items, embed, encoder="synthetic", recipe=RECIPE).heads
    heads.save(tmp_path)
    loaded = HeadSet.load(tmp_path)
    assert loaded.version == heads.version and loaded.topics.labels == TOPICS
    inputs = embed(items[:20])
    a, b = combine(apply_heads(heads, inputs)), combine(apply_heads(loaded, inputs))
    assert [x.stance_label for x in a] == [x.stance_label for x in b]
    assert np.allclose([x.relevance for x in a], [x.relevance for x in b], atol=1e-6)


def test_version_changes_with_the_data() -> None:
    items = synthetic_items()
    v1 = train_heads(items, embed, encoder="synthetic", recipe=RECIPE).heads.version
    changed = items[:-1]
    v2 = train_heads(changed, embed, encoder="synthetic", recipe=RECIPE).heads.version
    assert v1 != v2


def test_folds_depend_on_the_id_only() -> None:
    items = synthetic_items(50)
    assert np.array_equal(fold_ids(items, 5), fold_ids(list(reversed(items)), 5)[::-1])


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    items = synthetic_items(10)
    calls: list[int] = []

    def encode(batch: Sequence[LabelledItem]) -> list[object]:
        calls.append(len(batch))
        out = []
        for item in batch:
            v = vector(item)

            class Encoded:
                vector = v
                title_vector = v
                text = f"{item.title}. {item.summary}"
                title = item.title

            out.append(Encoded)
        return out

    first = cached_embedder(encode, EmbeddingCache(tmp_path, "ns"))(items)  # type: ignore[arg-type]
    again = cached_embedder(encode, EmbeddingCache(tmp_path, "ns"))(items)  # type: ignore[arg-type]
    assert calls == [10]
    assert np.allclose(first.emb, again.emb) and first.texts == again.texts
    cached_embedder(encode, EmbeddingCache(tmp_path, "other"))(items[:3])  # type: ignore[arg-type]
    assert calls == [10, 3]


def test_too_little_data_is_refused() -> None:
    with pytest.raises(ValueError, match="training items"):
        train_heads(synthetic_items(10), embed, encoder="synthetic", recipe=RECIPE)


def test_headline_copies_share_their_originals_fold() -> None:
    from monitor.classify.train import headline_copies

    items = synthetic_items(40)
    copies = headline_copies(items)
    assert len(copies) == 40 and all(c.summary == "" and c.id.endswith("#headline") for c in copies)
    assert np.array_equal(fold_ids(items, 5), fold_ids(copies, 5))
    recipe = Recipe(l2_grid=(0.1,), folds=3, headline_copies=True)
    result = train_heads(synthetic_items(), embed, encoder="synthetic", recipe=recipe)
    assert result.train_items == 2 * 320  # the originals and a headline copy of each
