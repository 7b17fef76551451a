"""NeRF-style positional encoding γ(x) = (x, sin(2^i π x), cos(2^i π x), …)."""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Order as in the official code: for each frequency i, for each input dim j: sin, cos."""

    def __init__(self, in_features: int, num_frequencies: int, include_input: bool = True):
        super().__init__()
        self.in_features = in_features
        self.num_frequencies = num_frequencies
        self.include_input = include_input
        self.register_buffer(
            "scales", torch.tensor([(2.0**i) * math.pi for i in range(num_frequencies)]), persistent=False
        )

    @property
    def out_dim(self) -> int:
        return self.in_features * (2 * self.num_frequencies + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [..., F, D] -> interleave sin/cos per (frequency, dim)
        angles = x.unsqueeze(-2) * self.scales.to(x.dtype).unsqueeze(-1)
        enc = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1).flatten(-3)
        return torch.cat((x, enc), dim=-1) if self.include_input else enc
