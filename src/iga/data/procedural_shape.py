"""Procedural watertight shapes: analytic SDF → marching-cubes mesh (the embedded occupancy data).

The smoke preset has no Stanford scan, so it makes one: a closed triangle mesh from the zero level
set of an analytic signed distance function, which then goes through the *same* voxelisation rule
as a downloaded scan. The shapes mix smooth parts with fine detail (ridges, thin handles) so that
the IoU separates methods the way the scans do.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np


def _sphere(p, r):
    return np.linalg.norm(p, axis=-1) - r


def _torus(p, R, r, axis=2):
    q = np.delete(p, axis, axis=-1)
    return np.sqrt((np.linalg.norm(q, axis=-1) - R) ** 2 + p[..., axis] ** 2) - r


def _smooth_union(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def sdf_bumpy(p: np.ndarray) -> np.ndarray:
    """A ridged blob with a handle and a thin fin: smooth + high-frequency parts."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    body = _sphere(p * np.array([1.0, 1.25, 1.0]), 0.55) / 1.25
    body = body - 0.045 * np.sin(9 * x) * np.sin(9 * y) * np.sin(9 * z)  # fine ridges
    handle = _torus(p - np.array([0.0, 0.0, 0.45]), 0.33, 0.07, axis=1)
    fin = np.maximum(np.abs(y) - 0.03, _sphere(p - np.array([-0.45, 0.0, -0.2]), 0.35))
    return _smooth_union(_smooth_union(body, handle, 0.06), fin, 0.04)


def sdf_sphere(p: np.ndarray) -> np.ndarray:
    return _sphere(p, 0.6)


SHAPES: Dict[str, Callable[[np.ndarray], np.ndarray]] = {"bumpy": sdf_bumpy, "sphere": sdf_sphere}


def sdf_grid(name: str, n: int, extent: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """(values [n, n, n], axis coordinates [n]) of SHAPES[name] on linspace(-extent, extent, n)³."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; allowed: {sorted(SHAPES)}")
    g = np.linspace(-extent, extent, n)
    p = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)
    return SHAPES[name](p), g


def make_mesh(name: str, sdf_resolution: int = 128) -> Tuple[np.ndarray, np.ndarray]:
    """Closed, consistently oriented mesh (vertices [V, 3], faces [F, 3]) of the shape's zero set."""
    from skimage.measure import marching_cubes
    vals, g = sdf_grid(name, sdf_resolution)
    if (vals[[0, -1], :, :] <= 0).any() or (vals[:, [0, -1], :] <= 0).any() or (vals[:, :, [0, -1]] <= 0).any():
        raise ValueError(f"shape {name!r} touches the sampling box: the mesh would not be closed")
    step = g[1] - g[0]
    # inside is negative: 'ascent' orients faces outward for an SDF
    verts, faces, _, _ = marching_cubes(vals, level=0.0, spacing=(step,) * 3, gradient_direction="ascent")
    return verts + g[0], faces.astype(np.int64)


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume of a closed mesh (divergence theorem; sign-free)."""
    v = vertices[faces]
    return float(abs(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum()) / 6.0)


def torus_mesh(n_major: int, n_minor: int, R: float = 0.7, r: float = 0.25) -> Tuple[np.ndarray, np.ndarray]:
    """Closed parametric torus around z with 2·n_major·n_minor outward-oriented triangles
    (volume 2π²·R·r² up to the polygonal approximation); scalable to tens of millions of faces."""
    u = np.linspace(0, 2 * np.pi, n_major, endpoint=False)
    v = np.linspace(0, 2 * np.pi, n_minor, endpoint=False)
    cu, su, cv, sv = np.cos(u)[:, None], np.sin(u)[:, None], np.cos(v)[None, :], np.sin(v)[None, :]
    verts = np.stack([((R + r * cv) * cu).ravel(), ((R + r * cv) * su).ravel(),
                      np.broadcast_to(r * sv, (n_major, n_minor)).ravel()], axis=1)
    i = np.arange(n_major, dtype=np.int64)[:, None]
    j = np.arange(n_minor, dtype=np.int64)[None, :]
    a = i * n_minor + j
    b = ((i + 1) % n_major) * n_minor + j
    c = ((i + 1) % n_major) * n_minor + (j + 1) % n_minor
    d = i * n_minor + (j + 1) % n_minor
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts, faces
