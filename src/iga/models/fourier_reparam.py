"""Fourier reparameterised linear layer (FR, Shi et al. 2024): W = Λ·B.

B holds fixed cosine bases α·cos(f·x + φ) sampled at ``in_features`` points of
[-T/2, T/2], T = 2π / lowest frequency; only Λ and the bias are trained.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..configs import FRConfig


def fourier_bases(in_features: int, cfg: FRConfig) -> torch.Tensor:
    phases = torch.arange(cfg.phases, dtype=torch.float64) * (2 * math.pi / cfg.phases)
    low = torch.arange(1, cfg.low_freqs + 1, dtype=torch.float64) / max(cfg.low_freqs, 1)
    high = torch.arange(1, cfg.high_freqs + 1, dtype=torch.float64)
    freqs = torch.cat((low[: cfg.low_freqs], high))
    if freqs.numel() == 0:
        raise ValueError("FR needs at least one frequency (low_freqs + high_freqs > 0)")
    period = 2 * math.pi / float(freqs.min())
    points = torch.linspace(-period / 2, period / 2, in_features, dtype=torch.float64)
    # rows ordered frequency-major, phase-minor, as in the reference implementation
    angles = freqs[:, None, None] * points[None, None, :] + phases[None, :, None]
    return (cfg.alpha * torch.cos(angles)).reshape(-1, in_features).to(torch.get_default_dtype())


class FourierLinear(nn.Module):
    """Drop-in replacement for ``nn.Linear`` whose weight is Λ·B."""

    def __init__(self, in_features: int, out_features: int, cfg: FRConfig, omega0: float = 1.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bases = fourier_bases(in_features, cfg)
        self.register_buffer("bases", bases)
        m = bases.shape[0]
        bound = math.sqrt(6.0 / m) / bases.norm(dim=1) / omega0  # per basis row
        lamb = (torch.rand(out_features, m) * 2 - 1) * bound[None, :]
        self.lamb = nn.Parameter(lamb)
        self.bias = nn.Parameter(torch.zeros(out_features))

    @property
    def weight(self) -> torch.Tensor:
        return self.lamb @ self.bases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def merge(self) -> nn.Linear:
        """Fold Λ·B into a plain ``nn.Linear`` for inference (same outputs)."""
        lin = nn.Linear(self.in_features, self.out_features)
        with torch.no_grad():
            lin.weight.copy_(self.weight)
            lin.bias.copy_(self.bias)
        return lin.to(self.lamb.device, self.lamb.dtype)
