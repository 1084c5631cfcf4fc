"""Int8 linear layers with per-token activation scales (imports torch: load only when used).

``torch.ao.quantization.quantize_dynamic`` scales activations per tensor: one outlier token, or the
padding of a batch, coarsens every other token, and on MiniLM it moved sentence vectors to a cosine of
0.93-0.95 from fp32 (and made a text's vector depend on its batch). Here weights are quantised per output
channel and activations per token (row), and the product is an exact int32 ``torch._int_mm``: cosine
0.997 to fp32, about 1.6x the fp32 speed on AVX-512 VNNI CPUs.
"""

from __future__ import annotations

from typing import Any

import torch


class Int8Linear(torch.nn.Module):
    """A frozen ``nn.Linear`` with int8 weights (per output channel) and int8 activations (per row)."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
        self.weight_q: torch.Tensor
        self.weight_scale: torch.Tensor
        self.bias: torch.Tensor
        self.register_buffer("weight_q", torch.round(weight / scale).to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale.squeeze(1))
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(weight.shape[0])
        self.register_buffer("bias", bias.clone())
        self.out_features = int(weight.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
        rows_q = torch.round(rows / scale).to(torch.int8)
        out = torch._int_mm(rows_q, self.weight_q).float() * scale * self.weight_scale + self.bias
        return out.reshape(*shape[:-1], self.out_features)


def quantize_linears(module: Any) -> Any:
    """Replace every ``nn.Linear`` inside ``module`` with :class:`Int8Linear` (in place); returns it."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            quantize_linears(child)
    return module
