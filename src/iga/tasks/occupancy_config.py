"""Occupancy-task settings, importable without torch (config validation runs before any job)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..configs import ConfigError

CROPS = ("official", "inclusive", "none")
LR_DECAYS = ("per_epoch", "per_step")
COORDINATE_ORDERS = ("ij", "xy")


@dataclass
class OccupancyTaskConfig:
    resolution: int = 512            # grid the volume was made at (checked against the volume file)
    group_size: int = 256            # voxels per IGA group (consecutive in C order)
    groups_per_step: int = 512       # groups per optimiser step (BN: 100000 groups of 2 = 200k points)
    epochs: int = 200
    lr_decay: str = "per_epoch"      # per_epoch (official) | per_step
    shuffle_groups: bool = True      # a fresh random group order every epoch (official --random_index)
    leftover_step: bool = True       # one vanilla step on the voxels that fill no whole group
    crop: str = "official"           # official (upper bound exclusive) | inclusive | none
    coordinate_order: str = "ij"     # ij: (axis0, axis1, axis2); xy: (axis1, axis0, axis2) as np.meshgrid
    iou_threshold: float = 0.5
    eval_every_epochs: int = 1
    checkpoint_every_epochs: int = 10
    eval_chunk: int = 262144         # points per forward pass when evaluating the whole grid
    mesh_resolution: int = 256       # longest side of the grid the saved mesh is extracted from


def task_config(raw: dict) -> OccupancyTaskConfig:
    """Validated task settings; unknown keys and bad values raise ConfigError naming them."""
    names = {f.name for f in fields(OccupancyTaskConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {['task.' + k for k in unknown]}; allowed: {sorted(names)}")
    cfg = OccupancyTaskConfig(**raw)
    for name, allowed in (("lr_decay", LR_DECAYS), ("crop", CROPS), ("coordinate_order", COORDINATE_ORDERS)):
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"task.{name}={getattr(cfg, name)!r} is not allowed; choose one of {list(allowed)}")
    for name in ("resolution", "group_size", "groups_per_step", "epochs", "eval_every_epochs",
                 "checkpoint_every_epochs", "eval_chunk", "mesh_resolution"):
        v = getattr(cfg, name)
        if not (isinstance(v, int) and not isinstance(v, bool)) or v < 1:
            raise ConfigError(f"task.{name}={v!r} must be an integer >= 1")
    for name in ("shuffle_groups", "leftover_step"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"task.{name}={getattr(cfg, name)!r} must be true or false")
    if not isinstance(cfg.iou_threshold, (int, float)) or isinstance(cfg.iou_threshold, bool):
        raise ConfigError(f"task.iou_threshold={cfg.iou_threshold!r} must be a number in (0, 1)")
    if cfg.resolution < 2:
        raise ConfigError(f"task.resolution={cfg.resolution} must be >= 2")
    if not 0.0 < float(cfg.iou_threshold) < 1.0:
        raise ConfigError(f"task.iou_threshold={cfg.iou_threshold} must lie in (0, 1)")
    return cfg
