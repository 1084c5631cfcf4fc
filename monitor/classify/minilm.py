"""MiniLM (BERT architecture) in plain torch, loaded from the model's safetensors file.

Why not ``transformers.AutoModel``: importing transformers' BERT pulls in sympy, scipy, torch.distributed,
dynamo and triton, about 220 MB of resident memory before the first text, which alone broke the scorer's
1 GB budget; this module is the same computation in ~100 lines and imports only torch. The output equals
``AutoModel``'s ``last_hidden_state`` to float rounding (tests/model checks it on real text). Tokenisation
is the model's own ``tokenizer.json`` through the ``tokenizers`` library (what transformers uses too):
:func:`monitor.classify.encoder.load_tokenizer`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)  # query, key and value in one product
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.ff_in = nn.Linear(hidden, intermediate)
        self.ff_out = nn.Linear(intermediate, hidden)
        self.ff_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.attn_norm(x + self.attn_out(attended.transpose(1, 2).reshape(b, n, h)))
        out: torch.Tensor = self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))
        return out


class MiniLM(nn.Module):
    """BERT encoder: embeddings + N transformer layers (post-norm, exact GELU), no pooler."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(
                f"not a BERT model with GELU: {config.get('model_type')}/{config.get('hidden_act')}"
            )
        hidden, eps = int(config["hidden_size"]), float(config.get("layer_norm_eps", 1e-12))
        self.hidden_size = hidden
        self.word = nn.Embedding(int(config["vocab_size"]), hidden)
        self.position = nn.Embedding(int(config["max_position_embeddings"]), hidden)
        self.token_type = nn.Embedding(int(config.get("type_vocab_size", 2)), hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(hidden, int(config["num_attention_heads"]), int(config["intermediate_size"]), eps)
            for _ in range(int(config["num_hidden_layers"]))
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states (batch, tokens, hidden); padded positions are masked out of attention."""
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)
        x = self.word(input_ids) + self.position(positions)[None] + self.token_type.weight[0]
        x = self.norm(x)
        mask = attention_mask[:, None, None, :].bool()  # True: attend (padded keys are left out)
        for layer in self.layers:
            x = layer(x, mask)
        out: torch.Tensor = x
        return out

    @classmethod
    def from_dir(cls, model_dir: Path) -> MiniLM:
        """Build from ``config.json`` and ``model.safetensors`` in ``model_dir`` (BERT parameter names)."""
        from safetensors.torch import load_file

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        model = cls(config)
        weights = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""

        def w(name: str) -> torch.Tensor:
            return weights[prefix + name]

        state: dict[str, torch.Tensor] = {
            "word.weight": w("embeddings.word_embeddings.weight"),
            "position.weight": w("embeddings.position_embeddings.weight"),
            "token_type.weight": w("embeddings.token_type_embeddings.weight"),
            "norm.weight": w("embeddings.LayerNorm.weight"),
            "norm.bias": w("embeddings.LayerNorm.bias"),
        }
        for i in range(len(model.layers)):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            for part in ("weight", "bias"):
                state[f"layers.{i}.qkv.{part}"] = torch.cat(
                    [w(f"{a}self.{name}.{part}") for name in ("query", "key", "value")], dim=0
                )
                state[f"layers.{i}.attn_out.{part}"] = w(f"{a}output.dense.{part}")
                state[f"layers.{i}.attn_norm.{part}"] = w(f"{a}output.LayerNorm.{part}")
                state[f"layers.{i}.ff_in.{part}"] = w(f"{p}intermediate.dense.{part}")
                state[f"layers.{i}.ff_out.{part}"] = w(f"{p}output.dense.{part}")
                state[f"layers.{i}.ff_norm.{part}"] = w(f"{p}output.LayerNorm.{part}")
        model.load_state_dict(state, strict=True, assign=True)  # take the tensors, no second copy
        model.eval()
        model.requires_grad_(False)
        return model
