"""Typed configs for models, gradient adjusters, optimisation and training.

Every task builds these from a plain dict (the cell's resolved settings from
config.yaml) with :func:`from_dict`, which rejects unknown keys and bad values
with a message that names the key and what is allowed.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

ARCHITECTURES = ("ReLU", "PE", "SIREN")
METHODS = ("vanilla", "FR", "BN", "IGA")
SAMPLINGS = ("slr", "rsi", "ri", "centre")
TARGETS = ("start", "end")
VARIANTS = ("official", "paper")
BN_PLACEMENTS = ("linear_act_bn", "linear_bn_act", "sine_bn")


class ConfigError(ValueError):
    """A setting that cannot work; the message names the value and what is allowed."""


@dataclass
class FRConfig:
    """Fourier reparameterisation W = Λ·B of hidden layers (Shi et al. 2024)."""
    low_freqs: int = 128
    high_freqs: int = 128
    phases: int = 32
    alpha: float = 1e-3


@dataclass
class ModelConfig:
    architecture: Literal["ReLU", "PE", "SIREN"] = "ReLU"
    in_features: int = 2
    out_features: int = 3
    hidden_features: int = 256
    # hidden→hidden layers; the official code's 2 gives 4 linear layers in total
    hidden_layers: int = 2
    first_omega0: float = 30.0
    hidden_omega0: float = 30.0
    pe_frequencies: int = 6
    pe_include_input: bool = True
    # "none" | "fr" | "bn": the training technique that changes the network
    technique: Literal["none", "fr", "bn"] = "none"
    fr: FRConfig = field(default_factory=FRConfig)
    bn_placement: Optional[Literal["linear_act_bn", "linear_bn_act", "sine_bn"]] = None


@dataclass
class AdjusterConfig:
    """How gradients are adjusted. kind="vanilla" ignores everything else."""
    kind: Literal["vanilla", "iga", "entk", "ntk"] = "vanilla"
    end: int = 20
    start: int = 0
    # "end": Adam, pull the top `end` eigenvalues down to λ_end; "start": SGD, lift them to λ_start
    target: Literal["start", "end"] = "end"
    # "official": directions outside [start, end) weigh 1; "paper": weigh λ_i (eq. 5 as printed)
    variant: Literal["official", "paper"] = "official"
    sampling: Literal["slr", "rsi", "ri", "centre"] = "slr"
    # the official image code's indexing: every group's sample is the sum over all groups' argmax positions
    official_indexing_quirk: bool = False
    # eigenpairs of the eNTK: "eigh" all of them (dense), "topk" only the top end+1 (warm-started block
    # Lanczos, falls back to eigh per step if it does not converge), "auto": topk from
    # iga.ntk.AUTO_TOPK_MIN_GROUPS groups on. S agrees with eigh's within ~1e-5 (relative, S − I).
    solver: Literal["eigh", "topk", "auto"] = "auto"


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    schedule: Literal["constant", "step", "exponential"] = "constant"
    # step: lr × gamma once at each multiple of step_size (official image code: once at 3000)
    step_size: int = 3000
    gamma: float = 0.1
    max_steps_of_schedule: Optional[int] = None  # official: the scheduler stops after 3100 steps
    # exponential: lr(t) = lr · final_factor^(t / total)
    final_factor: float = 0.1


@dataclass
class TrainConfig:
    iterations: int = 1000
    seed: int = 4096
    checkpoint_every: int = 500
    log_every: int = 1
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    progress: bool = True


def _check_literal(name: str, value: Any, tp: Any) -> None:
    allowed = get_args(tp)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return get_type_hints(cls)  # slow (evaluates annotations); validate_config calls it per cell


def from_dict(cls, data: Optional[dict], prefix: str = ""):
    """Build dataclass ``cls`` from ``data``, validating keys and Literal values."""
    data = dict(data or {})
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {[prefix + k for k in unknown]} for {cls.__name__}; "
                          f"allowed: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, key + ".")
            continue
        origin = get_origin(tp)
        if origin is Literal:
            _check_literal(key, value, tp)
        elif origin is not None and type(None) in get_args(tp):  # Optional[...]
            inner = [a for a in get_args(tp) if a is not type(None)][0]
            if value is not None and get_origin(inner) is Literal:
                _check_literal(key, value, inner)
        elif tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        elif tp is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{key}={value!r} must be an integer")
        kwargs[name] = value
    obj = cls(**kwargs)
    _validate(obj, prefix)
    return obj


def _validate(obj, prefix: str) -> None:
    if isinstance(obj, OptimConfig) and obj.lr <= 0:
        raise ConfigError(f"{prefix}lr={obj.lr} must be > 0")
    if isinstance(obj, AdjusterConfig):
        if obj.end < 1:
            raise ConfigError(f"{prefix}end={obj.end} must be >= 1")
        if not 0 <= obj.start < obj.end:
            raise ConfigError(f"{prefix}start={obj.start} must satisfy 0 <= start < end={obj.end}")
    if isinstance(obj, TrainConfig) and obj.iterations < 1:
        raise ConfigError(f"{prefix}iterations={obj.iterations} must be >= 1")
    if isinstance(obj, ModelConfig):
        if obj.architecture not in ARCHITECTURES:
            raise ConfigError(f"{prefix}architecture={obj.architecture!r}; allowed {list(ARCHITECTURES)}")
        if obj.technique == "bn" and obj.bn_placement is None:
            obj.bn_placement = "sine_bn" if obj.architecture == "SIREN" else (
                "linear_bn_act" if obj.architecture == "PE" else "linear_act_bn")
        if obj.technique == "bn" and (obj.bn_placement == "sine_bn") != (obj.architecture == "SIREN"):
            raise ConfigError(f"{prefix}bn_placement={obj.bn_placement!r} does not fit architecture "
                              f"{obj.architecture}; SIREN uses 'sine_bn', ReLU/PE use "
                              "'linear_act_bn' or 'linear_bn_act'")


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)
