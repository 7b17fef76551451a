"""Paper Figure 5: renderings of the best-state occupancy of each method, with an enlarged region.

Renderer: orthographic ray casting of the voxel grid along one axis (the first occupied voxel of
each column gives a depth map), Lambert shading from the depth map's normals, white background.
It needs nothing beyond numpy and shows exactly the voxels the IoU scores (no mesh smoothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..metrics import iou
from .labels import METHOD_ORDER

LIGHT = np.array([-0.45, -0.55, 0.70])


def _label(arch: str, method: str) -> str:
    return arch if method == "vanilla" else f"{arch}+{method}"


def view_axis_of(shape: Sequence[int], view_axis="auto") -> int:
    v = "auto" if view_axis is None else str(view_axis)
    if v == "auto":
        return int(np.argmin(shape))  # look along the thinnest axis: the largest silhouette
    if v in ("x", "y", "z", "0", "1", "2"):
        return "xyz".index(v) if v in "xyz" else int(v)
    raise ValueError(f"view axis {view_axis!r} is not allowed; choose auto, x, y, z, 0, 1 or 2")


def render(volume: np.ndarray, axis: int) -> np.ndarray:
    """Shaded RGB [rows, cols, 3] in [0, 1] of ``volume`` seen along ``axis`` (from index 0);
    rows / cols are the remaining axes in increasing order."""
    vol = np.moveaxis(np.asarray(volume, dtype=bool), axis, -1)
    hit = vol.any(axis=-1)
    depth = np.where(hit, vol.argmax(axis=-1), vol.shape[-1]).astype(np.float64)
    # normals from the depth map (units: voxels); fill background with the nearest surface depth
    filled = np.where(hit, depth, depth[hit].max() if hit.any() else 0.0)
    gy, gx = np.gradient(filled)
    gx, gy = np.clip(gx, -4, 4), np.clip(gy, -4, 4)
    n = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    lam = np.clip(n @ (LIGHT / np.linalg.norm(LIGHT)), 0, 1)
    span = max(filled.max() - filled.min(), 1.0)
    cue = 1.0 - 0.35 * (filled - filled.min()) / span
    shade = (0.22 + 0.78 * lam) * cue
    base = np.array([0.62, 0.70, 0.86])
    img = shade[..., None] * base[None, None, :]
    img[~hit] = 1.0
    return np.clip(img, 0, 1)


def present(img: np.ndarray, pad_frac: float = 0.04) -> np.ndarray:
    """A rendering as shown: the longer side vertical (tall shapes stand upright, higher index up) and a
    white margin, so a shape cropped to its bounding box does not run into the panel's frame."""
    if img.shape[1] > img.shape[0]:
        img = img.transpose(1, 0, 2)
    img = img[::-1]
    p = max(2, int(round(pad_frac * max(img.shape[:2]))))
    return np.pad(img, ((p, p), (p, p), (0, 0)), constant_values=1.0)


def detail_box(gt_img: np.ndarray, imgs: Sequence[np.ndarray], frac: float = 0.3) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the window where the methods disagree most with the ground
    truth (plus the ground truth's own detail): the region the paper's red boxes enlarge."""
    h, w = gt_img.shape[:2]
    ch, cw = max(4, int(h * frac)), max(4, int(w * frac))
    score = sum(np.abs(i - gt_img).sum(-1) for i in imgs) if len(imgs) else np.zeros((h, w))
    g = gt_img.mean(-1)
    score = score + 0.1 * (np.abs(np.gradient(g)[0]) + np.abs(np.gradient(g)[1]))
    # only where the shape is: a box over background would enlarge nothing (blank crops)
    score = score * (gt_img < 1.0).any(-1)
    ii = np.pad(score, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # integral image
    sums = ii[ch:, cw:] - ii[:-ch, cw:] - ii[ch:, :-cw] + ii[:-ch, :-cw]
    t, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(t), int(left), ch, cw


def figure_occupancy(
    gt_volume: Path,
    crop_mode: str,
    preds: dict[tuple[str, str], Path],
    archs: Sequence[str],
    out: Path,
    title: str,
    view_axis="auto",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..data.voxelize import load_volume
    from ..tasks.occupancy import crop

    gt, _ = crop(load_volume(gt_volume)[0], crop_mode)
    axis = view_axis_of(gt.shape, view_axis)
    gt_img = present(render(gt, axis))
    archs = [a for a in archs if any(k[0] == a for k in preds)]
    methods = [m for m in METHOD_ORDER if any(k[1] == m for k in preds)] + sorted(
        {k[1] for k in preds} - set(METHOD_ORDER)
    )
    vols, imgs = {}, {}
    for key, path in preds.items():
        v = load_volume(path)[0]
        if v.shape != gt.shape:
            raise ValueError(
                f"{path}: prediction grid {v.shape} differs from the cropped ground truth {gt.shape}"
                f" (crop mode {crop_mode!r})"
            )
        vols[key], imgs[key] = v, present(render(v, axis))
    t, left, ch, cw = detail_box(gt_img, list(imgs.values()))
    ncol = len(methods) + 1
    nrow = 2 * max(len(archs), 1)
    aspect = gt_img.shape[0] / gt_img.shape[1]
    fig, ax = plt.subplots(
        nrow, ncol, figsize=(2.4 * ncol, min(2.4 * aspect, 3.6) * nrow * 0.8 + 1.0), squeeze=False, layout="constrained"
    )
    for r, arch in enumerate(archs):
        panels = [("Ground truth", gt_img)] + [
            (
                f"{_label(arch, m)}\nIoU {iou(vols[(arch, m)].view(np.uint8), gt.view(np.uint8)):.4f}"
                if (arch, m) in vols
                else f"{_label(arch, m)}\n(missing)",
                imgs.get((arch, m)),
            )
            for m in methods
        ]
        for j, (name, img) in enumerate(panels):
            top, bot = ax[2 * r, j], ax[2 * r + 1, j]
            if img is not None:
                top.imshow(img, interpolation="nearest")
                top.add_patch(Rectangle((left - 0.5, t - 0.5), cw, ch, fill=False, edgecolor="red", linewidth=1.2))
                part = img[t : t + ch, left : left + cw]
                bot.imshow(part, interpolation="nearest")
                if (part >= 1.0).all():  # say why the crop is blank instead of showing an empty panel
                    bot.text(
                        0.5,
                        0.5,
                        "no predicted voxel\nin the red box",
                        ha="center",
                        va="center",
                        transform=bot.transAxes,
                        fontsize=7,
                        color="0.3",
                    )
                if (img >= 1.0).all():
                    top.text(
                        0.5,
                        0.5,
                        "prediction empty\nat the best state",
                        ha="center",
                        va="center",
                        transform=top.transAxes,
                        fontsize=7,
                        color="0.3",
                    )
            else:
                for a in (top, bot):
                    a.text(
                        0.5, 0.5, "not run in this preset", ha="center", va="center", transform=a.transAxes, fontsize=7
                    )
            top.set_title(name, fontsize=8)
            for a in (top, bot):
                a.set_xticks([])
                a.set_yticks([])
        ax[2 * r, 0].set_ylabel(f"{arch}: full view", fontsize=8)
        ax[2 * r + 1, 0].set_ylabel(f"{arch}: red box enlarged", fontsize=8)
    import textwrap

    fig.suptitle(
        textwrap.fill(title + f" (orthographic view along axis {'xyz'[axis]}, longer side vertical)", 22 * ncol),
        fontsize=9,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return fig
