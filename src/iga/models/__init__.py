"""Model zoo: coordinate MLPs and their building blocks."""

from .encodings import PositionalEncoding
from .fourier_reparam import FourierLinear, fourier_bases
from .mlp import CoordinateMLP, Sine, build_model

__all__ = ["PositionalEncoding", "FourierLinear", "fourier_bases", "CoordinateMLP", "Sine", "build_model"]
