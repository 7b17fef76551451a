"""Figures 4 and 10 of the paper: reconstructions per method, enlarged crops, residual spectra."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..metrics import psnr
from .labels import METHOD_ORDER


def _label(arch: str, method: str) -> str:
    return arch if method == "vanilla" else f"{arch}+{method}"


def _read(path: Path) -> np.ndarray:
    from skimage import io

    return io.imread(path)[..., :3].astype(np.float64) / 255.0


def _at_size(gt: np.ndarray, shape) -> np.ndarray:
    """The ground truth at the reconstruction's size (cells trained on a downsampled image)."""
    if gt.shape[:2] == tuple(shape[:2]):
        return gt
    from skimage import transform  # the same anti-aliased resize as iga.tasks.image.load_image

    return transform.resize(gt, shape[:2], anti_aliasing=True, order=1)


def _crop_box(h: int, w: int, frac: float = 0.3) -> tuple[int, int, int, int]:
    """A crop of the busiest (highest-gradient) region: (top, left, height, width)."""
    ch, cw = max(4, int(h * frac)), max(4, int(w * frac))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _busiest_box(gt: np.ndarray, frac: float = 0.3) -> tuple[int, int, int, int]:
    h, w = gt.shape[:2]
    _, _, ch, cw = _crop_box(h, w, frac)
    g = np.abs(np.diff(gt.mean(-1), axis=0))[:, :-1] + np.abs(np.diff(gt.mean(-1), axis=1))[:-1, :]
    best, pos = -1.0, (0, 0)
    step = max(1, min(ch, cw) // 4)
    for t in range(0, h - ch, step):
        for left in range(0, w - cw, step):
            s = g[t : t + ch - 1, left : left + cw - 1].sum()
            if s > best:
                best, pos = s, (t, left)
    return pos[0], pos[1], ch, cw


def cell_psnr(recon: Path, img: np.ndarray, gt: np.ndarray) -> tuple[float, str]:
    """The PSNR shown under a reconstruction: the cell's metrics.json value (best float state, the number
    Table 6 prints) when it sits beside ``recon``, else the PSNR of the 8-bit image (marked as such)."""
    import json

    m = Path(recon).with_name("metrics.json")
    if m.exists():
        value = json.loads(m.read_text()).get("psnr")
        if value is not None:
            return float(value), "dB"
    return psnr(img, gt), "dB (8-bit image)"


def residual_spectrum(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """log(1 + |F(pred − gt)|) of the grey residual, zero frequency at the centre."""
    r = (pred - gt).mean(-1)
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(r))))


def figure_crops(gt_path: Path, recons: dict[str, Path], arch: str, out: Path, title: str) -> None:
    """Paper Fig. 4: for one image and architecture, each method with an enlarged crop and the
    Fourier-domain residual of that crop (blue: small error, red: large)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    methods = [m for m in METHOD_ORDER if m in recons] + [m for m in recons if m not in METHOD_ORDER]
    preds = {m: _read(recons[m]) for m in methods}
    gt = _at_size(_read(gt_path), next(iter(preds.values())).shape)
    t, left, ch, cw = _busiest_box(gt)
    box = (slice(t, t + ch), slice(left, left + cw))
    specs = {m: residual_spectrum(p[box], gt[box]) for m, p in preds.items()}
    vmax = max(s.max() for s in specs.values()) if specs else 1.0
    ncol = len(methods) + 1
    fig, ax = plt.subplots(3, ncol, figsize=(2.6 * ncol + 0.8, 7.4), squeeze=False, layout="constrained")
    panels = [("Ground truth", gt, None)] + [
        (f"{_label(arch, m)}\n" + "{:.2f} {}".format(*cell_psnr(recons[m], preds[m], gt)), preds[m], m) for m in methods
    ]
    for j, (name, img, m) in enumerate(panels):
        ax[0, j].imshow(np.clip(img, 0, 1))
        ax[0, j].add_patch(Rectangle((left, t), cw, ch, fill=False, edgecolor="red", linewidth=1.5))
        ax[0, j].set_title(name, fontsize=9)
        ax[1, j].imshow(np.clip(img[t : t + ch, left : left + cw], 0, 1), interpolation="nearest")
        if m is None:
            ax[2, j].text(
                0.5,
                0.5,
                "residual spectrum\nof the crop\n(blue: small error,\nred: large)",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax[2, j].transAxes,
            )
        else:
            ax[2, j].imshow(specs[m], cmap="jet", vmin=0, vmax=vmax)
        for i in range(3):
            ax[i, j].set_xticks([])
            ax[i, j].set_yticks([])
    ax[0, 0].set_ylabel("full image", fontsize=8)
    ax[1, 0].set_ylabel("enlarged crop", fontsize=8)
    ax[2, 1].set_ylabel("residual spectrum\nof the crop", fontsize=8)
    ax[2, 0].set_axis_off()  # the text panel: the spectra's legend
    if specs:
        cb = fig.colorbar(ax[2, -1].images[0], ax=ax[2, :].tolist(), shrink=0.9, pad=0.01)
        cb.set_label(r"$\log(1 + |\mathcal{F}(\mathrm{pred} - \mathrm{gt})|)$", fontsize=8)
    import textwrap

    fig.suptitle(
        "\n".join(textwrap.wrap(title + " PSNR: the cell's best float state, as in Table 6.", 24 * ncol)), fontsize=9
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return fig


def figure_visual(
    gts: dict[str, Path], recons: dict[tuple[str, str, str], Path], archs: Sequence[str], out: Path, title: str
) -> None:
    """Paper Fig. 10: per image and architecture, every method's reconstruction with its PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(gts)
    methods = [m for m in METHOD_ORDER if any(k[2] == m for k in recons)]
    rows = [(i, a) for i in items for a in archs]
    ncol = len(methods) + 1
    fig, ax = plt.subplots(
        len(rows), ncol, figsize=(2.4 * ncol, 1.9 * len(rows) + 0.8), squeeze=False, layout="constrained"
    )
    for r, (item, arch) in enumerate(rows):
        gt = _read(gts[item])
        ax[r, 0].imshow(gt)
        ax[r, 0].set_title(f"{item}: ground truth", fontsize=8)
        ax[r, 0].set_ylabel(arch, fontsize=9)
        for j, m in enumerate(methods, start=1):
            p = recons.get((item, arch, m))
            if p is not None and Path(p).exists():
                img = _read(p)
                gt = _at_size(gt, img.shape)
                ax[r, j].imshow(img)
                ax[r, j].set_title("{} ({:.2f} {})".format(_label(arch, m), *cell_psnr(p, img, gt)), fontsize=8)
            else:
                ax[r, j].text(
                    0.5,
                    0.5,
                    "not run in this preset",
                    ha="center",
                    va="center",
                    transform=ax[r, j].transAxes,
                    fontsize=8,
                )
        for j in range(ncol):
            ax[r, j].set_xticks([])
            ax[r, j].set_yticks([])
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(title, 20 * ncol)), fontsize=9)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return fig
