"""Settings of the toy studies (paper section 5, appendix C) and their validation.

Kept free of torch so that ``iga.cells.validate_config`` (run by Snakemake before any job) can
check every toy cell cheaply. The task itself lives in :mod:`iga.tasks.toy`.

Conventions (see config.yaml, ``tasks.toy``):

* ``task.experiment`` — ``exp1`` (2-layer ReLU on the circle, SGD, exact NTK vs eNTK vs IGA) or
  ``exp2`` (ReLU/SIREN coordinate MLP on [-1, 1], Adam, IGA group sizes).
* ``adjuster.end`` is 0-based and exclusive (iga.ntk.transformation_matrix). The paper's ``end`` is
  the number of balanced eigenvalues: with ``target: start`` (Exp. 1) it equals ``adjuster.end``;
  with ``target: end`` (Exp. 2, λ_end itself is one of the balanced values) it is ``adjuster.end + 1``
  (official code: ``--xuhao 3 --replace_end 3`` is the paper's end 4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal

from ..configs import AdjusterConfig, ConfigError, OptimConfig, TrainConfig, from_dict

EXPERIMENTS = ("exp1", "exp2")


@dataclass
class ToyTaskConfig:
    experiment: Literal["exp1", "exp2"] = "exp1"
    # exp1: θ = linspace(0, 2π, n) (official, endpoint included); exp2: x = linspace(-1, 1, n)
    n_points: int = 1024
    # components sin(2π·k·t) of the target; exp1 k ∈ {0.2, 0.4, 0.8, 1.6} (= sin(0.4πθ) … sin(3.2πθ))
    freqs: List[float] = field(default_factory=lambda: [0.2, 0.4, 0.8, 1.6])
    # consecutive points per IGA group; 1 = full eNTK (and the exact NTK)
    group_size: int = 1
    # Δ_k, MSE (and for exp1 the kernel distances) are evaluated every `eval_every` steps and at step 0
    eval_every: int = 100
    # keep the full residual vector at every evaluation (exp1: NTK-vs-eNTK trajectory distance)
    save_residuals: bool = False
    # exp1: at every evaluation, ‖K̃−K‖_F/‖K‖_F and ‖S̃−S‖_F/‖S‖_F of the trained net (eNTK/IGA cells)
    kernel_monitor: bool = False
    # exp1 with kernel_monitor: the same distances at initialisation averaged over this many extra
    # random networks of the cell's width (a low-noise width trend without training more cells)
    init_samples: int = 0


@dataclass
class TwoLayerConfig:
    """f(x) = s · Σ_r a_r relu(w_rᵀx + b_r): w ~ N(0, I), b = 0 (both trained), a = ±1 fixed.

    ``scale: "2m"`` — s = (2m)^-1/2, the official code (ReLU(z/√2)/√m) and exactly the kernel of
    iga.ntk.analytic_relu_ntk; ``"m"`` — s = m^-1/2, whose eNTK is twice that kernel (S unchanged).
    """
    architecture: Literal["TwoLayer"] = "TwoLayer"
    in_features: int = 2
    hidden_features: int = 1024
    scale: Literal["2m", "m"] = "2m"
    technique: Literal["none"] = "none"  # set by every method's defaults (iga.cells.METHOD_DEFAULTS)


def task_config(settings: dict) -> ToyTaskConfig:
    raw = dict(settings.get("task") or {})
    cfg = from_dict(ToyTaskConfig, raw, "task.")
    if not isinstance(cfg.freqs, list) or not cfg.freqs or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in cfg.freqs):
        raise ConfigError(f"task.freqs={cfg.freqs!r} must be a non-empty list of positive numbers")
    cfg.freqs = [float(f) for f in cfg.freqs]
    if cfg.init_samples < 0:
        raise ConfigError(f"task.init_samples={cfg.init_samples} must be >= 0")
    for key in ("n_points", "group_size", "eval_every"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"task.{key}={getattr(cfg, key)} must be >= 1")
    if cfg.n_points % cfg.group_size:
        raise ConfigError(f"task.group_size={cfg.group_size} must divide task.n_points={cfg.n_points}")
    return cfg


def validate(settings: dict):
    """TASK_VALIDATORS["toy"]: type-check one toy cell's resolved settings (raises ConfigError)."""
    unknown = set(settings) - {"model", "adjuster", "optim", "train", "task"}
    if unknown:
        raise ConfigError(f"unknown settings section(s) {sorted(unknown)}")
    task = task_config(settings)
    adj = from_dict(AdjusterConfig, settings.get("adjuster"), "adjuster.")
    from_dict(OptimConfig, settings.get("optim"), "optim.")
    from_dict(TrainConfig, settings.get("train"), "train.")
    if task.experiment == "exp1":
        model = from_dict(TwoLayerConfig, settings.get("model"), "model.")
        if model.in_features != 2:
            raise ConfigError(f"model.in_features={model.in_features}: exp1 lives on the circle (2 inputs)")
    else:
        from ..configs import ModelConfig
        model = from_dict(ModelConfig, settings.get("model"), "model.")
        if model.in_features != 1 or model.out_features != 1:
            raise ConfigError("exp2 regresses a 1D signal: model.in_features and model.out_features must be 1")
        if adj.kind == "ntk":
            raise ConfigError("adjuster.kind='ntk' needs the analytic kernel of the 2-layer net: exp1 only")
    if adj.kind in ("ntk", "entk") and task.group_size != 1:
        raise ConfigError(f"adjuster.kind={adj.kind!r} adjusts with the kernel of every point: "
                          f"task.group_size must be 1, not {task.group_size}")
    if adj.kind != "vanilla":
        groups = task.n_points // task.group_size
        limit = groups - 1 if adj.target == "end" else groups
        if adj.end > limit:
            raise ConfigError(f"adjuster.end={adj.end} does not fit {groups} groups "
                              f"(n_points={task.n_points}, group_size={task.group_size}); allowed: 1..{limit}")
    return settings


def balanced_eigenvalues(adj: dict) -> int:
    """The paper's ``end``: how many of the largest eigenvalues the adjustment makes equal."""
    end = int(adj.get("end", AdjusterConfig.end))
    start = int(adj.get("start", 0))
    return end - start + (1 if adj.get("target", AdjusterConfig.target) == "end" else 0)
