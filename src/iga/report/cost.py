"""What every training cell cost: measured wall time, time per iteration, peak memory, device.

Sources, all measured by the run itself (nothing is estimated):

* Snakemake's ``benchmark:`` TSV of the training job, ``{WORK}/benchmarks/<cell dir under WORK>.tsv``
  (``s``: job wall-clock seconds, ``cpu_time``, ``max_rss`` in MB; the whole process: start-up,
  data loading, training, evaluation);
* the cell's ``provenance.json`` (``wall_time_s``: the training loop; ``time_per_iteration_s``: median
  of the per-iteration wall-clock differences of ``train_log.jsonl`` after the first 5 iterations;
  ``peak_rss_mb``; ``peak_gpu_mb`` = ``torch.cuda.max_memory_allocated`` where a GPU was used;
  ``device``: where it ran);
* the cell's ``metrics.json`` (``iterations``).

A cell is named by the file a task's rules append to ``COST_INPUTS`` (its ``metrics.json``);
``provenance.json`` lies in the same folder.
"""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from .tables import write_long_csv

# (metric name, column label, unit) in the order the table shows them
COST_METRICS = (
    ("job_wall_time_s", "Job wall time", "s"),
    ("train_time_s", "Training loop", "s"),
    ("time_per_iteration_s", "Time / iteration", "s"),
    ("iterations", "Iterations", ""),
    ("job_cpu_time_s", "Job CPU time", "s"),
    ("peak_rss_mb", "Peak RAM (RSS, process)", "MB"),
    ("job_max_rss_mb", "Peak RAM (RSS, benchmark)", "MB"),
    ("peak_gpu_mb", "Peak GPU memory", "MB"),
)
TASK_ORDER = ("toy", "image", "image_ablation", "occupancy", "nerf")


def _num(v) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None  # NaN -> None


def read_benchmark(path: Path) -> Optional[Dict[str, float]]:
    """Snakemake benchmark TSV → {s, cpu_time, max_rss, repeats} (median over repeats), or None."""
    path = Path(path)
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        return None
    out: Dict[str, float] = {"repeats": len(rows)}
    for key in ("s", "cpu_time", "max_rss"):
        vals = [v for v in (_num(r.get(key)) for r in rows) if v is not None]
        if vals:
            out[key] = statistics.median(vals)
    return out


def benchmark_path(cell_dir: Path, work_dir: Path, cell_id: str = "") -> Path:
    """``{WORK}/benchmarks/<cell dir relative to WORK>.tsv`` (the convention of every train rule)."""
    cell_dir, work_dir = Path(cell_dir), Path(work_dir)
    try:
        rel = cell_dir.resolve().relative_to(work_dir.resolve())
    except ValueError:
        rel = Path(cell_id) if cell_id else Path(cell_dir.name)
    return work_dir / "benchmarks" / rel.parent / f"{rel.name}.tsv"


def _identity(cell_dir: Path, work_dir: Path, prov: dict) -> Dict[str, str]:
    cell_id = prov.get("cell") or ""
    parts = cell_id.split("/") if cell_id else []
    if len(parts) < 2:
        try:
            parts = list(Path(cell_dir).resolve().relative_to(Path(work_dir).resolve()).parts)
        except ValueError:
            parts = list(Path(cell_dir).parts[-3:])
        cell_id = "/".join(parts)
    task, name = parts[0], parts[-1]
    item = "/".join(parts[1:-1]) if len(parts) > 2 else ""
    arch, _, method = name.partition("-")
    return {"task": task, "item": item, "arch": arch, "method": method or name, "cell": cell_id}


def read_cell(metrics_path: Path, work_dir: Path) -> dict:
    """Everything measured about one cell: identity, device, times, memory, and what is missing."""
    metrics_path = Path(metrics_path)
    cell_dir = metrics_path.parent
    prov_path = cell_dir / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() and metrics_path.suffix == ".json" else {}
    ident = _identity(cell_dir, work_dir, prov)
    bench_file = benchmark_path(cell_dir, work_dir, ident["cell"])
    bench = read_benchmark(bench_file)
    notes = []
    if not prov:
        notes.append(f"no provenance.json in {cell_dir}")
    if bench is None:
        notes.append(f"no benchmark TSV at {bench_file}")
    iterations = metrics.get("iterations", prov.get("settings", {}).get("train", {}).get("iterations"))
    values = {
        "job_wall_time_s": (bench or {}).get("s"),
        "train_time_s": _num(prov.get("wall_time_s")),
        "time_per_iteration_s": _num(prov.get("time_per_iteration_s")),
        "iterations": _num(iterations),
        "job_cpu_time_s": (bench or {}).get("cpu_time"),
        "peak_rss_mb": _num(prov.get("peak_rss_mb")),
        "job_max_rss_mb": (bench or {}).get("max_rss"),
        "peak_gpu_mb": _num(prov.get("peak_gpu_mb")),
    }
    return dict(ident, device=prov.get("device", ""), values=values, notes=notes,
                benchmark=str(bench_file) if bench is not None else "", path=str(metrics_path))


def cost_rows(cells: Sequence[dict], datasets: Dict[str, str]) -> List[dict]:
    """Long-form rows (LONG_COLUMNS, table "cost"): one per measured value; device in the note."""
    rows = []
    for c in sorted(cells, key=_cell_order):
        uses_gpu = c["device"].startswith("cuda")
        for metric, _, _ in COST_METRICS:
            v = c["values"].get(metric)
            if metric == "peak_gpu_mb" and v is None and not uses_gpu:
                continue  # a CPU cell has no GPU memory to report
            note = f"device: {c['device'] or 'unknown'}"
            if v is None:
                why = "; ".join(c["notes"]) or "not recorded by this task"
                note += f"; missing: {why}"
            if metric == "time_per_iteration_s" and v is not None:
                note += "; median after the first 5 iterations"
            rows.append({"table": "cost", "task": c["task"], "dataset": datasets.get(c["task"], ""),
                         "item": c["item"], "metric": metric, "architecture": c["arch"], "method": c["method"],
                         "value": "" if v is None else v, "paper_value": "", "delta": "", "note": note})
    return rows


def _cell_order(c: dict):
    t = c["task"]
    return (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t, c["item"], c["arch"], c["method"])


def _fmt(v, unit: str = "") -> str:
    if v in ("", None):
        return "—"
    v = float(v)
    if unit == "s" and v < 1:
        return f"{v * 1000:.2f} ms"
    if unit == "s":
        return f"{v:.1f} s"
    if unit == "MB":
        return f"{v:.0f}"
    return f"{v:.0f}"


def _by_cell(rows: Iterable[dict]) -> Dict[tuple, Dict[str, dict]]:
    out: Dict[tuple, Dict[str, dict]] = {}
    for r in rows:
        out.setdefault((r["task"], r["item"], r["architecture"], r["method"]), {})[r["metric"]] = r
    return out


def _device(cell_rows: Dict[str, dict]) -> str:
    for r in cell_rows.values():
        note = r.get("note", "")
        if note.startswith("device: "):
            return note[len("device: "):].split(";")[0]
    return "unknown"


def render_cost_markdown(rows: List[dict], scale_note: str) -> str:
    cells = _by_cell(rows)
    lines = ["# Compute cost of every training cell", "", f"**Scale:** {scale_note}", "",
             "Measured by this run, never estimated. Job wall time, CPU time and benchmark RSS: Snakemake's "
             "`benchmark:` TSV of the training job (the whole process: start-up, data, training, evaluation). "
             "Training loop, time per iteration (median of the per-iteration wall-clock differences after "
             "the first 5 iterations), process peak RSS and peak GPU memory (`torch.cuda.max_memory_allocated`, "
             "GPU cells only): the cell's `provenance.json`. The device is stated per cell; times from "
             "different devices (or a machine shared with other jobs) are not comparable.", ""]
    if not cells:
        return "\n".join(lines + ["No training cells in this run."]) + "\n"
    # per-task summary
    tasks: Dict[str, List[Dict[str, dict]]] = {}
    for key, cr in cells.items():
        tasks.setdefault(key[0], []).append(cr)

    def vals(crs, m):
        return [float(cr[m]["value"]) for cr in crs if m in cr and cr[m]["value"] not in ("", None)]

    lines += ["## Per task", "",
              "| Task | Cells | Σ job wall time | Σ training loop | Median time / iteration | Max peak RAM (MB) "
              "| Max peak GPU (MB) | Devices |", "|---|---|---|---|---|---|---|---|"]
    for task in sorted(tasks, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else 99, t)):
        crs = tasks[task]
        wall, train, tpi = vals(crs, "job_wall_time_s"), vals(crs, "train_time_s"), vals(crs, "time_per_iteration_s")
        ram = vals(crs, "peak_rss_mb") + vals(crs, "job_max_rss_mb")
        gpu = vals(crs, "peak_gpu_mb")
        devs = sorted({_device(cr) for cr in crs})
        lines.append(f"| {task} | {len(crs)} | {_fmt(sum(wall), 's') if wall else '—'} | "
                     f"{_fmt(sum(train), 's') if train else '—'} | "
                     f"{_fmt(statistics.median(tpi), 's') if tpi else '—'} | {_fmt(max(ram), 'MB') if ram else '—'} | "
                     f"{_fmt(max(gpu), 'MB') if gpu else '—'} | {', '.join(devs)} |")
    lines += ["", "## Per cell", "",
              "| Cell | Device | " + " | ".join(label for _, label, _ in COST_METRICS) + " |",
              "|---" * (len(COST_METRICS) + 2) + "|"]
    notes = set()
    for (task, item, arch, method), cr in cells.items():
        out = []
        for metric, _, unit in COST_METRICS:
            r = cr.get(metric)
            out.append(_fmt(r["value"], unit) if r else "—")
            if r and r["value"] in ("", None) and "missing:" in r["note"]:
                notes.add(r["note"].split("missing: ", 1)[1])
        cell = "/".join(p for p in (task, item, f"{arch}-{method}") if p)
        lines.append(f"| {cell} | {_device(cr)} | " + " | ".join(out) + " |")
    if notes:
        lines += ["", "Missing values:"] + [f"- {n}" for n in sorted(notes)]
    return "\n".join(lines) + "\n"


def cost_figure(rows: List[dict], out: Path, title: str):
    """Three panels: Σ job wall time per task; time per iteration per cell; peak memory per cell."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _by_cell(rows)
    tasks = sorted({k[0] for k in cells}, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else 99, t))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    if not tasks:
        for ax in axes:
            ax.text(0.5, 0.5, "no training cells", ha="center", va="center")
            ax.set_axis_off()
    else:
        colors = plt.get_cmap("tab10")
        bases = sorted({k[3].split("-", 1)[0] for k in cells})  # colour by base method (vanilla, FR, BN, IGA, ...)
        mcol = {m: colors(i % 10) for i, m in enumerate(bases)}

        def per_task(metric):
            return {t: [(k, float(cr[metric]["value"])) for k, cr in cells.items()
                        if k[0] == t and metric in cr and cr[metric]["value"] not in ("", None)] for t in tasks}

        walls = per_task("job_wall_time_s")
        totals = [sum(v for _, v in walls[t]) for t in tasks]
        ax = axes[0]
        bars = ax.bar(range(len(tasks)), totals, color="#4c72b0")
        for b, t in zip(bars, tasks):
            ax.annotate(f"{len([k for k in cells if k[0] == t])} cells", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(tasks)), tasks, rotation=20)
        ax.set_xlabel("task")
        ax.set_ylabel("Σ job wall time (s)")
        ax.set_title("Wall time per task (benchmark TSVs)")

        def strip(ax, data, ylabel, ttl, scale=1.0, log=True):
            seen = set()
            for i, t in enumerate(tasks):
                pts = sorted(data[t])
                for j, (k, v) in enumerate(pts):
                    x = i + ((j % 9) - 4) * 0.06
                    base = k[3].split("-", 1)[0]
                    lab = base if base not in seen else None
                    seen.add(base)
                    ax.scatter([x], [v * scale], s=18, color=mcol[base], label=lab, alpha=0.85)
            ax.set_xticks(range(len(tasks)), tasks, rotation=20)
            ax.set_xlim(-0.6, len(tasks) - 0.4)
            ax.set_xlabel("task")
            ax.set_ylabel(ylabel)
            ax.set_title(ttl)
            for i, t in enumerate(tasks):  # an empty column says why instead of looking like a bug
                if not data[t]:
                    ax.text(i, 0.5, "not recorded\nfor this task's\ncells", transform=ax.get_xaxis_transform(),
                            ha="center", va="center", fontsize=7, color="0.4")
            if log and any(data[t] for t in tasks) and all(v > 0 for t in tasks for _, v in data[t]):
                ax.set_yscale("log")

        strip(axes[1], per_task("time_per_iteration_s"), "time / iteration (ms)",
              "Median time per iteration, per cell", 1000.0)
        gpu = per_task("peak_gpu_mb")
        if any(gpu[t] for t in tasks):
            strip(axes[2], gpu, "peak GPU memory (MB)", "Peak GPU memory, per cell", log=False)
        else:
            strip(axes[2], per_task("peak_rss_mb"), "peak RSS (MB)", "Peak process RAM, per cell (no GPU used)", log=False)
        handles, labels = axes[1].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=8, frameon=False,
                       title="method (colour)", title_fontsize=8)
    devices = sorted({_device(cr) for cr in cells.values()})
    import textwrap
    fig.suptitle("\n".join(textwrap.wrap(title, 150)) + f"\ndevice(s): {', '.join(devices) if devices else '—'}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.9))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return fig


def write_cost(metrics_files: Sequence[Path], work_dir: Path, datasets: Dict[str, str], out_csv: Path,
               out_md: Path, figure: Optional[Path], scale_note: str) -> List[dict]:
    cells = [read_cell(Path(p), Path(work_dir)) for p in metrics_files]
    rows = cost_rows(cells, datasets)
    write_long_csv(rows, Path(out_csv), scale_note)
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    Path(out_md).write_text(render_cost_markdown(rows, scale_note))
    if figure:
        cost_figure(rows, Path(figure), f"Compute cost of every training cell [{scale_note}]")
    return rows
