"""Two figures every task gets: training curves (metric vs iteration, one line per method, one panel per
architecture) from the cells' logs, and "ours vs paper" (our value against the paper's, per cell, with
the y = x line) from the long-form CSVs and the paper's reference values (:mod:`.tables`).

Curves come from JSON-lines logs: ``train_log.jsonl`` (image, toy: a row every ``log_every`` steps with
``step`` and the task's metrics) or occupancy's ``epochs.jsonl`` (``step`` and ``iou`` per evaluated
epoch). A resumed run rewrites the steps after its checkpoint, so the last row of a step wins.
"""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..cells import Cell
from .labels import arch_key, method_key, row_label

METRIC_AXIS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM (unitless)",
    "lpips": "LPIPS (unitless, lower is better)",
    "iou": "IoU (unitless)",
    "mse": "MSE (unitless, log scale)",
    "loss": "training loss (MSE)",
}
LOG_SCALE = ("mse", "loss")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)


def _suptitle(fig, title: str, width: int | None = None) -> None:
    """The title wrapped to the figure's width (about 13 characters of 9-pt text per inch)."""
    width = width or max(40, int(fig.get_figwidth() * 13))
    fig.suptitle(textwrap.fill(title, width), fontsize=9)


# --- training curves ------------------------------------------------------------------------
def read_curve(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` in a JSON-lines log, sorted by step; rows without it are skipped."""
    by_step: dict[int, float] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{n}: not a JSON line") from None
        if metric in rec and rec[metric] is not None and "step" in rec:
            by_step[int(rec["step"])] = float(rec[metric])
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def _mean_on_shared_steps(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    steps = curves[0][0]
    for s, _ in curves[1:]:
        steps = np.intersect1d(steps, s)
    return steps, np.mean([v[np.searchsorted(s, steps)] for s, v in curves], axis=0)


def figure_curves(logs: Sequence[Path], metric: str, out: Path, title: str, panels: str = "arch"):
    """One panel per architecture (``panels="arch"``: curves of the same method averaged over the items)
    or per item and architecture (``panels="item-arch"``), one line per method. Returns the Figure."""
    if panels not in ("arch", "item-arch"):
        raise ValueError(f"panels={panels!r} is not allowed; choose arch or item-arch")
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    items = set()
    for path in logs:
        c = Cell.from_path(Path(path).parent)
        steps, vals = read_curve(Path(path), metric)
        if not len(steps):
            raise ValueError(f"{path}: no {metric!r} values (the log holds no row with 'step' and {metric!r})")
        items.add(c.item)
        groups[c.arch if panels == "arch" else f"{c.item} / {c.arch}"][c.method].append((steps, vals))
    if not groups:
        raise ValueError("no training logs given")
    plt = _plt()
    keys = sorted(groups, key=lambda k: (arch_key(k.split(" / ")[-1]), k))
    ncol = min(3, len(keys))
    nrow = -(-len(keys) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.0 * ncol, 3.6 * nrow + 0.9), squeeze=False, layout="constrained")
    ylabel = METRIC_AXIS.get(metric, metric)
    if panels == "arch" and len(items) > 1:
        ylabel += f", mean over {len(items)} items"
    for ax, key in zip(axes.ravel(), keys):
        methods = sorted(groups[key], key=method_key)
        colors = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
        for i, method in enumerate(methods):
            steps, vals = _mean_on_shared_steps(groups[key][method])
            ax.plot(steps, vals, lw=1.2, color=colors(i % colors.N), label=row_label(key.split(" / ")[-1], method))
        if metric in LOG_SCALE:
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2 if len(methods) > 5 else 1, title="method", title_fontsize=6)
    for ax in axes.ravel()[len(keys) :]:
        ax.remove()
    _suptitle(fig, title)
    _save(fig, out)
    plt.close(fig)
    return fig


# --- ours vs paper --------------------------------------------------------------------------------
def paper_tables(task: str) -> dict[str, str]:
    """{metric: number of the paper's per-item table} of a task, as its TableSpecs name them."""
    from .tables import TABLES

    tables: dict[str, str] = {}
    for spec in TABLES.values():
        if spec.task == task and not spec.average_only:
            for m in spec.metrics:
                tables.setdefault(m, spec.paper_metric_tables.get(m, spec.paper_table))
    return tables


def paper_pairs(long, task: str) -> list[dict]:
    """Rows of the long form that have a paper value: {metric, item, architecture, method, ours, paper,
    table}."""
    from .tables import reference_lookup

    tables = paper_tables(task)
    refs = {m: reference_lookup(t) for m, t in tables.items()}
    out = []
    for r in long.to_dict("records"):
        if r["task"] != task or r["metric"] not in refs or str(r["value"]) == "":
            continue
        paper = refs[r["metric"]].get((r["task"], r["dataset"], r["item"], r["metric"], r["architecture"], r["method"]))
        if paper is not None:
            out.append(
                {
                    "metric": r["metric"],
                    "item": r["item"],
                    "architecture": r["architecture"],
                    "method": r["method"],
                    "ours": float(r["value"]),
                    "paper": paper,
                    "table": tables[r["metric"]],
                }
            )
    return out


def figure_vs_paper(
    long_csvs: Sequence[Path], task: str, out: Path, scale_note: str, metrics: Iterable[str] | None = None
):
    """Per metric, a scatter of our value (y) against the paper's (x) for every cell the paper reports,
    with y = x. Without any such cell the panel says why (e.g. a preset on generated data). Returns the Figure."""
    from .tables import load_reference, read_long

    long = read_long(Path(p) for p in long_csvs)
    long = long[long.task == task]
    pairs = paper_pairs(long, task)
    tables = paper_tables(task)
    names = list(metrics) if metrics else list(tables)  # the TableSpec order: psnr, ssim, lpips
    if not names:
        raise ValueError(
            f"task {task!r} has no paper table to compare with; known: {sorted({s for s in load_reference().task})}"
        )
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 5.0), squeeze=False, layout="constrained")
    markers = "osD^vP*X"
    for ax, metric in zip(axes[0], names):
        pts = [p for p in pairs if p["metric"] == metric]
        unit = METRIC_AXIS.get(metric, metric)
        table = tables.get(metric, "?")
        ax.set_xlabel(f"paper (Table {table}): {unit}", fontsize=8)
        ax.set_ylabel(f"ours: {unit}", fontsize=8)
        if not pts:
            ref = load_reference()
            ref = ref[(ref.table == table) & (ref.metric == metric)]
            ours = (
                f"{', '.join(sorted(set(long.dataset))) or 'none'} ({', '.join(sorted(set(long.item) - {'average'}))})"
            )
            if ref.empty:  # e.g. Tables 7 and 8: only their captions survive in the paper's text
                why = (
                    f"the paper's Table {table} has no transcribed {metric} values (its body is not in the paper text)"
                )
            else:
                theirs = f"{', '.join(sorted(set(ref.dataset)))} ({', '.join(sorted(set(ref.item) - {'average'}))})"
                why = f"the paper's Table {table} reports {theirs}; this run has {ours}"
            ax.text(
                0.5,
                0.5,
                textwrap.fill(f"No cell of this run has a paper value for {metric}: {why}.", 45),
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(metric, fontsize=9)
            continue
        archs = sorted({p["architecture"] for p in pts}, key=arch_key)
        methods = sorted({p["method"] for p in pts}, key=method_key)
        colors = plt.get_cmap("tab10")
        for p in pts:
            ax.scatter(
                p["paper"],
                p["ours"],
                s=22,
                alpha=0.85,
                color=colors(methods.index(p["method"]) % 10),
                marker=markers[archs.index(p["architecture"]) % len(markers)],
            )
        lo = min(min(p["paper"], p["ours"]) for p in pts)
        hi = max(max(p["paper"], p["ours"]) for p in pts)
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", ls="--", lw=1, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        # legend: colours = methods, markers = architectures
        for i, m in enumerate(methods):
            ax.scatter([], [], color=colors(i % 10), marker="o", label=f"method {m}")
        for i, a in enumerate(archs):
            ax.scatter([], [], color="0.3", marker=markers[i % len(markers)], label=f"architecture {a}")
        ax.legend(fontsize=6, loc="lower right")
        n_items = len({p["item"] for p in pts})
        ax.set_title(f"{metric}: {len(pts)} cells on {n_items} items", fontsize=9)
    _suptitle(fig, f"{task}: ours vs paper, per cell [{scale_note}]")
    _save(fig, out)
    plt.close(fig)
    return fig
