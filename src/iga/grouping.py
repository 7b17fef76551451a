"""Partitions of a signal's points into IGA groups, as index tensors [n_groups, group_size].

Tasks own grouping (the adjuster only sees grouped tensors); these helpers build the
index maps for the layouts the paper uses.
"""

from __future__ import annotations

import torch

from .configs import ConfigError


def interval_groups(n: int, group_size: int) -> torch.Tensor:
    """Contiguous 1D intervals of ``group_size`` consecutive points (toy studies)."""
    if group_size < 1 or n % group_size:
        raise ConfigError(f"group_size={group_size} must divide the number of points n={n}; allowed: divisors of {n}")
    return torch.arange(n).reshape(n // group_size, group_size)


def patch_groups(height: int, width: int, patch_h: int, patch_w: int | None = None) -> torch.Tensor:
    """Non-overlapping patches of a row-major H×W grid, patches in row-major order (images)."""
    patch_w = patch_h if patch_w is None else patch_w
    if patch_h < 1 or patch_w < 1 or height % patch_h or width % patch_w:
        raise ConfigError(f"patch size {patch_h}x{patch_w} must divide the image size {height}x{width}")
    idx = torch.arange(height * width).reshape(height, width)
    idx = idx.reshape(height // patch_h, patch_h, width // patch_w, patch_w).permute(0, 2, 1, 3)
    return idx.reshape(-1, patch_h * patch_w)


def chunk_groups(n: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Consecutive chunks of a flattened grid (occupancy): (full groups [G, p], leftover indices)."""
    if group_size < 1:
        raise ConfigError(f"group_size={group_size} must be >= 1")
    full = (n // group_size) * group_size
    return torch.arange(full).reshape(-1, group_size), torch.arange(full, n)
