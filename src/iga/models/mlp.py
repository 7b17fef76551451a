"""Coordinate MLPs: ReLU, PE (positional encoding + ReLU) and SIREN, with FR or BN variants.

Layer layout and initialisation follow the official IGA image code: a first
layer, ``hidden_layers`` hidden→hidden layers and a linear output layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..configs import ModelConfig
from .encodings import PositionalEncoding
from .fourier_reparam import FourierLinear


class Sine(nn.Module):
    def __init__(self, omega0: float):
        super().__init__()
        self.omega0 = omega0

    def forward(self, x):
        return torch.sin(self.omega0 * x)

    def extra_repr(self) -> str:
        return f"omega0={self.omega0}"


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def _siren_init(linear: nn.Linear, is_first: bool, omega0: float) -> None:
    fan_in = linear.in_features
    bound = 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / omega0
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)


class CoordinateMLP(nn.Module):
    """``forward(x[..., in]) -> [..., out]``; ``encoding`` is applied first when present."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoding = None
        in_dim = cfg.in_features
        if cfg.architecture == "PE":
            self.encoding = PositionalEncoding(cfg.in_features, cfg.pe_frequencies, cfg.pe_include_input)
            in_dim = self.encoding.out_dim
        layers: list[nn.Module] = []
        widths = [in_dim] + [cfg.hidden_features] * (cfg.hidden_layers + 1)
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers += self._block(a, b, is_first=(i == 0))
        final = nn.Linear(cfg.hidden_features, cfg.out_features)
        bound = math.sqrt(6.0 / cfg.hidden_features)
        if cfg.architecture == "SIREN":
            bound /= cfg.hidden_omega0
        with torch.no_grad():
            final.weight.uniform_(-bound, bound)
        layers.append(final)
        self.net = nn.Sequential(*layers)

    def _block(self, fan_in: int, fan_out: int, is_first: bool) -> list[nn.Module]:
        cfg = self.cfg
        siren = cfg.architecture == "SIREN"
        omega = cfg.first_omega0 if is_first else cfg.hidden_omega0
        if cfg.technique == "fr" and not is_first:  # FR reparameterises hidden layers only
            lin: nn.Module = FourierLinear(fan_in, fan_out, cfg.fr, omega0=omega if siren else 1.0)
        else:
            lin = nn.Linear(fan_in, fan_out)
            if siren:
                _siren_init(lin, is_first, omega)
        if siren:
            if cfg.technique == "bn":
                return [lin, Scale(omega), nn.BatchNorm1d(fan_out), Sine(1.0)]
            return [lin, Sine(omega)]
        if cfg.technique == "bn":
            if cfg.bn_placement == "linear_bn_act":
                return [lin, nn.BatchNorm1d(fan_out), nn.ReLU()]
            return [lin, nn.ReLU(), nn.BatchNorm1d(fan_out)]
        return [lin, nn.ReLU()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding is not None:
            x = self.encoding(x)
        if self.cfg.technique == "bn" and x.dim() != 2:  # BatchNorm1d wants [N, C]
            shape = x.shape[:-1]
            return self.net(x.reshape(-1, x.shape[-1])).reshape(*shape, -1)
        return self.net(x)

    def merged(self) -> CoordinateMLP:
        """A copy with every FR layer folded into a plain ``nn.Linear`` (identical outputs)."""
        import copy

        clone = copy.deepcopy(self)
        for i, m in enumerate(clone.net):
            if isinstance(m, FourierLinear):
                clone.net[i] = m.merge()
        return clone


def build_model(cfg: ModelConfig) -> CoordinateMLP:
    return CoordinateMLP(cfg)
