"""The MiniLM encoder as an ONNX graph, built from the model package's safetensors (no torch).

:func:`build_graph` writes the BERT computation (embeddings, post-norm transformer layers with exact GELU,
no pooler) node by node with the ``onnx`` helpers, the weights read by ``safetensors.numpy``; the graph's
output is the last hidden states, what :class:`monitor.classify.minilm.MiniLM` and Hugging Face
``AutoModel`` return (tests/model compares all three). :func:`quantize` makes the dynamic int8 variant
with ONNX Runtime's weight-only quantizer (int8 weights of every MatMul, fp32 arithmetic).

:func:`ensure_graph` keeps the built files in a cache folder, named by the weights' digest, the builder
version and the precision, so a file is built once per machine and never goes stale: the graph is a pure
function of the packaged weights and of this module. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.errors import ModelError

log = logging.getLogger(__name__)

BUILDER_VERSION = 1
"""Bump when the graph this module writes changes: cached files of another version are not used."""
OPSET = 17  # LayerNormalization
OnnxPrecision = Literal["fp32", "int8"]


def graph_file_name(weights_digest: str, precision: OnnxPrecision) -> str:
    return f"minilm-{weights_digest}-b{BUILDER_VERSION}-{precision}.onnx"


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ModelError(
            "building the ONNX encoder needs the onnx package: pip install 'india-us-monitor[classifier]'"
        ) from exc
    return onnx


def build_graph(model_dir: Path) -> Any:
    """The encoder of ``model_dir`` (``config.json`` + ``model.safetensors``) as an ``onnx.ModelProto``.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output ``last_hidden_state``
    (float32, batch x tokens x hidden). Padded keys are masked out of attention.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
        raise ModelError(f"not a BERT model with GELU: {config.get('model_type')}/{config.get('hidden_act')}")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    weights = load_file(str(model_dir / "model.safetensors"))
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""

    nodes: list[Any] = []
    inits: list[Any] = []

    def w(name: str) -> np.ndarray[Any, Any]:
        return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)

    def const(name: str, value: np.ndarray[Any, Any]) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, name: str, out: str) -> str:
        weight = const(f"{name}.weight_t", np.ascontiguousarray(w(f"{name}.weight").T))
        bias = const(f"{name}.bias", w(f"{name}.bias"))
        return node("Add", [node("MatMul", [x, weight], f"{out}.mm"), bias], out)

    def layer_norm(x: str, name: str, out: str) -> str:
        scale, bias = const(f"{name}.weight", w(f"{name}.weight")), const(f"{name}.bias", w(f"{name}.bias"))
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    # Embeddings: word + position + token type 0, then LayerNorm.
    word = node(
        "Gather", [const("word_embeddings", w("embeddings.word_embeddings.weight")), "input_ids"], "word"
    )
    shape = node("Shape", ["input_ids"], "ids_shape")
    length = node("Gather", [shape, const("one", np.array(1, dtype=np.int64))], "length")
    positions = node("Range", [const("zero", np.array(0, dtype=np.int64)), length, "one"], "positions")
    position = node(
        "Gather",
        [const("position_embeddings", w("embeddings.position_embeddings.weight")), positions],
        "position",
    )
    token_type = const("token_type_0", w("embeddings.token_type_embeddings.weight")[0])
    summed = node("Add", [node("Add", [word, position], "word_position"), token_type], "embedded")
    x = layer_norm(summed, "embeddings.LayerNorm", "embeddings")

    # ONNX Runtime's fused CPU kernels (the com.microsoft domain, what its transformer optimizer produces
    # from exported BERT graphs): Attention (QKV projection, masked softmax, context in one node),
    # SkipLayerNormalization (residual + bias + LayerNorm) and BiasGelu (exact GELU).
    mask_index = node("Cast", ["attention_mask"], "mask_index", to=TensorProto.INT32)

    def matmul(x: str, name: str, out: str) -> str:
        weight = const(f"{name}.weight_t", np.ascontiguousarray(w(f"{name}.weight").T))
        return node("MatMul", [x, weight], out)

    def skip_norm(x: str, skip: str, dense: str, norm: str, out: str) -> str:
        inputs = [
            x,
            skip,
            const(f"{norm}.weight", w(f"{norm}.weight")),
            const(f"{norm}.bias", w(f"{norm}.bias")),
        ]
        inputs.append(const(f"{dense}.bias", w(f"{dense}.bias")))
        return ms_node("SkipLayerNormalization", inputs, out, epsilon=eps)

    def ms_node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain="com.microsoft", **attrs))
        return output

    for i in range(int(config["num_hidden_layers"])):
        p, a = f"encoder.layer.{i}.", f"encoder.layer.{i}.attention."
        t = f"l{i}"
        qkv_w = np.concatenate([w(f"{a}self.{n}.weight").T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w(f"{a}self.{n}.bias") for n in ("query", "key", "value")])
        context = ms_node(
            "Attention",
            [
                x,
                const(f"{t}.qkv.weight", np.ascontiguousarray(qkv_w)),
                const(f"{t}.qkv.bias", qkv_b),
                mask_index,
            ],
            f"{t}.attention",
            num_heads=heads,
        )
        attended = matmul(context, f"{a}output.dense", f"{t}.attn_out.mm")
        x = skip_norm(attended, x, f"{a}output.dense", f"{a}output.LayerNorm", f"{t}.attn_norm")
        inner = matmul(x, f"{p}intermediate.dense", f"{t}.ff_in.mm")
        gelu = ms_node(
            "BiasGelu",
            [inner, const(f"{p}intermediate.dense.bias", w(f"{p}intermediate.dense.bias"))],
            f"{t}.gelu",
        )
        out = matmul(gelu, f"{p}output.dense", f"{t}.ff_out.mm")
        x = skip_norm(out, x, f"{p}output.dense", f"{p}output.LayerNorm", f"{t}.ff_norm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="last_hidden_state"))
    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", hidden])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="india-us-monitor",
        producer_version=str(BUILDER_VERSION),
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize(source: Path, target: Path) -> None:
    """The int8 variant of the graph in ``source``, written to ``target``: weight-only 8-bit quantisation
    of every MatMul (ONNX Runtime's ``MatMulNBits``: symmetric int8 weights in blocks of 32 along the input,
    activations and accumulation in fp32).

    Chosen over dynamic int8 (``quantize_dynamic``, int8 activations too), which is up to 1.6x faster here
    but changed at least one decision of the heads on 1.6-2.7% of the 971 labelled items (per channel, with
    or without the attention and feed-forward output projections); this changes none of them (pooled
    vectors: cosine >= 0.9998 to fp32), and it holds the weights in a quarter of the memory.
    """
    onnx = _import_onnx()
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:
        raise ModelError(f"int8 quantisation needs onnxruntime and onnx: {exc}") from exc
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, bits=8)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(source)), bits=8, block_size=32, is_symmetric=True, algo_config=config
    )
    quantizer.process()
    onnx.save(quantizer.model.model, str(target))


def ensure_graph(model_dir: Path, weights_digest: str, precision: OnnxPrecision, folder: Path) -> Path:
    """The path of the ``precision`` graph for these weights, built into ``folder`` if not there yet."""
    target = folder / graph_file_name(weights_digest, precision)
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if precision == "fp32":
            log.info("building the ONNX encoder from %s into %s (once)", model_dir, target)
            model = build_graph(model_dir)
            _atomic_write(target, model.SerializeToString())
        else:
            fp32 = ensure_graph(model_dir, weights_digest, "fp32", folder)
            log.info("quantising the ONNX encoder to int8 into %s (once)", target)
            with tempfile.TemporaryDirectory(dir=folder) as scratch:
                tmp = Path(scratch) / target.name
                quantize(fp32, tmp)
                tmp.chmod(0o644)
                os.replace(tmp, target)
        log.info(
            "%s ready in %.1fs (%.0f MB)",
            target.name,
            time.monotonic() - started,
            target.stat().st_size / 1e6,
        )
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX encoder into {folder}: {exc}") from exc
    return target


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
