"""Image-task settings, importable without torch (config validation runs before any job)."""
from __future__ import annotations

from dataclasses import dataclass

from ..configs import ConfigError


@dataclass
class ImageTaskConfig:
    patch_size: int = 32
    downsample: int = 1  # integer factor, anti-aliased (mini preset: 4)


def task_config(raw: dict) -> ImageTaskConfig:
    """Validated image-task settings; unknown keys or bad values raise ConfigError naming them."""
    allowed = set(ImageTaskConfig.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted('task.' + k for k in unknown)}; allowed: {sorted(allowed)}")
    cfg = ImageTaskConfig(**raw)
    for name in ("patch_size", "downsample"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"task.{name}={v!r} must be an integer >= 1")
    return cfg
