"""The classifier: relevance to India-US relations, seven topics and a strain <-> cooperation stance.

Light to import: the interface (:class:`Classifier`, :class:`TextItem`, :class:`Scores`) and the rule
baselines need no extra packages. :func:`load_classifier` loads the transformer classifier (the
``monitor[classifier]`` extra: onnxruntime, tokenizers, the MiniLM package; the torch backends also need
``monitor[torch]``), once per process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.classify.base import DECISION_THRESHOLD, Classifier, Scores, TextItem
from monitor.errors import ModelError

if TYPE_CHECKING:
    from monitor.classify.model import TransformerClassifier
    from monitor.settings import ScorerSettings

__all__ = ["DECISION_THRESHOLD", "Classifier", "ModelError", "Scores", "TextItem", "load_classifier"]

EXTRA = "monitor[classifier]"


def load_classifier(settings: ScorerSettings) -> TransformerClassifier:
    """Load the encoder and the trained heads named by ``settings`` (offline; takes a few seconds).

    Raises :class:`~monitor.errors.ModelError` naming the extra when onnxruntime, tokenizers, the model
    package (or, for the torch backends, torch) are missing, or naming the folder when the heads are.
    """
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"the transformer classifier needs the {EXTRA} extra "
            f"(pip install 'india-us-monitor[classifier]'): {exc}"
        ) from exc
    from monitor.classify.artefact import HeadSet
    from monitor.classify.encoder import Encoder
    from monitor.classify.model import TransformerClassifier

    heads = HeadSet.load(settings.heads_dir)
    encoder = Encoder(
        model_dir=settings.model_dir,
        precision=settings.precision,
        threads=settings.threads,
        max_tokens=settings.max_tokens,
        batch_size=settings.batch_size,
        backend=settings.backend,
        cache_dir=settings.model_cache,
    )
    return TransformerClassifier(
        encoder,
        heads,
        max_chunks=settings.max_chunks,
        evidence=settings.evidence,
        neutral_share=settings.neutral_share,
    )
