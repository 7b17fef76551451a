"""Figures of the toy studies (their tables: :mod:`.toy_tables`) (paper section 5 and appendix C).

Inputs are the toy cells' ``metrics.json`` files, each with its ``curve.npz`` beside it (MSE, Δ_k and,
for Exp. 1, residual vectors and kernel distances at every evaluation). Curves of cells that differ
only in the seed are averaged.

* Exp. 1: Fig. 1 (MSE curves + Δ_k heatmaps, two widths, one end), Fig. 6 (every width and end), the
  width study (‖K̃−K‖, ‖S̃−S‖, distance of eNTK-/IGA- from NTK-adjusted residual trajectories) and the
  tables ``exp1_final_errors.csv`` / ``exp1_convergence_with_width.csv``.
* Exp. 2: Fig. 2 (Δ_k heatmaps per end, group size 8), Fig. 3 (Δ at one component vs iterations per
  group size and end), Fig. 7 (heatmaps of every group size), Figs. 8/9 (every component, ReLU/SIREN)
  and ``exp2_final_errors.csv``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..cells import Cell
from .labels import TOY_METHOD_ORDER

# mathtext: the paper's symbols for the transformation matrices (I, S, S~, S~_e)
METHOD_LABELS = {
    "vanilla": r"$I$ (vanilla)",
    "NTK": r"$S$ (NTK)",
    "eNTK": r"$\tilde{S}$ (eNTK)",
    "IGA": r"$\tilde{S}_e$ (IGA)",
}
METHOD_COLORS = {
    "vanilla": "0.3",
    "NTK": "tab:blue",
    "eNTK": "tab:orange",
    "IGA": "tab:green",
    1: "tab:orange",
    4: "tab:purple",
    8: "tab:green",
}
HEAT_CMAP = "Blues"  # darker = larger error, as the paper's heatmaps
DELTA_LABEL = r"relative error $\Delta_k = |\hat{r}_k| / |\hat{y}_k|$ (unitless, shown up to 1)"


# --- loading ---------------------------------------------------------------------------------
class ToyCell:
    def __init__(self, metrics_path: Path):
        self.path = Path(metrics_path)
        c = Cell.from_path(self.path)
        self.item, self.arch, self.method, self.cell, self.base = c.item, c.arch, c.method, c.id, c.base_method
        self.m = json.loads(self.path.read_text())
        self._curve = None

    @property
    def curve(self) -> dict[str, np.ndarray]:
        if self._curve is None:
            with np.load(self.path.with_name("curve.npz")) as z:
                self._curve = {k: z[k] for k in z.files}
        return self._curve

    @property
    def experiment(self) -> str:
        return self.m["experiment"]

    @property
    def width(self) -> int:
        return int(self.m["width"])

    @property
    def seed(self) -> int:
        return int(self.m["seed"])

    @property
    def balanced(self) -> int | None:
        return self.m.get("balanced")

    @property
    def group_size(self) -> int:
        return int(self.m["group_size"])

    def freq_label(self, i: int) -> str:
        f = self.m["freqs"][i]
        unit = "" if self.experiment == "exp1" else " Hz"
        return f"{f:g}{unit}"


def load_cells(paths: Iterable[Path]) -> list[ToyCell]:
    return [ToyCell(p) for p in paths]


def _mean_curve(cells: Sequence[ToyCell], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, mean over seeds of curve[key]) on the evaluations all cells share."""
    steps = cells[0].curve["steps"]
    for c in cells[1:]:
        steps = np.intersect1d(steps, c.curve["steps"])
    vals = []
    for c in cells:
        idx = np.searchsorted(c.curve["steps"], steps)
        vals.append(c.curve[key][idx])
    return steps, np.mean(vals, axis=0)


def _seed_groups(cells: Iterable[ToyCell], key) -> dict[tuple, list[ToyCell]]:
    out: dict[tuple, list[ToyCell]] = defaultdict(list)
    for c in cells:
        out[key(c)].append(c)
    return out


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _heatmap(ax, steps, delta, labels, title, vmax=1.0, ylabels=True, ylabel="frequency component"):
    im = ax.imshow(
        np.clip(delta.T, 0, vmax),
        aspect="auto",
        origin="lower",
        cmap=HEAT_CMAP,
        vmin=0,
        vmax=vmax,
        extent=(steps[0], steps[-1], -0.5, delta.shape[1] - 0.5),
        interpolation="nearest",
    )
    ax.set_yticks(range(delta.shape[1]))
    ax.set_yticklabels(labels if ylabels else [], fontsize=7)
    ax.set_ylabel(ylabel if ylabels else "", fontsize=7)
    ax.set_xlabel("iteration", fontsize=7)
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    return im


def _title(fig, title: str, note: str, size: int = 9) -> None:
    import textwrap

    text = title + ("\n" + textwrap.fill(f"[{note}]", 170) if note else "")
    fig.suptitle(text, fontsize=size)


def _save(fig, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


# --- Experiment 1 ----------------------------------------------------------------------------------
def _exp1_index(cells: list[ToyCell]):
    """{(width, method_base, balanced|None): [cells over seeds]}."""
    cells = [c for c in cells if c.experiment == "exp1"]
    return _seed_groups(cells, lambda c: (c.width, c.base, None if c.base == "vanilla" else c.balanced)), cells


def _exp1_row(fig, axes, index, cells, width, end, ref: ToyCell, heat_max=1.0):
    ax = axes[0]
    ims = None
    for j, base in enumerate(TOY_METHOD_ORDER):
        group = index.get((width, base, None if base == "vanilla" else end))
        hax = axes[1 + j]
        if not group:
            hax.set_axis_off()
            hax.set_title(f"{METHOD_LABELS[base]}: not run", fontsize=8)
            continue
        steps, mse = _mean_curve(group, "mse")
        ax.plot(steps, mse, color=METHOD_COLORS[base], label=METHOD_LABELS[base], lw=1.2)
        steps, delta = _mean_curve(group, "delta")
        labels = [f"k{i + 1} (bin {ref.m['bins'][i]})" for i in range(delta.shape[1])]
        ims = _heatmap(
            hax,
            steps,
            delta,
            labels,
            f"{METHOD_LABELS[base]}" + (f", end {end}" if base != "vanilla" else ""),
            heat_max,
        )
    ax.set_yscale("log")
    ax.set_facecolor("0.93")
    ax.set_title(f"width {width}: MSE", fontsize=8)
    ax.set_xlabel("iteration", fontsize=7)
    ax.set_ylabel("training MSE (log scale)", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    return ims


def exp1_figures(
    cells: list[ToyCell], out: dict[str, Path], widths: list[int] | None = None, end: int = 0, note: str = ""
) -> None:
    """Writes the figures named in ``out``; returns {name: Figure}."""
    plt = _plt()
    figs = {}
    index, cells = _exp1_index(cells)
    if not cells:
        raise ValueError("no exp1 cells given")
    all_widths = sorted({c.width for c in cells})
    ends = sorted({c.balanced for c in cells if c.base != "vanilla"})
    ref = cells[0]
    if "fig1" in out:
        ws = [w for w in (widths or [all_widths[0], all_widths[-1]]) if w in all_widths] or all_widths[:2]
        e = end if end in ends else ends[-1]
        fig, axes = plt.subplots(
            len(ws),
            5,
            figsize=(17, 2.9 * len(ws) + 0.8),
            squeeze=False,
            layout="constrained",
            gridspec_kw={"width_ratios": [1.3, 1, 1, 1, 1]},
        )
        ims = None
        for r, w in enumerate(ws):
            ims = _exp1_row(fig, axes[r], index, cells, w, e, ref) or ims
        _title(fig, rf"Exp. 1 (paper Fig. 1): MSE and $\Delta_k$ over iterations, end = {e}", note)
        if ims is not None:
            fig.colorbar(ims, ax=axes[:, 1:].ravel().tolist(), shrink=0.8, label=DELTA_LABEL)
        _save(fig, out["fig1"])
        plt.close(fig)
        figs["fig1"] = fig
    if "fig6" in out:
        rows = [(w, e) for w in all_widths for e in ends]
        fig, axes = plt.subplots(
            len(rows),
            5,
            figsize=(17, 2.6 * len(rows) + 0.8),
            squeeze=False,
            layout="constrained",
            gridspec_kw={"width_ratios": [1.3, 1, 1, 1, 1]},
        )
        ims = None
        for r, (w, e) in enumerate(rows):
            ims = _exp1_row(fig, axes[r], index, cells, w, e, ref) or ims
            axes[r][0].set_title(f"width {w}, end {e}: MSE", fontsize=8)
        _title(fig, "Exp. 1 (paper Fig. 6): every width and end", note)
        if ims is not None:
            fig.colorbar(ims, ax=axes[:, 1:].ravel().tolist(), shrink=0.5, label=DELTA_LABEL)
        _save(fig, out["fig6"])
        plt.close(fig)
        figs["fig6"] = fig
    if "width" in out:
        figs["width"] = _width_figure(plt, exp1_width_rows(cells), out["width"], note)
    return figs


def _traj_distance(a: ToyCell, b: ToyCell) -> np.ndarray | None:
    """‖r_a(t) − r_b(t)‖₂ / ‖y‖₂ on the evaluations both cells share (None without residuals)."""
    if "residual" not in a.curve or "residual" not in b.curve:
        return None
    steps = np.intersect1d(a.curve["steps"], b.curve["steps"])
    ra = a.curve["residual"][np.searchsorted(a.curve["steps"], steps)].astype(np.float64)
    rb = b.curve["residual"][np.searchsorted(b.curve["steps"], steps)].astype(np.float64)
    return np.linalg.norm(ra - rb, axis=1) / np.linalg.norm(a.curve["target"].astype(np.float64))


def exp1_width_rows(cells: list[ToyCell]) -> list[dict]:
    """Per (width, seed, end): kernel/transformation distances and trajectory distances to NTK."""
    by = {
        (c.width, c.seed, c.base, None if c.base == "vanilla" else c.balanced): c
        for c in cells
        if c.experiment == "exp1"
    }
    rows = []
    for (w, s, base, e), c in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][3]), kv[0][2])):
        if base != "NTK":
            continue
        for other in ("eNTK", "IGA", "vanilla"):
            o = by.get((w, s, other, None if other == "vanilla" else e))
            if o is None:
                continue
            d = _traj_distance(o, c)
            rec = {"width": w, "seed": s, "end": e, "method": other, "item": c.item, "cell": o.cell, "ntk_cell": c.cell}
            if d is not None:
                rec["traj_dist_max"] = float(d.max())
                rec["traj_dist_final"] = float(d[-1])
                rec["traj_dist_mean"] = float(d.mean())
            cv = o.curve
            for key in ("k_rel", "s_rel", "ke_rel", "se_rel"):
                if key in cv:
                    rec[f"{key}_init"] = float(cv[key][0])
                    rec[f"{key}_mean"] = float(cv[key].mean())
                for suffix in ("_init_mc", "_init_mc_std"):
                    if key + suffix in o.m:
                        rec[key + suffix] = float(o.m[key + suffix])
            rows.append(rec)
    return rows


def _agg(rows, method, key):
    """{(end): (widths, mean over seeds)}."""
    acc: dict[int | None, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["method"] == method and key in r:
            acc[r["end"]][r["width"]].append(r[key])
    return {e: (np.array(sorted(d)), np.array([np.mean(d[w]) for w in sorted(d)])) for e, d in acc.items()}


def _width_figure(plt, rows: list[dict], path: Path, note: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.0), layout="constrained")
    styles = {"eNTK": ("tab:orange", "o"), "IGA": ("tab:green", "s"), "vanilla": ("0.4", "^")}
    last_end = max((r["end"] for r in rows if r["end"] is not None), default=None)

    def errorbar(ax, method, key, label, ls="-", alpha=1.0):
        col, mk = styles[method]
        for e, (w, v) in sorted(_agg(rows, method, key).items(), key=lambda kv: str(kv[0])):
            err = _agg(rows, method, key + "_std").get(e)
            if err is not None and not np.array_equal(err[0], w):
                err = None
            ax.errorbar(
                w,
                v,
                yerr=None if err is None else err[1],
                marker=mk,
                ls=ls,
                color=col,
                capsize=3,
                alpha=alpha if e == last_end else 0.45 * alpha,
                label=f"{label}, end {e}",
            )

    ax = axes[0]
    if _agg(rows, "eNTK", "k_rel_init_mc"):
        errorbar(ax, "eNTK", "k_rel_init_mc", r"$\|\tilde{K}_0-K\|/\|K\|$ at init (mean ± sd over random nets)")
    errorbar(ax, "eNTK", "k_rel_init", r"$\|\tilde{K}_0-K\|/\|K\|$ at init (trained cell)", ls="none")
    errorbar(ax, "eNTK", "k_rel_mean", r"$\|\tilde{K}_t-K\|/\|K\|$ mean over training", ls="--")
    _ref_slope(ax, rows)
    ax.set_title("eNTK vs exact NTK, all N points", fontsize=9)
    ax.set_ylabel("relative Frobenius distance to the NTK (unitless)", fontsize=8)
    ax = axes[1]
    for method, key, lab, ls in (
        ("eNTK", "s_rel_init_mc", r"$\|\tilde{S}-S\|/\|S\|$ init (random nets)", "-"),
        ("eNTK", "s_rel_mean", r"$\|\tilde{S}-S\|/\|S\|$ mean over training", "--"),
        ("IGA", "se_rel_init_mc", r"$\|\tilde{S}_e-S_e\|/\|S_e\|$ init (random nets)", "-"),
        ("IGA", "se_rel_mean", r"$\|\tilde{S}_e-S_e\|/\|S_e\|$ mean over training", "--"),
    ):
        if _agg(rows, method, key):
            errorbar(ax, method, key, lab, ls=ls)
        elif key.endswith("_init_mc"):
            errorbar(ax, method, key.replace("_init_mc", "_init"), lab.replace("random nets", "trained cell"), ls=ls)
    ax.set_title("transformation matrices (end = balanced eigenvalues)", fontsize=9)
    ax.set_ylabel("relative Frobenius distance (unitless)", fontsize=8)
    ax = axes[2]
    ax.set_ylabel(r"distance relative to $\|y\|$ (unitless)", fontsize=8)
    for method in ("eNTK", "IGA", "vanilla"):
        lab = {
            "eNTK": r"$\tilde{S}$ (eNTK) vs $S$",
            "IGA": r"$\tilde{S}_e$ (IGA) vs $S$",
            "vanilla": r"$I$ (vanilla) vs $S$: size of the adjustment",
        }[method]
        errorbar(ax, method, "traj_dist_max", lab, ls=":" if method == "vanilla" else "-")
    ax.set_title(r"residual trajectories: $\max_t \|r(t) - r_{NTK}(t)\| / \|y\|$", fontsize=9)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width m", fontsize=8)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    _title(fig, "Exp. 1: convergence of eNTK-based to NTK-based adjustment with width", note)
    _save(fig, path)
    plt.close(fig)
    return fig


def _ref_slope(ax, rows):
    pts = _agg(rows, "eNTK", "k_rel_init_mc") or _agg(rows, "eNTK", "k_rel_init")
    if not pts:
        return
    w, v = next(iter(pts.values()))
    if len(w):
        ax.plot(w, v[0] * np.sqrt(w[0] / w), color="0.6", ls=":", label="∝ m^-1/2")


# --- Experiment 2 ----------------------------------------------------------------------------------
def _exp2_index(cells: list[ToyCell]):
    cells = [c for c in cells if c.experiment == "exp2"]
    return _seed_groups(
        cells,
        lambda c: (
            c.arch,
            "vanilla" if c.base == "vanilla" else c.group_size,
            None if c.base == "vanilla" else c.balanced,
        ),
    ), cells


def exp2_figures(
    cells: list[ToyCell], out: dict[str, Path], component: int = 4, fig2_group: int = 8, note: str = ""
) -> None:
    """Writes the figures named in ``out``; returns {name: Figure}."""
    plt = _plt()
    figs = {}
    index, cells = _exp2_index(cells)
    if not cells:
        raise ValueError("no exp2 cells given")
    archs = [a for a in ("ReLU", "SIREN") if any(c.arch == a for c in cells)] + sorted(
        {c.arch for c in cells} - {"ReLU", "SIREN"}
    )
    groups = sorted({c.group_size for c in cells if c.base != "vanilla"})
    ends = sorted({c.balanced for c in cells if c.base != "vanilla"})
    refs = {a: next(c for c in cells if c.arch == a) for a in archs}

    def heat_rows(rows, path, title):
        """Rows (arch, group size) x columns (baseline, one per end); the baseline panel is drawn once
        per architecture, spanning its rows (it does not depend on the group size or end)."""
        mosaic = []
        for arch, g in rows:
            mosaic.append([f"{arch}|vanilla"] + [f"{arch}|{g}|{e}" for e in ends])
        fig, axd = plt.subplot_mosaic(
            mosaic, figsize=(3.2 * (1 + len(ends)), 2.4 * len(rows) + 0.9), layout="constrained"
        )
        ims = None
        for arch, g in rows:
            ref = refs[arch]
            labels = [ref.freq_label(i) for i in range(len(ref.m["freqs"]))]
            cells_ = [(f"{arch}|vanilla", (arch, "vanilla", None), f"{arch} (vanilla baseline)")] + [
                (f"{arch}|{g}|{e}", (arch, g, e), rf"{arch} + IGA $\tilde{{S}}_e$, end {e}, group size {g}")
                for e in ends
            ]
            for name, key, label in cells_:
                ax = axd[name]
                if ax.get_title():  # the spanning baseline panel, already drawn for an earlier row
                    continue
                grp = index.get(key)
                if not grp:
                    ax.text(
                        0.5, 0.5, "not run in this preset", ha="center", va="center", transform=ax.transAxes, fontsize=8
                    )
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(label, fontsize=8)
                    continue
                steps, delta = _mean_curve(grp, "delta")
                ims = _heatmap(ax, steps, delta, labels, label, ylabel="frequency")
        if ims is not None:
            fig.colorbar(ims, ax=list(axd.values()), shrink=0.8, label=DELTA_LABEL)
        _title(fig, title, note)
        _save(fig, path)
        plt.close(fig)
        return fig

    if "fig2" in out:
        g = fig2_group if fig2_group in groups else groups[-1]
        figs["fig2"] = heat_rows(
            [(a, g) for a in archs],
            out["fig2"],
            rf"Exp. 2 (paper Fig. 2): $\Delta_k$ over iterations by number of balanced eigenvalues (end), "
            rf"group size {g}",
        )
    if "fig7" in out:
        figs["fig7"] = heat_rows(
            [(a, g) for a in archs for g in groups],
            out["fig7"],
            r"Exp. 2 (paper Fig. 7): $\Delta_k$ over iterations, every group size and end",
        )

    def line_grid(arch_rows, comps, path, title):
        fig, axes = plt.subplots(
            len(arch_rows) * len(comps),
            len(ends),
            layout="constrained",
            figsize=(3.8 * len(ends), 2.5 * len(arch_rows) * len(comps) + 0.9),
            squeeze=False,
        )
        for a_i, arch in enumerate(arch_rows):
            for c_i, comp in enumerate(comps):
                r = a_i * len(comps) + c_i
                ref = refs[arch]
                for j, e in enumerate(ends):
                    ax = axes[r][j]
                    base = index.get((arch, "vanilla", None))
                    if base:
                        s, d = _mean_curve(base, "delta")
                        ax.plot(s, d[:, comp], color="0.3", lw=1.2, label="Baseline")
                    for g in groups:
                        grp = index.get((arch, g, e))
                        if grp:
                            s, d = _mean_curve(grp, "delta")
                            ax.plot(s, d[:, comp], color=METHOD_COLORS.get(g), lw=1.0, label=f"IGA-{g}")
                    ax.set_title(f"{arch}, {ref.freq_label(comp)} (DFT bin {ref.m['bins'][comp]}), end {e}", fontsize=8)
                    ax.set_ylim(bottom=0)
                    ax.tick_params(labelsize=7)
                    ax.grid(True, alpha=0.3)
                    ax.set_xlabel("iteration", fontsize=7)
                    ax.set_ylabel(r"relative error $\Delta_k$ (unitless)", fontsize=7)
                axes[r][0].legend(fontsize=6)
        _title(fig, title, note)
        _save(fig, path)
        plt.close(fig)
        return fig

    comp = max(0, min(component - 1, min(len(refs[a].m["freqs"]) for a in archs) - 1))
    if "fig3" in out:
        labels = ", ".join(f"{a}: {refs[a].freq_label(comp)}" for a in archs)
        figs["fig3"] = line_grid(
            archs,
            [comp],
            out["fig3"],
            f"Exp. 2 (paper Fig. 3): relative error at component {comp + 1} ({labels}) per group size and end",
        )
    for key, arch in (("fig8", "ReLU"), ("fig9", "SIREN")):
        if key in out:
            if arch not in refs:
                raise ValueError(f"{key} needs {arch} cells")
            n = len(refs[arch].m["freqs"])
            figs[key] = line_grid(
                [arch],
                list(range(n)),
                out[key],
                f"Exp. 2 (paper Fig. {key[-1]}): relative error at every component, {arch}",
            )
    return figs
