"""``monitor train``: fit the heads on the project's labelled data, reproducibly, in minutes on 2 CPUs.

Recipe (everything fixed, nothing random):

1. Embed every labelled item with the fp32 encoder (the reference precision; the scorer's bf16/int8
   vectors are within a cosine of 0.997-0.99998 of it), one item at a time so a vector never depends on
   its batch; vectors are cached on disk by text and encoder, and rounded to 1e-6.
2. For each head, choose the L2 strength by 5-fold cross-validation on the train split (folds by a hash
   of the item id), minimising the out-of-fold log loss.
3. Calibrate on the out-of-fold predictions: Platt scaling, then the threshold that maximises F1, folded
   into the bias so that 0.5 is the decision point (relevance, each topic); a softmax temperature
   (stance).
4. Fit on the whole train split, fold standardisation and calibration into the weights, round them to
   float32, and write ``heads.safetensors`` + ``heads.json`` with the held-out figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from monitor.classify.artefact import HeadSet
from monitor.classify.base import DEFAULT_NEUTRAL_SHARE
from monitor.classify.data import LabelledItem, data_digest, split
from monitor.classify.evaluation import Report, evaluate
from monitor.classify.lexicon import FEATURE_GROUPS
from monitor.classify.linear import (
    Array,
    LinearHead,
    Standardizer,
    best_f1_threshold,
    fit_binary,
    fit_platt,
    fit_softmax,
    fit_temperature,
    fold_binary,
    fold_softmax,
    logit,
    sigmoid,
    softmax,
)
from monitor.classify.model import (
    EncodedItem,
    FeatureInput,
    apply_heads,
    build_features,
    combine,
    with_stance_prior,
)
from monitor.events import STANCE_LABELS, TOPICS

log = logging.getLogger(__name__)

MODEL_NAME = "minilm-l6-india-us"
RECIPE_VERSION = 1
CACHE_FORMAT = 2


@dataclass(frozen=True)
class Recipe:
    """What ``monitor train`` does; part of the model version."""

    relevance_features: tuple[str, ...] = ("embedding", "relevance_terms")
    topic_features: tuple[str, ...] = ("embedding", "topic_terms", "title:topic_terms")
    stance_features: tuple[str, ...] = ("embedding", "title_embedding", "stance_terms", "title:stance_terms")
    l2_grid: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    # The held-out figures written into heads.json use this share of neutral items (as the scorer does
    # by default; see monitor.classify.model.with_stance_prior).
    report_neutral_share: float = DEFAULT_NEUTRAL_SHARE
    # Also train on every item's headline alone (a second view of the same labelled item).
    headline_copies: bool = False
    # Multipliers of the standardised lexical columns tried by cross-validation (with each L2 strength).
    lexical_boosts: tuple[float, ...] = (1.0, 3.0, 10.0)
    folds: int = 5
    max_tokens: int = 128
    max_chunks: int = 4
    recipe_version: int = RECIPE_VERSION


Embedder = Callable[[Sequence[LabelledItem]], FeatureInput]
"""The heads' inputs (item and headline vectors, texts) for labelled items."""


# --- embedding cache ----------------------------------------------------------------------------------


class EmbeddingCache:
    """Item and headline vectors on disk, keyed by encoder, chunking and text (``embeddings-<key>.npz``)."""

    def __init__(self, directory: Path, namespace: str) -> None:
        key = hashlib.sha256(f"{CACHE_FORMAT}:{namespace}".encode()).hexdigest()[:16]
        self.path = directory / f"embeddings-{key}.npz"
        self._rows: dict[str, tuple[Array, Array, str, str]] = {}
        self._dirty = False
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for row in zip(
                    data["keys"],
                    data["vectors"],
                    data["title_vectors"],
                    data["texts"],
                    data["titles"],
                    strict=True,
                ):
                    key, vector, title_vector, text, title = row
                    self._rows[str(key)] = (
                        vector.astype(np.float64),
                        title_vector.astype(np.float64),
                        str(text),
                        str(title),
                    )

    @staticmethod
    def key(item: LabelledItem) -> str:
        return hashlib.sha256(f"{item.title}\x00{item.summary}".encode()).hexdigest()

    def get(self, item: LabelledItem) -> tuple[Array, Array, str, str] | None:
        return self._rows.get(self.key(item))

    def put(self, item: LabelledItem, row: tuple[Array, Array, str, str]) -> None:
        self._rows[self.key(item)] = row
        self._dirty = True

    def __len__(self) -> int:
        return len(self._rows)

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._rows)
        rows = [self._rows[k] for k in keys]
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(
            tmp,
            keys=np.array(keys),
            vectors=np.stack([r[0] for r in rows]).astype(np.float32),
            title_vectors=np.stack([r[1] for r in rows]).astype(np.float32),
            texts=np.array([r[2] for r in rows]),
            titles=np.array([r[3] for r in rows]),
        )
        tmp.replace(self.path)
        self._dirty = False


def _as_input(rows: Sequence[tuple[Array, Array, str, str]]) -> FeatureInput:
    return FeatureInput(
        emb=np.stack([r[0] for r in rows]),
        title_emb=np.stack([r[1] for r in rows]),
        texts=[r[2] for r in rows],
        titles=[r[3] for r in rows],
    )


def _quantise(v: Array) -> Array:
    """6 decimals, then float32 (what the cache file holds): a vector that no longer depends on the last
    bits of the arithmetic, and the same whether it was just computed or read back from the cache."""
    out: Array = np.round(v.astype(np.float64), 6).astype(np.float32).astype(np.float64)
    return out


def cached_embedder(
    encode: Callable[[Sequence[LabelledItem]], list[EncodedItem]], cache: EmbeddingCache | None
) -> Embedder:
    """The heads' inputs for labelled items: encoded with ``encode`` unless ``cache`` has them."""

    def row(e: EncodedItem) -> tuple[Array, Array, str, str]:
        return _quantise(e.vector), _quantise(e.title_vector), e.text, e.title

    def embed(items: Sequence[LabelledItem]) -> FeatureInput:
        if cache is None:
            return _as_input([row(e) for e in encode(items)])
        missing = [item for item in items if cache.get(item) is None]
        if missing:
            log.info("encoding %d item(s) (%d cached)", len(missing), len(items) - len(missing))
            for item, encoded in zip(missing, encode(missing), strict=True):
                cache.put(item, row(encoded))
            cache.save()
        found = [cache.get(item) for item in items]
        return _as_input([f for f in found if f is not None])

    return embed


# --- fitting ------------------------------------------------------------------------------------------


def fold_ids(items: Sequence[LabelledItem], folds: int) -> Array:
    """Fold of each item: a hash of its id, so folds never change when items are added elsewhere. A
    derived copy (``id#headline``) shares its original's fold, so no fold learns from its own items."""

    def fold(ident: str) -> int:
        return int(hashlib.sha256(ident.split("#", 1)[0].encode()).hexdigest()[:8], 16) % folds

    return np.array([fold(i.id) for i in items])


def headline_copies(items: Sequence[LabelledItem]) -> list[LabelledItem]:
    """Each item with a summary again as its headline alone (same labels): feeds often carry little more."""
    return [replace(i, id=f"{i.id}#headline", summary="") for i in items if i.summary.strip()]


Setting = tuple[float, float]
"""(L2 strength, boost of the lexical columns): a point of the grid searched by cross-validation."""


def _standardizer(x: Array, lexical: Array, boost: float) -> Standardizer:
    """Standardise ``x``; lexical columns are then multiplied by ``boost``, which weakens the L2 penalty
    on them by boost squared: a handful of word-list features can then count beside 384 vector columns."""
    std = Standardizer.fit(x)
    if boost == 1.0:
        return std
    scale = std.scale.copy()
    scale[lexical] /= boost
    return Standardizer(std.mean, scale)


def _settings(grid: Sequence[float], boosts: Sequence[float]) -> list[Setting]:
    return [(l2, boost) for boost in boosts for l2 in grid]


def _oof_binary(x: Array, y: Array, folds: Array, setting: Setting, lexical: Array) -> Array:
    l2, boost = setting
    out = np.zeros(len(y))
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        if len(np.unique(y[tr])) < 2:
            out[te] = logit(float(y[tr].mean()) if len(y[tr]) else 0.5)
            continue
        std = _standardizer(x[tr], lexical, boost)
        w, b = fit_binary(std(x[tr]), y[tr], l2=l2)
        out[te] = std(x[te]) @ w + b
    return out


def _log_loss(z: Array, y: Array) -> float:
    return float(np.mean(np.logaddexp(0, z) - y * z))


@dataclass
class BinaryFit:
    weight: Array
    bias: float
    l2: float
    platt: tuple[float, float]
    threshold: float
    oof_f1: float
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    boost: float = 1.0


def fit_binary_head(
    x: Array,
    y: Array,
    folds: Array,
    grid: Sequence[float],
    *,
    lexical: Array,
    boosts: Sequence[float] = (1.0,),
) -> BinaryFit:
    """Choose (L2, lexical boost) by CV, calibrate on out-of-fold logits, fit on everything, fold it all
    into (w, b)."""
    settings = _settings(grid, boosts)
    losses = {s: _log_loss(_oof_binary(x, y, folds, s, lexical), y) for s in settings}
    best = min(settings, key=lambda s: (losses[s], s))
    oof = _oof_binary(x, y, folds, best, lexical)
    a, c = fit_platt(oof, y)
    threshold, f1 = best_f1_threshold(sigmoid(a * oof + c), y)
    std = _standardizer(x, lexical, best[1])
    w, b = fit_binary(std(x), y, l2=best[0])
    w_raw, b_raw = fold_binary(std, w, b, scale=a, shift=c - logit(threshold))
    return BinaryFit(
        w_raw,
        b_raw,
        best[0],
        (a, c),
        threshold,
        f1,
        {f"{l2}/{boost}": round(v, 5) for (l2, boost), v in losses.items()},
        best[1],
    )


def _oof_softmax(x: Array, y: Array, folds: Array, setting: Setting, *, k: int, lexical: Array) -> Array:
    l2, boost = setting
    out = np.zeros((len(y), k))
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        std = _standardizer(x[tr], lexical, boost)
        w, b = fit_softmax(std(x[tr]), y[tr], k, l2=l2)
        out[te] = std(x[te]) @ w.T + b
    return out


@dataclass
class SoftmaxFit:
    weight: Array
    bias: Array
    l2: float
    temperature: float
    oof_macro_f1: float
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    boost: float = 1.0


def _macro_f1(y: Array, pred: Array, k: int) -> float:
    scores = []
    for c in range(k):
        tp = float(np.sum((pred == c) & (y == c)))
        fp = float(np.sum((pred == c) & (y != c)))
        fn = float(np.sum((pred != c) & (y == c)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def fit_softmax_head(
    x: Array,
    y: Array,
    folds: Array,
    grid: Sequence[float],
    k: int,
    *,
    lexical: Array,
    boosts: Sequence[float] = (1.0,),
) -> SoftmaxFit:
    settings = _settings(grid, boosts)
    losses: dict[Setting, float] = {}
    for s in settings:
        p = softmax(_oof_softmax(x, y, folds, s, k=k, lexical=lexical))
        losses[s] = float(-np.mean(np.log(p[np.arange(len(y)), y.astype(int)] + 1e-12)))
    best = min(settings, key=lambda s: (losses[s], s))
    oof = _oof_softmax(x, y, folds, best, k=k, lexical=lexical)
    temperature = fit_temperature(oof, y)
    std = _standardizer(x, lexical, best[1])
    w, b = fit_softmax(std(x), y, k, l2=best[0])
    w_raw, b_raw = fold_softmax(std, w, b, temperature=temperature)
    f1 = _macro_f1(y, np.argmax(oof, axis=1), k)
    return SoftmaxFit(
        w_raw,
        b_raw,
        best[0],
        temperature,
        f1,
        {f"{l2}/{boost}": round(v, 5) for (l2, boost), v in losses.items()},
        best[1],
    )


def lexical_columns(groups: Sequence[str], inputs: FeatureInput) -> Array:
    """Which columns of :func:`build_features` are lexical (True) rather than vector columns."""
    mask: list[bool] = []
    for group in groups:
        if group == "embedding":
            mask += [False] * inputs.emb.shape[1]
        elif group == "title_embedding":
            mask += [False] * inputs.title_emb.shape[1]
        else:
            mask += [True] * FEATURE_GROUPS[group.removeprefix("title:")].size
    return np.array(mask, dtype=bool)


def _round(a: Array) -> Array:
    """float32, then 7 significant digits: the same bytes on every machine for the same optimum."""
    flat = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        digits = 6 - np.floor(np.log10(np.abs(np.where(flat == 0, 1.0, flat))))
    rounded = np.round(flat * 10.0**digits) / 10.0**digits
    out: Array = rounded.astype(np.float32).astype(np.float64)
    return out


@dataclass(frozen=True)
class TrainResult:
    heads: HeadSet
    heldout: Report | None
    train_items: int
    heldout_items: int


def train_heads(
    items: Sequence[LabelledItem], embed: Embedder, *, encoder: str, recipe: Recipe | None = None
) -> TrainResult:
    """Fit the three heads on the train split of ``items`` and measure them on the heldout split."""
    recipe = recipe or Recipe()
    train = split(items, "train")
    heldout = split(items, "heldout")
    if len(train) < 20:
        raise ValueError(f"only {len(train)} training items; need at least 20")
    if recipe.headline_copies:
        train = train + headline_copies(train)
    inputs = embed(train)
    folds = fold_ids(train, recipe.folds)

    # relevance: every train item
    x_rel = build_features(recipe.relevance_features, inputs)
    y_rel = np.array([float(i.relevant) for i in train])
    rel = fit_binary_head(
        x_rel,
        y_rel,
        folds,
        recipe.l2_grid,
        lexical=lexical_columns(recipe.relevance_features, inputs),
        boosts=recipe.lexical_boosts,
    )
    log.info("relevance: l2=%s threshold=%.2f out-of-fold F1=%.3f", rel.l2, rel.threshold, rel.oof_f1)

    # topics: P(topic | relevant), on relevant items
    relevant = np.array([i.relevant for i in train])
    x_top = build_features(recipe.topic_features, inputs.subset(relevant))
    topic_fits: dict[str, BinaryFit] = {}
    for topic in TOPICS:
        y = np.array([float(topic in i.topics) for i in train if i.relevant])
        topic_fits[topic] = fit_binary_head(
            x_top,
            y,
            folds[relevant],
            recipe.l2_grid,
            lexical=lexical_columns(recipe.topic_features, inputs),
            boosts=recipe.lexical_boosts,
        )
        f = topic_fits[topic]
        log.info("topic %s: l2=%s threshold=%.2f out-of-fold F1=%.3f", topic, f.l2, f.threshold, f.oof_f1)

    # stance: P(stance | relevant), on relevant items with a stance label
    has_stance = np.array([i.relevant and i.stance in STANCE_LABELS for i in train])
    x_st = build_features(recipe.stance_features, inputs.subset(has_stance))
    y_st = np.array([STANCE_LABELS.index(str(i.stance)) for i, h in zip(train, has_stance, strict=True) if h])
    st = fit_softmax_head(
        x_st,
        y_st,
        folds[has_stance],
        recipe.l2_grid,
        len(STANCE_LABELS),
        lexical=lexical_columns(recipe.stance_features, inputs),
        boosts=recipe.lexical_boosts,
    )
    share = np.bincount(y_st, minlength=len(STANCE_LABELS)) / len(y_st)
    log.info(
        "stance: l2=%s temperature=%.2f out-of-fold macro F1=%.3f", st.l2, st.temperature, st.oof_macro_f1
    )

    digest = data_digest(items)
    recipe_json = json.dumps(asdict(recipe), sort_keys=True)
    version_key = hashlib.sha256(f"{digest}\n{recipe_json}\n{encoder}".encode()).hexdigest()[:12]
    meta: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": f"{RECIPE_VERSION}.{version_key}",
        "encoder": encoder,
        "recipe": json.loads(recipe_json),
        "data": {"sha256": digest, "train_items": len(train), "heldout_items": len(heldout)},
        "environment": training_environment(),
        "decision_threshold": 0.5,
        "calibration": {
            "relevance": _describe_binary(rel),
            "topics": {t: _describe_binary(f) for t, f in topic_fits.items()},
            "stance": {
                "training_share": [round(float(v), 6) for v in share],
                "l2": st.l2,
                "lexical_boost": st.boost,
                "temperature": round(st.temperature, 6),
                "oof_macro_f1": round(st.oof_macro_f1, 4),
                "cv_log_loss": st.cv_log_loss,
            },
        },
    }
    heads = HeadSet(
        relevance=LinearHead(
            "relevance",
            "sigmoid",
            ("relevant",),
            recipe.relevance_features,
            _round(rel.weight[None, :]),
            _round(np.array([rel.bias])),
        ),
        topics=LinearHead(
            "topics",
            "sigmoid",
            TOPICS,
            recipe.topic_features,
            _round(np.stack([topic_fits[t].weight for t in TOPICS])),
            _round(np.array([topic_fits[t].bias for t in TOPICS])),
        ),
        stance=LinearHead(
            "stance", "softmax", STANCE_LABELS, recipe.stance_features, _round(st.weight), _round(st.bias)
        ),
        meta=meta,
    )
    report = None
    if heldout:
        shifted = with_stance_prior(heads, recipe.report_neutral_share)
        report = evaluate(heldout, combine(apply_heads(shifted, embed(heldout))))
        meta["heldout_neutral_share"] = recipe.report_neutral_share
        meta["heldout"] = report.summary()
    return TrainResult(heads, report, len(train), len(heldout))


def training_environment() -> dict[str, str]:
    """What the fitted weights depend on beyond data and recipe, recorded in heads.json: the versions of
    the numeric packages and the BLAS numpy uses. The last bits of the weights differ across these (and
    across CPUs); the version digest does not depend on them."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    env = {"python": platform.python_version(), "machine": platform.machine()}
    for package in ("numpy", "torch", "tokenizers", "safetensors"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            env[package] = "absent"
    try:
        config: Any = np.show_config(mode="dicts")
        env["blas"] = str(config["Build Dependencies"]["blas"]["name"])
    except (TypeError, KeyError):
        env["blas"] = "unknown"
    return env


def _describe_binary(fit: BinaryFit) -> dict[str, Any]:
    return {
        "l2": fit.l2,
        "lexical_boost": fit.boost,
        "platt": [round(fit.platt[0], 6), round(fit.platt[1], 6)],
        "threshold": round(fit.threshold, 4),
        "oof_f1": round(fit.oof_f1, 4),
        "cv_log_loss": fit.cv_log_loss,
    }


def encoder_embedder(item_encoder: Any) -> Callable[[Sequence[LabelledItem]], list[EncodedItem]]:
    """Encode labelled items one at a time with an :class:`~monitor.classify.model.ItemEncoder`, so that
    no vector depends on the batch it was computed in."""

    def encode(items: Sequence[LabelledItem]) -> list[EncodedItem]:
        out: list[EncodedItem] = []
        for item in items:
            out.extend(item_encoder.encode([item.text_item]))
        return out

    return encode


def run_training(
    items: Sequence[LabelledItem],
    *,
    output: Path,
    cache_dir: Path | None,
    model_dir: Path | None = None,
    threads: int = 2,
    recipe: Recipe | None = None,
) -> TrainResult:
    """Everything ``monitor train`` does: load the fp32 encoder, embed (cached), fit, write the heads."""
    from monitor.classify.encoder import Encoder, import_torch
    from monitor.classify.model import ItemEncoder

    torch = import_torch()

    recipe = recipe or Recipe()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    # The reference computation: plain torch, fp32 (the onnx backend matches it to cosine 0.99999+).
    encoder = Encoder(
        model_dir=model_dir, precision="fp32", threads=threads, max_tokens=recipe.max_tokens, backend="native"
    )
    item_encoder = ItemEncoder(encoder, max_chunks=recipe.max_chunks)
    namespace = f"{encoder.fingerprint}:{recipe.max_tokens}:{recipe.max_chunks}"
    cache = EmbeddingCache(cache_dir, namespace) if cache_dir is not None else None
    embed = cached_embedder(encoder_embedder(item_encoder), cache)
    result = train_heads(items, embed, encoder=encoder.fingerprint, recipe=recipe)
    result.heads.save(output)
    return result
