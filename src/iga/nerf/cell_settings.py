"""A NeRF cell's resolved settings (config.yaml → iga.cells) → :class:`NeRFRunSettings`.

Settings shape: ``{"run": {NeRFRunSettings fields}, "adjuster": {"end": …}, "model": {"technique": …},
"set": {"pipeline.model.fr.alpha": 0.01, …}}``; the method comes from the cell (vanilla / FR / IGA).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Optional

from ..configs import ConfigError

# fields a cell may set under "run" (paths, cell id and the method come from the workflow)
_RUN_KEYS = {"iterations", "lr_schedule", "device", "downscale", "testskip", "num_rays", "coarse_samples",
             "fine_samples", "net_width", "net_depth", "seed", "checkpoint_every", "eval_chunk"}


def method_of(settings: dict) -> str:
    kind = settings.get("adjuster", {}).get("kind", "vanilla")
    technique = settings.get("model", {}).get("technique", "none")
    if technique == "bn":
        raise ConfigError("NeRF+BN is not implemented (no public code; the paper quotes Cai et al.'s "
                          "numbers): remove 'BN' from tasks.nerf.methods")
    if kind == "iga":
        return "iga-nerf"
    if kind != "vanilla":
        raise ConfigError(f"NeRF supports methods vanilla, FR, IGA; got adjuster kind {kind!r}")
    return "nerf-fr" if technique == "fr" else "nerf"


def validate(settings: dict) -> None:
    """Raise ConfigError naming any unknown or invalid key (used before any job starts)."""
    unknown = set(settings.get("run", {})) - _RUN_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted('run.' + k for k in unknown)}; allowed: {sorted(_RUN_KEYS)}")
    extra_top = set(settings) - {"run", "adjuster", "model", "set", "optim", "train", "task"}
    if extra_top:
        raise ConfigError(f"unknown key(s) {sorted(extra_top)} in NeRF settings; allowed: run, adjuster, set")
    method_of(settings)
    run = settings.get("run", {})
    end = settings.get("adjuster", {}).get("end", 25)
    if method_of(settings) == "iga-nerf" and not 1 <= end < run.get("num_rays", 1024):
        raise ConfigError(f"adjuster.end={end} must satisfy 1 <= end < run.num_rays={run.get('num_rays', 1024)}")
    if run.get("lr_schedule", "official") not in ("official", "nerf-pytorch"):
        raise ConfigError(f"run.lr_schedule={run['lr_schedule']!r}; allowed: 'official', 'nerf-pytorch'")


def to_run_settings(settings: dict, data: str, out: str, cell: str, lpips_status: Optional[str]):
    from .run import NeRFRunSettings
    validate(settings)
    run = dict(settings.get("run", {}))
    extra = dict(settings.get("set", {}))
    solver = settings.get("adjuster", {}).get("solver")
    if solver is not None and method_of(settings) == "iga-nerf":
        extra.setdefault("pipeline.model.iga_solver", solver)
    known = {f.name for f in fields(NeRFRunSettings)}
    assert _RUN_KEYS <= known, "NeRFRunSettings lost a field the config may set"
    return NeRFRunSettings(method=method_of(settings), data=data, out=out, cell=cell,
                           end=settings.get("adjuster", {}).get("end", 25), lpips_status_file=lpips_status,
                           extra=extra, **run)
