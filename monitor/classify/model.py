"""The transformer classifier: MiniLM sentence embeddings plus trained linear heads.

For each item: the headline and lead (then the rest, up to ``max_chunks`` chunks) are encoded; chunk
vectors are averaged (the first counts double) and normalised; the heads read that vector beside cheap
lexical features. Outputs are combined so that they mean what the contract says:

* ``relevance`` = P(about India-US relations), decision threshold 0.5;
* ``topics[t]`` = min(relevance, P(t | relevant)): a topic is on only for a relevant item;
* the stance distribution is the stance head's for a relevant item; for an item that is not relevant it
  is mixed with "neutral" (weight 1 - relevance), since it says nothing about the bilateral relationship;
  ``score`` = P(cooperation) - P(strain).

Evidence: each sentence is left out in turn (its tokens are dropped from the mean pooling of the same
forward pass, so no text is encoded twice) and the stance head is read again; the sentence whose absence
lowers the margin of the item's label most is the evidence: the one that most drove the stance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from monitor.classify.artefact import HeadSet
from monitor.classify.base import DECISION_THRESHOLD, DEFAULT_NEUTRAL_SHARE, Classifier, Scores, TextItem
from monitor.classify.encoder import Encoded, Encoder
from monitor.classify.lexicon import FEATURE_GROUPS
from monitor.classify.linear import Array
from monitor.classify.text import Chunk, item_sentences, join_sentences, plan_chunks
from monitor.errors import ModelError
from monitor.events import STANCE_LABELS, TOPICS, ModelInfo, StanceLabel

log = logging.getLogger(__name__)

FIRST_CHUNK_WEIGHT = 2.0


def normalise(x: Array) -> Array:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Array = x / np.maximum(norm, 1e-12)
    return out


@dataclass(frozen=True)
class FeatureInput:
    """What the heads read for n items: item vectors, headline vectors, item texts and headlines."""

    emb: Array  # (n, dim) the item embedding
    title_emb: Array  # (n, dim) the headline's tokens pooled (in the context of the first chunk)
    texts: Sequence[str]
    titles: Sequence[str]

    def subset(self, mask: NDArray[np.bool_]) -> FeatureInput:
        keep = [i for i, m in enumerate(mask) if m]
        return FeatureInput(
            self.emb[mask],
            self.title_emb[mask],
            [self.texts[i] for i in keep],
            [self.titles[i] for i in keep],
        )


def build_features(groups: Sequence[str], inputs: FeatureInput) -> Array:
    """The feature matrix of a head: vectors and/or named lexical groups, side by side.

    Groups: ``embedding``, ``title_embedding``, a lexical group of :data:`FEATURE_GROUPS` over the text,
    or ``title:<group>`` over the headline alone.
    """
    columns: list[Array] = []
    for group in groups:
        if group == "embedding":
            columns.append(inputs.emb)
        elif group == "title_embedding":
            columns.append(inputs.title_emb)
        else:
            source = inputs.texts
            name = group
            if group.startswith("title:"):
                source, name = inputs.titles, group.removeprefix("title:")
            spec = FEATURE_GROUPS[name]
            columns.append(
                np.array([spec.compute(t) for t in source], dtype=np.float64).reshape(-1, spec.size)
            )
    return np.hstack(columns)


@dataclass(frozen=True)
class HeadOutputs:
    """Raw head probabilities for n items: P(relevant), P(topic | relevant), P(stance | relevant)."""

    relevance: Array  # (n,)
    topics: Array  # (n, 7)
    stance: Array  # (n, 3) in STANCE_LABELS order


def apply_heads(heads: HeadSet, inputs: FeatureInput) -> HeadOutputs:
    """Run the three heads over the items' features."""
    rel = heads.relevance.predict_proba(build_features(heads.relevance.features, inputs))[:, 0]
    top = heads.topics.predict_proba(build_features(heads.topics.features, inputs))
    st = heads.stance.predict_proba(build_features(heads.stance.features, inputs))
    order = [heads.stance.labels.index(label) for label in STANCE_LABELS]
    topic_order = [heads.topics.labels.index(t) for t in TOPICS]
    return HeadOutputs(rel, top[:, topic_order], st[:, order])


def with_stance_prior(heads: HeadSet, neutral_share: float | None) -> HeadSet:
    """``heads`` with the stance head shifted from its training class shares to ``neutral_share``.

    Prior shift: logits += log(prior / training share), with prior = ((1 - n) / 2, (1 - n) / 2, n) for
    (strain, cooperation, neutral). None, or heads without recorded shares, leave the head as it is.
    """
    share = heads.meta.get("calibration", {}).get("stance", {}).get("training_share")
    if neutral_share is None or share is None:
        return heads
    prior = {
        "strain": (1 - neutral_share) / 2,
        "cooperation": (1 - neutral_share) / 2,
        "neutral": neutral_share,
    }
    trained = dict(zip(STANCE_LABELS, share, strict=True))
    offsets = np.array([np.log(prior[lab]) - np.log(max(trained[lab], 1e-9)) for lab in heads.stance.labels])
    stance = replace(heads.stance, bias=heads.stance.bias + offsets)
    return replace(heads, stance=stance, meta={**heads.meta, "neutral_share": neutral_share})


def combine(outputs: HeadOutputs) -> list[Scores]:
    """Turn head outputs into :class:`Scores` (without evidence), gating topics and stance by relevance."""
    scores: list[Scores] = []
    neutral = np.array([0.0, 0.0, 1.0])
    for i, rel in enumerate(outputs.relevance):
        r = float(rel)
        topics = {t: float(min(r, outputs.topics[i, j])) for j, t in enumerate(TOPICS)}
        weight = 1.0 if r >= DECISION_THRESHOLD else r
        probs = weight * outputs.stance[i] + (1.0 - weight) * neutral
        label: StanceLabel = STANCE_LABELS[int(np.argmax(probs))]
        score = float(np.clip(probs[1] - probs[0], -1.0, 1.0))
        scores.append(
            Scores(
                relevance=r,
                topics=topics,
                stance_score=score,
                stance_label=label,
                stance_probabilities={lab: float(p) for lab, p in zip(STANCE_LABELS, probs, strict=True)},
            )
        )
    return scores


@dataclass(frozen=True)
class EncodedItem:
    """An item's chunks and their encodings; ``vector`` is the item embedding the heads read."""

    chunks: list[Chunk]
    encodings: list[Encoded]
    vector: Array
    title_vector: Array

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.chunks)

    @property
    def title(self) -> str:
        return self.chunks[0].sentences[0]


def features_of(encoded: Sequence[EncodedItem]) -> FeatureInput:
    """The heads' input for encoded items."""
    return FeatureInput(
        emb=np.stack([e.vector for e in encoded]),
        title_emb=np.stack([e.title_vector for e in encoded]),
        texts=[e.text for e in encoded],
        titles=[e.title for e in encoded],
    )


class ItemEncoder:
    """Cuts items into chunks and encodes them into item embeddings (shared by scoring and training)."""

    def __init__(self, encoder: Encoder, *, max_chunks: int = 4) -> None:
        self.encoder = encoder
        self.max_chunks = max_chunks

    def chunks(self, item: TextItem) -> list[Chunk]:
        sentences = item_sentences(item.title, item.summary)
        if not sentences:
            raise ModelError("nothing to score: the item has neither title nor summary")
        budget = self.encoder.max_tokens - 2  # [CLS] and [SEP]
        whole = join_sentences(sentences)
        if len(whole.text) <= budget or self.encoder.count_tokens(whole.text) <= budget:
            return [whole]
        return plan_chunks(
            sentences, self.encoder.count_tokens, max_tokens=budget, max_chunks=self.max_chunks
        )

    def encode(self, items: Sequence[TextItem]) -> list[EncodedItem]:
        plans = [self.chunks(item) for item in items]
        flat = [chunk.text for plan in plans for chunk in plan]
        encoded = self.encoder.encode(flat)
        out: list[EncodedItem] = []
        pos = 0
        for plan in plans:
            mine = encoded[pos : pos + len(plan)]
            pos += len(plan)
            vectors = normalise(np.stack([e.pooled.astype(np.float64) for e in mine]))
            weights = np.ones(len(mine))
            weights[0] = FIRST_CHUNK_WEIGHT
            vector = normalise((vectors * weights[:, None]).sum(axis=0))
            first, enc = plan[0], mine[0]
            owner = np.array([first.sentence_at(int(start)) for start in enc.offsets[:, 0]], dtype=np.int64)
            title_rows = enc.tokens[owner == 0] if len(enc.tokens) else enc.tokens
            title_vector = (
                normalise(title_rows.astype(np.float64).mean(axis=0)) if len(title_rows) else vector
            )
            out.append(EncodedItem(plan, mine, vector, title_vector))
        return out


class TransformerClassifier(Classifier):
    """The scorer's classifier: :class:`ItemEncoder` + :class:`HeadSet`, with sentence evidence."""

    def __init__(
        self,
        encoder: Encoder,
        heads: HeadSet,
        *,
        max_chunks: int = 4,
        evidence: bool = True,
        neutral_share: float | None = DEFAULT_NEUTRAL_SHARE,
    ) -> None:
        self._items = ItemEncoder(encoder, max_chunks=max_chunks)
        self._heads = with_stance_prior(heads, neutral_share)
        self._evidence = evidence
        if heads.encoder and heads.encoder != encoder.fingerprint:
            log.warning(
                "the heads were fitted on encoder %s but %s is loaded: scores may drift; run `monitor train`",
                heads.encoder,
                encoder.fingerprint,
            )
        self._info = ModelInfo(name=heads.name, version=heads.version)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def heads(self) -> HeadSet:
        return self._heads

    def score(self, items: Sequence[TextItem]) -> list[Scores]:
        if not items:
            return []
        encoded = self._items.encode(items)
        scores = combine(apply_heads(self._heads, features_of(encoded)))
        if not self._evidence:
            return scores
        return [
            _with_evidence(s, self._sentence_evidence(e, s.stance_label)) if s.relevant else s
            for s, e in zip(scores, encoded, strict=True)
        ]

    def _sentence_evidence(self, item: EncodedItem, label: StanceLabel, *, limit: int = 2) -> list[str]:
        """The sentences that most drove the stance towards ``label`` (at most ``limit``), by leaving each
        out: its tokens are removed from the mean pooling of the same forward pass (no new encoding) and
        the stance head is read again; the sentence whose removal lowers the label's margin most comes
        first. A second sentence is added when its removal lowers the margin too."""
        head = self._heads.stance
        rows: list[FeatureInput] = []
        sentences: list[str] = []
        chunk_vectors = [normalise(e.pooled.astype(np.float64)) for e in item.encodings]
        weights = np.ones(len(chunk_vectors))
        weights[0] = FIRST_CHUNK_WEIGHT
        for ci, (chunk, enc) in enumerate(zip(item.chunks, item.encodings, strict=True)):
            if len(enc.tokens) == 0:
                continue
            n_total = len(enc.tokens) + 2  # the pooling counted [CLS] and [SEP] too
            total = enc.pooled.astype(np.float64) * n_total
            owner = np.array([chunk.sentence_at(int(start)) for start in enc.offsets[:, 0]])
            for si, sentence in enumerate(chunk.sentences):
                mine = enc.tokens[owner == si]
                if not len(mine) or sentence in sentences:
                    continue
                rest = (total - mine.astype(np.float64).sum(axis=0)) / max(n_total - len(mine), 1)
                vectors = list(chunk_vectors)
                vectors[ci] = normalise(rest)
                vector = normalise((np.stack(vectors) * weights[:, None]).sum(axis=0))
                headline = ci == 0 and si == 0
                rows.append(
                    FeatureInput(
                        vector[None],
                        (vector if headline else item.title_vector)[None],
                        [item.text.replace(sentence, "", 1)],
                        ["" if headline else item.title],
                    )
                )
                sentences.append(sentence)
        if len(sentences) <= 1:
            return sentences
        full = FeatureInput(item.vector[None], item.title_vector[None], [item.text], [item.title])
        z_full = head.logits(build_features(head.features, full))[0]
        z_out = head.logits(
            build_features(
                head.features,
                FeatureInput(
                    np.concatenate([r.emb for r in rows]),
                    np.concatenate([r.title_emb for r in rows]),
                    [t for r in rows for t in r.texts],
                    [t for r in rows for t in r.titles],
                ),
            )
        )
        drop = _margin(z_full[None], head.labels, label) - _margin(z_out, head.labels, label)
        ranked = sorted(range(len(sentences)), key=lambda k: (-float(drop[k]), k))
        chosen = [ranked[0]] + [k for k in ranked[1:limit] if drop[k] > 0]
        return [sentences[k] for k in chosen]


def _margin(z: Array, labels: Sequence[str], label: StanceLabel) -> Array:
    """How far the logits ``z`` (n, 3) favour ``label``: over the opposite pole for strain and
    cooperation, over the stronger pole for neutral."""
    idx = {lab: labels.index(lab) for lab in STANCE_LABELS}
    if label == "neutral":
        out: Array = z[:, idx["neutral"]] - np.maximum(z[:, idx["strain"]], z[:, idx["cooperation"]])
        return out
    other: StanceLabel = "cooperation" if label == "strain" else "strain"
    out = z[:, idx[label]] - z[:, idx[other]]
    return out


def _with_evidence(scores: Scores, evidence: list[str]) -> Scores:
    return Scores(
        relevance=scores.relevance,
        topics=scores.topics,
        stance_score=scores.stance_score,
        stance_label=scores.stance_label,
        stance_probabilities=scores.stance_probabilities,
        evidence=evidence,
    )
