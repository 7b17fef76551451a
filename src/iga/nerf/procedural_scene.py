"""A small Blender-format scene of an analytic volume, generated deterministically with numpy.

The volume is a few coloured primitives (spheres and a box) with patterned colours, given as a
density field σ(x) = σ_max·sigmoid(−sdf(x)/ε) and a density-weighted colour. Views are rendered by
numerical volume rendering (uniform mid-point quadrature between near = 2 and far = 6, the Blender
bounds) from cameras on a sphere of radius 4 looking at the origin, with pixel-centre rays. The
PNGs are straight (non-premultiplied) RGBA: compositing ``rgb·a + (1 − a)`` gives the render over a
white background, as nerf-pytorch and nerfstudio do with Blender data.

Layout (as the NeRF synthetic scenes): ``transforms_{train,val,test}.json`` with ``camera_angle_x``
and frames ``{"file_path": "./train/r_0", "rotation": 0.0, "transform_matrix": c2w}`` (OpenGL
camera: looks along −z, y up; world z up), images ``train/r_0.png`` …
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

NEAR, FAR = 2.0, 6.0
BOUND = 1.6  # every primitive lies inside this sphere; density outside it is taken as 0
BLENDER_CAMERA_ANGLE_X = 0.6911112070083618  # the NeRF synthetic scenes' field of view


@dataclass(frozen=True)
class SceneSpec:
    size: int = 64
    n_train: int = 24
    n_val: int = 4
    n_test: int = 4
    radius: float = 4.0
    camera_angle_x: float = BLENDER_CAMERA_ANGLE_X
    samples_per_ray: int = 256
    supersample: int = 2  # s×s pixel-centre rays averaged per pixel (premultiplied), for clean edges
    sigma_max: float = 150.0
    edge: float = 0.02  # ε of the soft occupancy (about one sample spacing: no aliasing along rays)


# ----------------------------------------------------------------------------- the volume
_SPHERES = (  # centre, radius, base colour, stripe colour, stripe frequency (rad per unit of z)
    ((0.45, 0.0, 0.35), 0.45, (0.85, 0.15, 0.10), (0.95, 0.85, 0.20), 18.0),
    ((-0.25, -0.55, 0.05), 0.30, (0.10, 0.25, 0.85), (0.90, 0.90, 0.95), 30.0),
)
_BOX = ((-0.35, 0.35, -0.25), (0.32, 0.32, 0.32), (0.10, 0.65, 0.20), (0.05, 0.15, 0.05), 6.0)
_FLOOR = ((0.0, 0.0, -0.62), (0.95, 0.95, 0.03), (0.75, 0.75, 0.72), (0.25, 0.25, 0.30), 9.0)


def _sphere_sdf(p: np.ndarray, c, r) -> np.ndarray:
    return np.linalg.norm(p - np.asarray(c), axis=-1) - r


def _box_sdf(p: np.ndarray, c, h) -> np.ndarray:
    q = np.abs(p - np.asarray(c)) - np.asarray(h)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(np.max(q, axis=-1), 0.0)
    return outside + inside


def _checker(p: np.ndarray, freq: float) -> np.ndarray:
    s = np.sin(freq * p[..., 0]) * np.sin(freq * p[..., 1]) * np.sin(freq * p[..., 2] + 0.5)
    return (s > 0).astype(p.dtype)


def density_and_colour(p: np.ndarray, spec: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
    """σ [...] and RGB [..., 3] of the analytic volume at points p [..., 3]."""
    sig = lambda sdf: spec.sigma_max / (1.0 + np.exp(np.clip(sdf / spec.edge, -30, 30)))
    total = np.zeros(p.shape[:-1], dtype=p.dtype)
    rgb = np.zeros(p.shape[:-1] + (3,), dtype=p.dtype)
    for c, r, base, stripe, freq in _SPHERES:
        s = sig(_sphere_sdf(p, c, r))
        t = (0.5 + 0.5 * np.sin(freq * p[..., 2]))[..., None]
        rgb += s[..., None] * ((1 - t) * np.asarray(base) + t * np.asarray(stripe))
        total += s
    for c, h, base, alt, freq in (_BOX, _FLOOR):
        s = sig(_box_sdf(p, c, h))
        t = _checker(p, freq)[..., None]
        rgb += s[..., None] * ((1 - t) * np.asarray(base) + t * np.asarray(alt))
        total += s
    rgb = rgb / np.maximum(total, 1e-12)[..., None]
    return total, rgb


# ----------------------------------------------------------------------------- cameras
def look_at(position: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world 4×4 (OpenGL: the camera looks along its −z axis, y up)."""
    position = np.asarray(position, dtype=np.float64)
    z = position - np.asarray(target, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, dtype=np.float64), z)
    if np.linalg.norm(x) < 1e-8:  # looking straight down: any horizontal x
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, position
    return c2w


def camera_poses(n: int, radius: float, split: str) -> list[np.ndarray]:
    """Deterministic views: a golden-angle spiral over the upper hemisphere for ``train``; evenly
    spaced azimuths at two elevations, offset from the training ones, for ``val``/``test``."""
    poses = []
    for i in range(n):
        if split == "train":
            elev = math.radians(8.0 + 62.0 * (i + 0.5) / n)
            azim = i * math.pi * (3.0 - math.sqrt(5.0))
        else:
            off = 0.25 if split == "val" else 0.75
            azim = 2 * math.pi * (i + off) / n + 0.3
            elev = math.radians(25.0 if i % 2 == 0 else 45.0)
        pos = radius * np.array([math.cos(elev) * math.cos(azim), math.cos(elev) * math.sin(azim), math.sin(elev)])
        poses.append(look_at(pos))
    return poses


def pixel_rays(c2w: np.ndarray, size: int, camera_angle_x: float, supersample: int = 1):
    """Origins and unit directions [size·size·s², 3] through sub-pixel centres (row-major)."""
    focal = 0.5 * size / math.tan(0.5 * camera_angle_x)
    s = supersample
    offs = (np.arange(s) + 0.5) / s
    u = (np.arange(size)[:, None] + offs[None, :]).reshape(-1)  # column coordinate
    v = u.copy()  # row coordinate
    vv, uu = np.meshgrid(v, u, indexing="ij")  # [size·s, size·s]
    dirs = np.stack([(uu - 0.5 * size) / focal, -(vv - 0.5 * size) / focal, -np.ones_like(uu)], axis=-1)
    dirs = dirs @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = np.broadcast_to(c2w[:3, 3], dirs.shape)
    return origins.reshape(-1, 3), dirs.reshape(-1, 3)


def render_view(c2w: np.ndarray, spec: SceneSpec, chunk: int = 2048) -> np.ndarray:
    """Straight RGBA float image [size, size, 4] in [0, 1]."""
    size, s = spec.size, spec.supersample
    origins, dirs = pixel_rays(c2w, size, spec.camera_angle_x, s)
    n_s = spec.samples_per_ray
    edges = np.linspace(NEAR, FAR, n_s + 1)
    t = 0.5 * (edges[1:] + edges[:-1])
    delta = np.diff(edges)
    premult = np.zeros((origins.shape[0], 3))
    acc = np.zeros(origins.shape[0])
    for a in range(0, origins.shape[0], chunk):
        o, d = origins[a : a + chunk], dirs[a : a + chunk]
        pts = (o[:, None, :] + d[:, None, :] * t[None, :, None]).astype(np.float32)
        inside = (pts**2).sum(-1) < BOUND**2
        sigma = np.zeros(pts.shape[:2])
        rgb = np.zeros(pts.shape[:2] + (3,))
        sigma[inside], rgb[inside] = density_and_colour(pts[inside], spec)
        alpha = 1.0 - np.exp(-sigma * delta[None, :])
        trans = np.cumprod(np.concatenate([np.ones((alpha.shape[0], 1)), 1.0 - alpha[:, :-1]], axis=1), axis=1)
        w = alpha * trans
        premult[a : a + chunk] = (w[..., None] * rgb).sum(axis=1)
        acc[a : a + chunk] = w.sum(axis=1)
    # average the s×s sub-pixels (premultiplied), then un-premultiply
    premult = premult.reshape(size, s, size, s, 3).mean(axis=(1, 3))
    acc = acc.reshape(size, s, size, s).mean(axis=(1, 3))
    straight = np.where(acc[..., None] > 1e-8, premult / np.maximum(acc[..., None], 1e-8), 0.0)
    return np.clip(np.concatenate([straight, acc[..., None]], axis=-1), 0.0, 1.0)


def to_rgba8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def generate_scene(out: Path, spec: SceneSpec = SceneSpec()) -> dict:
    """Write the scene to ``out``; returns a summary with the SHA-256 of every file written."""
    from PIL import Image  # Pillow is a project dependency; generation itself is numpy only

    if spec.size < 4 or spec.n_train < 1 or spec.n_val < 1 or spec.n_test < 1:
        raise ValueError(f"size >= 4 and at least one view per split are required, got {spec}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for split, n in (("train", spec.n_train), ("val", spec.n_val), ("test", spec.n_test)):
        (out / split).mkdir(exist_ok=True)
        frames = []
        for i, c2w in enumerate(camera_poses(n, spec.radius, split)):
            rel = f"{split}/r_{i}.png"
            Image.fromarray(to_rgba8(render_view(c2w, spec)), mode="RGBA").save(out / rel)
            hashes[rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
            frames.append(
                {
                    "file_path": f"./{split}/r_{i}",
                    "rotation": 0.0,
                    "transform_matrix": [[float(v) for v in row] for row in c2w],
                }
            )
        meta = {"camera_angle_x": spec.camera_angle_x, "frames": frames}
        name = f"transforms_{split}.json"
        (out / name).write_text(json.dumps(meta, indent=2) + "\n")
        hashes[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    summary = {"spec": asdict(spec), "near": NEAR, "far": FAR, "files": hashes}
    (out / "scene.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
