"""Long-form results → paper-shaped tables (CSV, Markdown, LaTeX), each value beside the paper's.

Every cell's metrics become long-form rows (one value per row); tables are only shapes over
those rows, so a new metric or method is a new row, not a new code path.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# "scale": the preset's scale note on every row, so a table's CSV is never mistaken for paper-scale numbers
LONG_COLUMNS = ["table", "task", "dataset", "item", "metric", "architecture", "method",
                "value", "paper_value", "delta", "note", "scale"]
TABLE_ROW_KEYS = LONG_COLUMNS[:-1]  # a built table's rows in memory; write_long_csv adds "scale"
ROW_COLUMNS = ["preset", "task", "dataset", "item", "metric", "architecture", "method", "value", "note", "cell"]
Key = Tuple[str, str, str, str, str, str]  # task, dataset, item, metric, architecture, method


@dataclass
class TableSpec:
    """A paper table: which rows of the long form it holds and how they are laid out."""
    name: str           # file stem, e.g. "table6_image_psnr"
    paper_table: str    # number of the paper's table whose values sit beside ours
    task: str
    metrics: Sequence[str]
    title: str
    columns: str = "item"           # "item" (per-item tables) or "metric" (average tables)
    average_only: bool = False      # keep only the "average" item
    lower_is_better: Sequence[str] = ("lpips",)
    paper_metric_tables: Dict[str, str] = field(default_factory=dict)  # metric -> paper table


TABLES: Dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    TABLES[spec.name] = spec
    return spec


register_table(TableSpec("table1_image_average", "1", "image", ("psnr", "ssim", "lpips"),
                         "Average metrics of 2D colour image approximation (paper Table 1)",
                         columns="metric", average_only=True, paper_metric_tables={"psnr": "6"}))
register_table(TableSpec("table6_image_psnr", "6", "image", ("psnr",), "PSNR ↑ per image (paper Table 6)"))
register_table(TableSpec("table7_image_ssim", "7", "image", ("ssim",), "SSIM ↑ per image (paper Table 7)"))
register_table(TableSpec("table8_image_lpips", "8", "image", ("lpips",), "LPIPS ↓ per image (paper Table 8)"))
register_table(TableSpec("table3_nerf_average", "3", "nerf", ("psnr", "ssim", "lpips"),
                         "Average metrics of NeRF on Blender (paper Table 3; paper values from Table 10's averages)",
                         columns="metric", average_only=True,
                         paper_metric_tables={"psnr": "10", "ssim": "10", "lpips": "10"}))
register_table(TableSpec("table10_nerf_per_scene", "10", "nerf", ("psnr", "ssim", "lpips"),
                         "Per-scene PSNR ↑ / SSIM ↑ / LPIPS ↓ of NeRF on Blender (paper Table 10)"))


# --- reference values -------------------------------------------------------------------
def load_reference() -> List[dict]:
    with resources.files("iga.report").joinpath("reference_tables.csv").open() as f:
        return list(csv.DictReader(f))


def reference_lookup(table: str) -> Dict[Key, float]:
    out = {}
    for r in load_reference():
        if r["table"] == table:
            out[(r["task"], r["dataset"], r["item"], r["metric"], r["architecture"], r["method"])] = float(r["value"])
    return out


# --- long form --------------------------------------------------------------------------
def metric_rows(preset: str, task: str, dataset: str, item: str, arch: str, method: str,
                metrics: dict, cell: str, names: Iterable[str]) -> List[dict]:
    """One long-form row per metric; a missing metric is a row with an empty value and a note."""
    rows = []
    for name in names:
        if name not in metrics:
            continue
        v = metrics[name]
        note = ""
        if isinstance(v, dict) and v.get("missing"):
            v, note = "", "missing: " + " ".join(str(v.get("reason", "unknown reason")).split())
        elif v is None:
            v, note = "", "missing: not recorded"
        rows.append({"preset": preset, "task": task, "dataset": dataset, "item": item, "metric": name,
                     "architecture": arch, "method": method, "value": v, "note": note, "cell": cell})
    return rows


def write_long_csv(rows: List[dict], path: Path, scale_note: str) -> None:
    """A table's long-form CSV (LONG_COLUMNS), each row stamped with the run's scale note."""
    write_csv([dict(r, scale=scale_note) for r in rows], path, LONG_COLUMNS)


def write_csv(rows: List[dict], path: Path, columns: Sequence[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def read_csv(path: Path) -> List[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _mean(values: List[float]) -> float:
    return sum(values) / len(values)


def with_averages(rows: List[dict]) -> List[dict]:
    """Add an "average" item per (task, dataset, metric, architecture, method) over its items."""
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        if r["item"] == "average":
            continue
        groups.setdefault((r["task"], r["dataset"], r["metric"], r["architecture"], r["method"]), []).append(r)
    out = list(rows)
    for (task, ds, metric, arch, method), rs in groups.items():
        vals = [float(r["value"]) for r in rs if r["value"] not in ("", None)]
        missing = [r for r in rs if r["value"] in ("", None)]
        base = dict(rs[0], item="average", cell="")
        if missing:
            out.append(dict(base, value="", note=f"missing for {len(missing)}/{len(rs)} items: "
                                                  + (missing[0]["note"] or "no value")))
        else:
            out.append(dict(base, value=_mean(vals), note=f"mean over {len(vals)} items"))
    return out


def build_table(spec: TableSpec, rows: List[dict]) -> List[dict]:
    """Long-form rows of one table with the paper's values and deltas."""
    rows = [r for r in rows if r["task"] == spec.task and r["metric"] in spec.metrics]
    if spec.average_only:
        rows = [r for r in rows if r["item"] == "average"]
    refs = {m: reference_lookup(spec.paper_metric_tables.get(m, spec.paper_table)) for m in spec.metrics}
    ref_items: Dict[str, set] = {}
    for m, ref in refs.items():
        for (task, ds, item, metric, arch, method) in ref:
            ref_items.setdefault(ds, set()).add(item)
    our_items: Dict[Tuple[str, str], set] = {}
    for r in rows:
        if r["item"] != "average":
            our_items.setdefault((r["dataset"], r["metric"]), set()).add(r["item"])
    out = []
    for r in rows:
        key = (r["task"], r["dataset"], r["item"], r["metric"], r["architecture"], r["method"])
        paper = refs[r["metric"]].get(key)
        if r["item"] == "average" and paper is not None:
            # the paper's average is over its own items: compare only when ours covers the same set
            paper_set = {i for i in ref_items.get(r["dataset"], set()) if i != "average"}
            if our_items.get((r["dataset"], r["metric"]), set()) != paper_set:
                paper = None
        value = r["value"]
        delta = (float(value) - paper) if (paper is not None and value not in ("", None)) else ""
        out.append({"table": spec.paper_table, "task": r["task"], "dataset": r["dataset"], "item": r["item"],
                    "metric": r["metric"], "architecture": r["architecture"], "method": r["method"],
                    "value": value, "paper_value": "" if paper is None else paper, "delta": delta,
                    "note": r.get("note", "")})
    order = {"vanilla": 0, "FR": 1, "BN": 2, "IGA": 3}
    arch_order = {"ReLU": 0, "PE": 1, "SIREN": 2, "NeRF": 3}
    out.sort(key=lambda r: (arch_order.get(r["architecture"], 9), r["architecture"],
                            order.get(r["method"], 9), r["method"], r["item"] == "average", r["item"], r["metric"]))
    return out


# --- rendering ----------------------------------------------------------------------------
def _fmt(v, metric: str) -> str:
    if v in ("", None):
        return "—"
    v = float(v)
    return f"{v:.2f}" if metric == "psnr" else (f"{v:.3f}" if metric == "lpips" else f"{v:.4f}")


def _row_label(arch: str, method: str) -> str:
    return arch if method == "vanilla" else f"{arch}+{method}"


def _layout(spec: TableSpec, rows: List[dict]):
    cols: List[Tuple[str, str]] = []  # (item, metric)
    for r in rows:
        c = (r["item"], r["metric"])
        if c not in cols:
            cols.append(c)
    cols.sort(key=lambda c: (c[0] == "average", c[0] if spec.columns == "item" else "", list(spec.metrics).index(c[1])))
    labels: List[Tuple[str, str]] = []
    cells: Dict[Tuple[str, str, str, str], dict] = {}
    for r in rows:
        lab = (r["architecture"], r["method"])
        if lab not in labels:
            labels.append(lab)
        cells[(r["architecture"], r["method"], r["item"], r["metric"])] = r
    return cols, labels, cells


def _best(spec: TableSpec, rows: List[dict]) -> set:
    """Per architecture and column, the method with the best value (bold, as in the paper)."""
    best = {}
    for r in rows:
        if r["value"] in ("", None):
            continue
        k = (r["architecture"], r["item"], r["metric"])
        v = float(r["value"])
        better = (lambda a, b: a < b) if r["metric"] in spec.lower_is_better else (lambda a, b: a > b)
        if k not in best or better(v, best[k][0]):
            best[k] = (v, r["method"])
    return {(a, m, i, me) for (a, i, me), (_, m) in best.items()}


def render_markdown(spec: TableSpec, rows: List[dict], scale_note: str) -> str:
    cols, labels, cells = _layout(spec, rows)
    best = _best(spec, rows)
    head = [c[0] if spec.columns == "item" else c[1].upper() for c in cols]
    lines = [f"# {spec.title}", "", f"**Scale:** {scale_note}", "",
             "Each cell: ours (paper). Bold: best method per architecture in our run. "
             "— : no value (see the CSV's note column).", "",
             "| Method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    notes = set()
    for arch, method in labels:
        out = []
        for item, metric in cols:
            r = cells.get((arch, method, item, metric))
            if r is None:
                out.append("")
                continue
            s = _fmt(r["value"], metric)
            if (arch, method, item, metric) in best:
                s = f"**{s}**"
            if r["paper_value"] not in ("", None):
                s += f" ({_fmt(r['paper_value'], metric)})"
            if r["value"] in ("", None) and r.get("note"):
                notes.add(r["note"])
            out.append(s)
        lines.append(f"| {_row_label(arch, method)} | " + " | ".join(out) + " |")
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in sorted(notes)]
    return "\n".join(lines) + "\n"


def render_latex(spec: TableSpec, rows: List[dict], scale_note: str) -> str:
    cols, labels, cells = _layout(spec, rows)
    best = _best(spec, rows)
    esc = lambda s: str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    head = [esc(c[0] if spec.columns == "item" else c[1].upper()) for c in cols]
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{esc(spec.title)}. Ours (paper). {esc(scale_note)}}}",
             r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\toprule",
             "Method & " + " & ".join(head) + r" \\", r"\midrule"]
    prev_arch = None
    for arch, method in labels:
        if prev_arch is not None and arch != prev_arch:
            lines.append(r"\midrule")
        prev_arch = arch
        out = []
        for item, metric in cols:
            r = cells.get((arch, method, item, metric))
            if r is None:
                out.append("")
                continue
            s = _fmt(r["value"], metric).replace("—", "--")
            if (arch, method, item, metric) in best:
                s = rf"\textbf{{{s}}}"
            if r["paper_value"] not in ("", None):
                s += rf" \scriptsize{{({_fmt(r['paper_value'], metric)})}}"
            out.append(s)
        lines.append(f"{esc(_row_label(arch, method))} & " + " & ".join(out) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(spec: TableSpec, long_rows: List[dict], out_dir: Path, scale_note: str,
                formats: Sequence[str] = ("csv", "md", "tex")) -> List[Path]:
    rows = build_table(spec, with_averages(long_rows))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if "csv" in formats:
        write_long_csv(rows, out_dir / f"{spec.name}.csv", scale_note)
        paths.append(out_dir / f"{spec.name}.csv")
    for ext, render in (("md", render_markdown), ("tex", render_latex)):
        if ext in formats:
            p = out_dir / f"{spec.name}.{ext}"
            p.write_text(render(spec, rows, scale_note))
            paths.append(p)
    return paths


def collect(cells: List[dict], preset: str, metric_names: Sequence[str]) -> List[dict]:
    """Long-form rows from finished cells: dicts with task/dataset/item/arch/method/path."""
    rows = []
    for c in cells:
        metrics = json.loads(Path(c["path"]).read_text())
        rows += metric_rows(preset, c["task"], c["dataset"], c["item"], c["arch"], c["method"],
                            metrics, c.get("cell", ""), metric_names)
    return rows


from . import occupancy_tables  # noqa: E402,F401  (registers the occupancy TableSpecs)
