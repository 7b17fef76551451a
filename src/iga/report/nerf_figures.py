"""Paper Figure 12: a test view of each NeRF method beside the ground truth, with an enlarged crop.

A scene evaluated on held-out train views (no test split) says so in the title, naming the view."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from .labels import method_key


def _label(method: str) -> str:
    return "NeRF" if method == "vanilla" else f"NeRF+{method}"


def figure_nerf(metrics_files: list[Path], item: str, out: Path, note: str, view: int = 0) -> str:
    """Write the figure; return its title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from PIL import Image

    from ..cells import Cell
    from ..nerf.run import _gt_image

    cells, shown = [], set()
    # one replicate per method: the one whose render the records keep (the cell's first listed seed,
    # workflow kept_figure_files), else the lowest seed that has one
    for m in sorted((Path(m) for m in metrics_files), key=lambda m: Cell.from_path(m).seed):
        c = Cell.from_path(m)
        if c.item != item or c.method in shown or not (m.parent / "renders" / f"test_{view:03d}.png").is_file():
            continue
        method = c.method
        shown.add(method)
        metrics = json.loads(m.read_text())
        prov = json.loads((m.parent / "provenance.json").read_text())
        render = np.asarray(Image.open(m.parent / "renders" / f"test_{view:03d}.png")).astype(np.float64) / 255
        per_view = metrics["per_view"][view]
        # "source": the view's image in the scene (a held-out train view, or a test view)
        gt_file = Path(prov["settings"]["data"]) / per_view.get("source", f"test/{per_view['file']}")
        views = (metrics.get("evaluation") or {}).get("note", "")
        cells.append((method, render, per_view["psnr"], gt_file, views))
    if not cells:
        raise ValueError(
            f"no NeRF cell of item {item!r} with a kept render (renders/test_{view:03d}.png) among the inputs"
        )
    cells.sort(key=lambda c: method_key(c[0]))
    views = sorted({c[4] for c in cells})
    if views == [""]:
        shown_view = f"test view {view}"
    else:  # held-out train views: the title names the view and says there was no test split
        shown_view = f"view {cells[0][3].stem} ({'; '.join(v or 'test split' for v in views)})"
    gt = _gt_image(cells[0][3])
    h, w = cells[0][1].shape[:2]
    if gt.shape[:2] != (h, w):  # half-resolution training: show the ground truth at the render size
        gt = np.asarray(Image.fromarray((gt * 255).astype(np.uint8)).resize((w, h), Image.BOX)) / 255.0
    ch, cw = max(4, h // 3), max(4, w // 3)
    t, left = (h - ch) // 2, (w - cw) // 2
    panels = [("Ground truth", gt)] + [(f"{_label(m)} ({p:.2f} dB)", r) for m, r, p, _, _ in cells]
    fig, ax = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.4), squeeze=False)
    for j, (name, img) in enumerate(panels):
        ax[0, j].imshow(np.clip(img, 0, 1))
        ax[0, j].add_patch(Rectangle((left, t), cw, ch, fill=False, edgecolor="red", linewidth=1.2))
        ax[0, j].set_title(name, fontsize=9)
        ax[1, j].imshow(np.clip(img[t : t + ch, left : left + cw], 0, 1), interpolation="nearest")
        for i in range(2):
            ax[i, j].set_xticks([])
            ax[i, j].set_yticks([])
    title = f"{item}, {shown_view}: renders and enlarged crops [{note}]"
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=9)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return title
