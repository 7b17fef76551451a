"""Appendix B of the paper and the paper-text-vs-official-code variants, from the image_ablation cells.

* Table 4 (``table4_sampling``): average PSNR over the items for IGA with SLR / RSI / RI sampling and
  vanilla, per architecture and averaged over the architectures; the paper's values beside ours.
* Table 5 (``table5_group_size``): PSNR per group size p, Δ against vanilla (Δ_avg: mean over the
  architectures), measured time per iteration and peak memory. The paper's Table 5 body is not in the
  transcribed paper, so ``paper_value`` stays empty (said in every row's note).
* Variants (``variants_paper_vs_code``): IGA as the paper text describes it (eq. 5 as printed:
  outside-range directions weigh λ_i; one sampled point per group) and as the official code does it
  (weight 1; the all-groups indexing quirk), beside the paper's per-image IGA PSNR (Table 6).

Cells are labelled from their own resolved settings (``provenance.json``), not from their names:
a Table 4 row is "IGA-<sampling>", a Table 5 row "IGA-P<patch side>", a variant row carries its eq. 5
variant and indexing. Everything is built in the long form of :mod:`iga.report.tables`;
:mod:`.ablation_layouts` renders it.

A cell may be a main image cell the workflow reused (``work/{preset}/image/...``, identical image and
settings; ``tasks.image_ablation.reuse_image_cells``): its rows keep task ``image_ablation`` (the table
they feed) and name the cell that was trained (``cell`` = ``image/{item}/{arch}-{method}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..cells import grid_configs
from ..configs import ARCHITECTURES
from . import replicates
from .cost import read_cell
from .labels import arch_key, cause
from .tables import reference_lookup

TASK = "image_ablation"
PAPER_ITEMS = ("kodim01", "kodim02", "kodim03")
PAPER_AVG_ITEM = "kodim01-03 average"  # the item name of the paper's Table 4 rows (reference_tables.csv)
TABLE5_NOTE = "paper Table 5 values not transcribed (the table body is missing from the paper text here)"

# long-form metrics of one ablation cell; descriptors (strings/flags) say what the cell actually ran
COLLECT_METRICS = (
    "psnr",
    "psnr_final",
    "time_per_iteration_s",
    "train_time_s",
    "peak_rss_mb",
    "peak_gpu_mb",
    "job_wall_time_s",
    "iterations",
    "groups",
    "patch_size",
    "end",
    "lr",
    "sampling",
    "eq5_variant",
    "indexing_quirk",
    "eigensolver",
)
IGA_ONLY = ("end", "sampling", "eq5_variant", "indexing_quirk", "eigensolver")  # no row for other methods


# --- collect ------------------------------------------------------------------------------
def collect_cell(metrics_path: Path, preset: str, dataset: str) -> list[dict]:
    metrics_path = Path(metrics_path)
    metrics = json.loads(metrics_path.read_text())
    prov_path = metrics_path.parent / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    cost = read_cell(metrics_path)
    settings = prov.get("settings", {})
    adj, task, optim = settings.get("adjuster", {}), settings.get("task", {}), settings.get("optim", {})
    iga = adj.get("kind") == "iga"
    values = {
        "psnr": metrics.get("psnr"),
        "psnr_final": metrics.get("psnr_final"),
        **{
            k: cost["values"].get(k)
            for k in ("time_per_iteration_s", "train_time_s", "peak_rss_mb", "peak_gpu_mb", "job_wall_time_s")
        },
        "iterations": metrics.get("iterations"),
        "groups": metrics.get("groups"),
        "patch_size": task.get("patch_size"),
        "lr": optim.get("lr"),
        "end": adj.get("end") if iga else None,
        "sampling": adj.get("sampling", "slr") if iga else None,
        "eq5_variant": adj.get("variant", "official") if iga else None,
        "indexing_quirk": int(bool(adj.get("official_indexing_quirk", False))) if iga else None,
        "eigensolver": adj.get("solver", "auto") if iga else None,
    }
    device = cost["device"] or "unknown"
    rows = []
    for name in COLLECT_METRICS:
        v = values.get(name)
        if v is None:
            if name == "peak_gpu_mb" and not device.startswith("cuda"):
                continue
            if name in IGA_ONLY and not iga:
                continue
        note = ""
        if name in ("time_per_iteration_s", "train_time_s", "peak_rss_mb", "peak_gpu_mb", "job_wall_time_s"):
            note = f"device: {device}" + (
                "" if v is not None else "; missing: " + ("; ".join(cost["notes"]) or "not recorded")
            )
        rows.append(
            {
                "preset": preset,
                "task": TASK,
                "dataset": dataset,
                "item": cost["item"],
                "metric": name,
                "architecture": cost["arch"],
                "method": cost["method"],
                "seed": cost["seed"],
                "value": "" if v is None else v,
                "note": note,
                "cell": cost["cell"],
            }
        )
    return rows


def collect(metrics_files: Sequence[Path], preset: str, dataset: str) -> list[dict]:
    return [r for p in metrics_files for r in collect_cell(Path(p), preset, dataset)]


def reused_cells(rows: Sequence[dict]) -> list[str]:
    """Ids of the collected cells that were trained by another task (reused main image cells)."""
    return sorted({r["cell"] for r in rows if r.get("cell") and not r["cell"].startswith(TASK + "/")})


# --- helpers ------------------------------------------------------------------------------
class Cells:
    """Long-form rows indexed by (item, architecture, method) → {metric: [row per seed]}."""

    def __init__(self, rows: Sequence[dict]):
        self.rows: dict[tuple[str, str, str], dict[str, list[dict]]] = {}
        for r in rows:
            self.rows.setdefault((r["item"], r["architecture"], r["method"]), {}).setdefault(r["metric"], []).append(r)

    def _rows(self, item, arch, method, metric) -> list[dict]:
        return self.rows.get((item, arch, method), {}).get(metric, [])

    def cell(self, item, arch, method) -> str:
        """The note naming the cell(s) behind these rows; a reused image cell is said as such."""
        ids = sorted(
            {r.get("cell") for rs in self.rows.get((item, arch, method), {}).values() for r in rs} - {None, ""}
        )
        if not ids:
            ids = [f"{TASK}/{item}/{arch}-{method}"]
        reused = "" if ids[0].startswith(TASK + "/") else " (the identical main image cell, reused)"
        return ("cell " if len(ids) == 1 else "cells ") + ", ".join(ids) + reused

    def raw(self, item, arch, method, metric):
        """The first seed's value (descriptors such as sampling are the same for every seed)."""
        rs = self._rows(item, arch, method, metric)
        return None if not rs or rs[0]["value"] in ("", None) else rs[0]["value"]

    def per_seed(self, item, arch, method, metric) -> dict:
        """{seed: value or None} over the replicates."""
        rs = self._rows(item, arch, method, metric)
        return {
            r.get("seed", "") or i: None if r["value"] in ("", None) else float(r["value"]) for i, r in enumerate(rs)
        }

    def stat(self, item, arch, method, metric) -> tuple[float | None, float | None, int]:
        """(mean over the seeds, sample std or None, n); mean None when a seed has no value."""
        vals = list(self.per_seed(item, arch, method, metric).values())
        if not vals or any(v is None for v in vals):
            return None, None, len(vals)
        return replicates.summary(vals)

    def num(self, item, arch, method, metric) -> float | None:
        return self.stat(item, arch, method, metric)[0]

    def note(self, item, arch, method, metric) -> str:
        rs = self._rows(item, arch, method, metric)
        gone = [r for r in rs if r["value"] in ("", None)]
        return "" if not rs else (gone or rs)[0].get("note", "")

    def has(self, item, arch, method) -> bool:
        return (item, arch, method) in self.rows


def grid_of(section: dict, name: str) -> tuple[list[str], list[str], list[str]]:
    """(items, architectures, methods) of a named grid, from the configurations :func:`grid_configs` lists."""
    configs = grid_configs({"tasks": {TASK: section}}, TASK, name)
    return tuple(list(dict.fromkeys(c[k] for c in configs)) for k in range(3))


def average_item(dataset: str, items: Sequence[str]) -> str:
    """The item name of the mean over ``items``: the paper's own name when it is the paper's set."""
    return PAPER_AVG_ITEM if dataset == "kodak" and sorted(items) == list(PAPER_ITEMS) else "average"


def _mean(vals: list[float | None]) -> float | None:
    return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)


def _row(table, dataset, item, metric, arch, method, value, paper=None, note="", std=None, n=1) -> dict:
    value = "" if value is None else value
    delta = (float(value) - paper) if (paper is not None and value != "") else ""
    return {
        "table": table,
        "task": TASK,
        "dataset": dataset,
        "item": item,
        "metric": metric,
        "architecture": arch,
        "method": method,
        "value": value,
        "std": "" if std is None else std,
        "n": n,
        "paper_value": "" if paper is None else paper,
        "delta": delta,
        "within_noise": "",
        "note": note,
        "caveat": "",  # vanilla and IGA cells only: no uncertain recipe (iga.report.caveats)
    }


def _arch_sorted(archs):
    return sorted(archs, key=arch_key)


def _missing(cells: Cells, items, arch, method, metric) -> str:
    gone = [i for i in items if cells.num(i, arch, method, metric) is None]
    if not gone:
        return ""
    why = cells.note(gone[0], arch, method, metric) if cells.has(gone[0], arch, method) else "cell not collected"
    return f"missing for {len(gone)}/{len(items)} items ({', '.join(gone)}): {cause(why) or 'no value'}"


def _device(cells: Cells, items, archs, methods) -> str:
    devs = set()
    for i in items:
        for a in archs:
            for m in methods:
                n = cells.note(i, a, m, "time_per_iteration_s")
                if n.startswith("device: "):
                    devs.add(n[len("device: ") :].split(";")[0])
    return ", ".join(sorted(devs)) or "unknown"


# --- Table 4: sampling strategy -----------------------------------------------------------------
def table4_label(cells: Cells, items, archs, method: str) -> str:
    if method.split("-", 1)[0] == "vanilla":
        return "vanilla"
    found = {cells.raw(i, a, method, "sampling") for i in items for a in archs if cells.has(i, a, method)}
    found.discard(None)
    if len(found) > 1:
        raise ValueError(f"cells of {method} used different samplings {sorted(found)}")
    return f"IGA-{found.pop().upper()}" if found else method


def build_table4(rows: Sequence[dict], grid: tuple[list, list, list], dataset: str) -> list[dict]:
    items, archs, methods = grid
    cells = Cells(rows)
    ref = reference_lookup("4")
    avg_item = average_item(dataset, items)
    labels = [(m, table4_label(cells, items, archs, m)) for m in methods]
    seen = [lab for _, lab in labels]
    if len(set(seen)) != len(seen):
        raise ValueError(f"Table 4 grid has two cells with the same sampling: {seen}")
    out = []
    for m, lab in labels:
        for a in _arch_sorted(archs):
            for i in items:
                v, std, n = cells.stat(i, a, m, "psnr")
                note = cells.cell(i, a, m) + ("" if v is not None else "; missing")
                out.append(_row("4", dataset, i, "psnr", a, lab, v, note=note, std=std, n=n))
            avg, std, n, how = replicates.average_over([cells.per_seed(i, a, m, "psnr") for i in items])
            paper = ref.get(("image", dataset, avg_item, "psnr", a, lab)) if avg_item == PAPER_AVG_ITEM else None
            note = _missing(cells, items, a, m, "psnr") or f"mean over {len(items)} items ({', '.join(items)})"
            out.append(_row("4", dataset, avg_item, "psnr", a, lab, avg, paper, _join(note, how), std, n))
        avg, std, n, how = replicates.average_of_averages(
            [[cells.per_seed(i, a, m, "psnr") for i in items] for a in _arch_sorted(archs)]
        )
        # the paper's mean is over its three architectures: beside ours only when ours is over the same
        same = avg_item == PAPER_AVG_ITEM and _arch_sorted(archs) == list(ARCHITECTURES)
        paper = ref.get(("image", dataset, avg_item, "psnr", "average", lab)) if same else None
        note = f"mean over the architectures {', '.join(_arch_sorted(archs))}"
        out.append(_row("4", dataset, avg_item, "psnr", "average", lab, avg, paper, _join(note, how), std, n))
    # the paper's IGA (grid method "IGA", SLR sampling) against the best other sampling or vanilla
    iga = {lab for m, lab in labels if m == "IGA"}
    replicates.mark_noise(out, lambda r: r["method"] in iga)
    return out


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# --- Table 5: group size ---------------------------------------------------------------------
def table5_label(cells: Cells, items, archs, method: str) -> tuple[str, int | None]:
    if method.split("-", 1)[0] == "vanilla":
        return "vanilla", None
    found = {cells.raw(i, a, method, "patch_size") for i in items for a in archs if cells.has(i, a, method)}
    found.discard(None)
    if len(found) > 1:
        raise ValueError(f"cells of {method} used different patch sizes {sorted(found)}")
    if not found:
        return method, None
    p = int(float(found.pop()))
    return f"IGA-P{p}", p


def build_table5(rows: Sequence[dict], grid: tuple[list, list, list], dataset: str) -> list[dict]:
    items, archs, methods = grid
    cells = Cells(rows)
    avg_item = average_item(dataset, items)
    labels = [(m,) + table5_label(cells, items, archs, m) for m in methods]
    seen = [lab for _, lab, _ in labels]
    if len(set(seen)) != len(seen):
        raise ValueError(f"Table 5 grid has two cells with the same group size: {seen}")
    van = next((m for m, lab, _ in labels if lab == "vanilla"), None)
    device = _device(cells, items, archs, methods)
    tnote = f"device: {device}; per cell: median s/iteration after the first 5 iterations; mean over the items"
    out = []
    archs = _arch_sorted(archs)

    def cell_vals(a, m, metric):
        return [cells.num(i, a, m, metric) for i in items]

    for m, lab, p in labels:
        agg = {"psnr": [], "delta_vs_vanilla": [], "time_per_iteration_s": [], "peak_rss_mb": [], "peak_gpu_mb": []}
        for a in archs:
            for i in items:
                v, std, n = cells.stat(i, a, m, "psnr")
                out.append(
                    _row("5", dataset, i, "psnr", a, lab, v, note=f"{cells.cell(i, a, m)}; {TABLE5_NOTE}", std=std, n=n)
                )
                out.append(
                    _row(
                        "5",
                        dataset,
                        i,
                        "time_per_iteration_s",
                        a,
                        lab,
                        cells.num(i, a, m, "time_per_iteration_s"),
                        note=cells.note(i, a, m, "time_per_iteration_s"),
                    )
                )
            psnr, std, n, how = replicates.average_over([cells.per_seed(i, a, m, "psnr") for i in items])
            note = _join(_missing(cells, items, a, m, "psnr") or f"mean over {len(items)} items", how, TABLE5_NOTE)
            out.append(_row("5", dataset, avg_item, "psnr", a, lab, psnr, note=note, std=std, n=n))
            agg["psnr"].append(psnr)
            if lab != "vanilla":
                base = _mean(cell_vals(a, van, "psnr")) if van else None
                d = None if (psnr is None or base is None) else psnr - base
                out.append(
                    _row(
                        "5",
                        dataset,
                        avg_item,
                        "delta_vs_vanilla",
                        a,
                        lab,
                        d,
                        note=("PSNR minus vanilla's" if van else "no vanilla cell in the grid") + f"; {TABLE5_NOTE}",
                    )
                )
                agg["delta_vs_vanilla"].append(d)
            t = _mean(cell_vals(a, m, "time_per_iteration_s"))
            out.append(
                _row(
                    "5",
                    dataset,
                    avg_item,
                    "time_per_iteration_s",
                    a,
                    lab,
                    t,
                    note=_missing(cells, items, a, m, "time_per_iteration_s") or tnote,
                )
            )
            agg["time_per_iteration_s"].append(t)
            for mem in ("peak_rss_mb", "peak_gpu_mb"):
                vs = [v for v in cell_vals(a, m, mem) if v is not None]
                if vs:
                    out.append(
                        _row(
                            "5",
                            dataset,
                            avg_item,
                            mem,
                            a,
                            lab,
                            max(vs),
                            note=f"device: {device}; max over the items"
                            + ("; whole process (includes the framework's baseline)" if mem == "peak_rss_mb" else ""),
                        )
                    )
                    agg[mem].append(max(vs))
            groups = [cells.num(i, a, m, "groups") for i in items]
            groups = [g for g in groups if g is not None]
            if groups and lab != "vanilla":
                out.append(
                    _row("5", dataset, avg_item, "groups", a, lab, groups[0], note=f"group size {p}x{p}" if p else "")
                )
        # the architecture average: Δ_avg, as the paper's last column
        avg, std, n, how = replicates.average_of_averages(
            [[cells.per_seed(i, a, m, "psnr") for i in items] for a in archs]
        )
        note = _join("mean over the architectures", how, TABLE5_NOTE)
        out.append(_row("5", dataset, avg_item, "psnr", "average", lab, avg, note=note, std=std, n=n))
        if lab != "vanilla":
            out.append(
                _row(
                    "5",
                    dataset,
                    avg_item,
                    "delta_avg",
                    "average",
                    lab,
                    _mean(agg["delta_vs_vanilla"]),
                    note=f"Δ_avg: mean over the architectures of PSNR minus vanilla's; {TABLE5_NOTE}",
                )
            )
        out.append(
            _row(
                "5",
                dataset,
                avg_item,
                "time_per_iteration_s",
                "average",
                lab,
                _mean(agg["time_per_iteration_s"]),
                note=f"mean over the architectures; {tnote}",
            )
        )
        for mem in ("peak_rss_mb", "peak_gpu_mb"):
            if agg[mem]:
                out.append(
                    _row(
                        "5",
                        dataset,
                        avg_item,
                        mem,
                        "average",
                        lab,
                        max(agg[mem]),
                        note=f"device: {device}; max over the architectures",
                    )
                )
    return out


# --- the paper text vs the official code ----------------------------------------------------
def describe_variant(eq5: str | None, quirk, solver: str | None = None) -> str:
    """What a variant cell ran, and whose description it follows: the paper text, the code, or both.

    A solver other than the default ``auto`` is named: the decomposition differs, the kernel does not.
    """
    q = str(quirk) in ("1", "1.0", "True", "true")
    w = "λ_i outside the range (eq. 5 as printed)" if eq5 == "paper" else "1 outside the range (official code)"
    s = "all-groups indexing (official code quirk)" if q else "one point per group (paper text)"
    who = {
        ("paper", False): "= the paper text",
        ("official", True): "= the official code",
        ("official", False): "the code's weight, the text's sampling",
    }.get((eq5, q), "mixed")
    how = {"topk": "; top-k eigensolver", "eigh": "; dense eigh"}.get(str(solver), "")
    return f"{w}; {s} [{who}{how}]"  # the solver once, inside the label


def build_variants(rows: Sequence[dict], grid: tuple[list, list, list], dataset: str) -> list[dict]:
    items, archs, methods = grid
    cells = Cells(rows)
    ref = reference_lookup("6")
    avg_item = average_item(dataset, items)
    out = []
    for a in _arch_sorted(archs):
        for m in methods:
            eq5 = quirk = solver = None
            for i in items:
                if cells.has(i, a, m):
                    eq5, quirk = cells.raw(i, a, m, "eq5_variant"), cells.raw(i, a, m, "indexing_quirk")
                    solver = cells.raw(i, a, m, "eigensolver")
                    break
            desc = describe_variant(eq5, quirk, solver) if eq5 is not None else "not an IGA cell"
            papers = []
            for i in items:
                v, std, n = cells.stat(i, a, m, "psnr")
                paper = ref.get(("image", dataset, i, "psnr", a, "IGA"))
                papers.append(paper)
                note = f"{desc}; paper: Table 6 {a}+IGA" if paper is not None else desc
                out.append(_row("variants", dataset, i, "psnr", a, m, v, paper, note, std, n))
            paper_avg = _mean(papers) if papers and all(p is not None for p in papers) else None
            avg, std, n, how = replicates.average_over([cells.per_seed(i, a, m, "psnr") for i in items])
            note = _missing(cells, items, a, m, "psnr") or f"mean over {len(items)} items"
            if paper_avg is not None:
                note += "; paper: mean of its Table 6 values for these items"
            note = _join(desc, note, how)
            out.append(_row("variants", dataset, avg_item, "psnr", a, m, avg, paper_avg, note, std, n))
    return out


BUILDERS = {
    "table4_sampling": ("table4", build_table4),
    "table5_group_size": ("table5", build_table5),
    "variants_paper_vs_code": ("variants", build_variants),
}
