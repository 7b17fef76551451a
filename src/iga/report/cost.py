"""What every training cell cost, read only from its result record (``provenance.json``, :mod:`iga.result_record`).

Each number is one a job measured about itself (nothing is estimated, no Snakemake benchmark is read):
job wall time, training loop of that job and over all jobs that trained the cell, time per
iteration (one definition, :data:`iga.result_record.TIME_PER_ITERATION`), iterations, peak RSS and
peak GPU memory. Every row names the job that measured it; a cell whose last job trained no step
(re-evaluated only) is marked so and left out of the per-task sums and medians, never mixed with
trained cells.

A cell is named by its record's ``metrics.json`` (``training_records()`` in report.smk); the record
lies in the same folder.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..cells import Cell
from ..configs import ConfigError
from ..result_record import RECORD_FILE, RECORD_VERSION, TIME_PER_ITERATION
from . import render
from .labels import TASK_ORDER, arch_key, fmt, method_key, number
from .tables import LONG_COLUMNS, frame, write_csv

# the tables' long form, plus the seed and cell of the training job each row measured
COST_COLUMNS = [
    *LONG_COLUMNS[: LONG_COLUMNS.index("method") + 1],
    "seed",
    "cell",
    *LONG_COLUMNS[LONG_COLUMNS.index("method") + 1 :],
]

# (metric, column label, unit) in the order the tables show them; the record's key where it differs
COST_METRICS = (
    ("job_wall_time_s", "Job wall time", "s"),
    ("train_time_s", "Training loop (this job)", "s"),
    ("train_time_total_s", "Training loop (all jobs)", "s"),
    ("time_per_iteration_s", "Time / iteration", "s"),
    ("iterations", "Iterations", ""),
    ("steps_this_run", "Steps (this job)", ""),
    ("peak_rss_mb", "Peak RAM (RSS, MB)", "MB"),
    ("peak_gpu_mb", "Peak GPU memory (MB)", "MB"),
)
RECORD_KEYS = {"train_time_s": "train_time_this_run_s"}
REEVALUATED = "re-evaluated only (this job trained no step)"


def _status(rec: dict) -> str:
    if not rec:
        return "no record"
    if rec.get("record_version", 1) < RECORD_VERSION:
        return "older record"
    if not rec.get("trained_this_run"):
        return REEVALUATED
    step = rec.get("resumed_from_step")
    return "trained from scratch" if step is None else f"trained, resumed from step {step}"


def read_cell(metrics_path: Path) -> dict:
    """One cell's identity (from its record's cell id, else its folder), device, job and measured values."""
    metrics_path = Path(metrics_path)
    path = metrics_path.parent / RECORD_FILE
    rec = json.loads(path.read_text()) if path.exists() else {}
    try:
        cell = Cell.from_id(rec["cell"])
    except (KeyError, ConfigError):
        cell = Cell.from_path(metrics_path)
    status, notes = _status(rec), []
    if not rec:
        notes.append(f"no {RECORD_FILE} in {metrics_path.parent}")
    elif status == "older record":  # its times follow older definitions: none of them is shown
        notes.append(f"{path} predates the result record (version {RECORD_VERSION}); retrain the cell to measure it")
        rec = {"device": rec.get("device", "")}
    values = {m: number(rec.get(RECORD_KEYS.get(m, m))) for m, _, _ in COST_METRICS}
    if status == REEVALUATED:  # its times and memory are the evaluation job's, not the training's: none shown
        values = {m: (v if m in ("iterations", "steps_this_run") else None) for m, v in values.items()}
        notes.append(REEVALUATED)
    return {
        "task": cell.task,
        "item": cell.item,
        "arch": cell.arch,
        "method": cell.method,
        "seed": cell.seed,
        "cell": cell.id,
        "device": rec.get("device", ""),
        "invocation": rec.get("invocation", ""),
        "status": status,
        "values": values,
        "notes": notes,
        "path": str(metrics_path),
    }


def cells_frame(cells: Sequence[dict]) -> pd.DataFrame:
    """One row per cell (identity, device, job, status, values), in display order."""
    rows = [
        {k: c[k] for k in ("task", "item", "arch", "method", "seed", "cell", "device", "invocation", "status")}
        | {"trained": c["status"].startswith("trained"), "missing": "; ".join(c["notes"])}
        | c["values"]
        for c in cells
    ]
    df = pd.DataFrame(
        rows,
        columns=[
            "task",
            "item",
            "arch",
            "method",
            "seed",
            "cell",
            "device",
            "invocation",
            "status",
            "trained",
            "missing",
        ]
        + [m for m, _, _ in COST_METRICS],
    ).astype({"trained": bool})
    key = (
        df.apply(
            lambda r: (
                TASK_ORDER.index(r.task) if r.task in TASK_ORDER else len(TASK_ORDER),
                r.task,
                r["item"],
                arch_key(r.arch),
                method_key(r.method),
            ),
            axis=1,
        )
        if len(df)
        else []
    )
    return df.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)


def cost_rows(cells: Sequence[dict], datasets: dict[str, str]) -> pd.DataFrame:
    """Long form (COST_COLUMNS, table "cost"): one row per measured value; device and job in the note."""
    out = []
    for c in cells_frame(cells).to_dict("records"):
        for metric, _, _ in COST_METRICS:
            v = number(c[metric])
            if metric == "peak_gpu_mb" and v is None and not c["device"].startswith("cuda"):
                continue  # a CPU cell has no GPU memory to report
            note = f"device: {c['device'] or 'unknown'}; measured by job {c['invocation'] or 'unknown'}: {c['status']}"
            if v is None:
                note += f"; missing: {c['missing'] or 'not in the result record'}"
            elif metric == "time_per_iteration_s":
                note += f"; {TIME_PER_ITERATION}"
            out.append(
                {
                    "table": "cost",
                    "task": c["task"],
                    "dataset": datasets.get(c["task"], ""),
                    "item": c["item"],
                    "metric": metric,
                    "architecture": c["arch"],
                    "method": c["method"],
                    "seed": c["seed"],  # cost is per training job: replicates stay apart
                    "cell": c["cell"],
                    "value": "" if v is None else v,
                    "paper_value": "",
                    "delta": "",
                    "note": note,
                }
            )
    return pd.DataFrame(out, columns=COST_COLUMNS[:-1])


def _fmt(v, unit: str = "") -> str:
    if v is None or v == "" or pd.isna(v):
        return "—"
    if unit == "s":
        return f"{fmt(float(v) * 1000, digits=2)} ms" if float(v) < 1 else f"{fmt(v, digits=1)} s"
    return fmt(v, digits=0)


def layout(df: pd.DataFrame, scale_note: str) -> render.Layout:
    """Per-task summary (trained cells only), the per-cell table as its detail, the definition in the intro."""
    intro = (
        "Measured by each cell's own training job and read from its result record (`provenance.json`), never "
        "estimated. Job wall time: the training command from its start to the record (data, training, "
        "evaluation, outputs); it encloses the training loop. Training loop: optimisation steps, periodic "
        "evaluation and checkpoints, of this job and summed over every job that trained the cell (resumes). "
        f"Time per iteration: {TIME_PER_ITERATION}. Peak GPU memory: `torch.cuda.max_memory_allocated` "
        "(GPU jobs only). Devices differ per cell; times from different devices, or from a machine shared "
        "with other jobs, are not comparable."
    )
    header = [
        "Task",
        "Trained cells",
        "Re-evaluated only",
        "Σ job wall time",
        "Σ training loop (these jobs)",
        "Median time / iteration",
        "Max peak RAM (MB)",
        "Max peak GPU (MB)",
        "Devices",
    ]
    rows = []
    for task, g in df.groupby("task", sort=False):
        t = g[g.trained]
        rows.append(
            [
                task,
                str(len(t)),
                str((g.status == REEVALUATED).sum()),
                _fmt(t.job_wall_time_s.sum(min_count=1), "s"),
                _fmt(t.train_time_s.sum(min_count=1), "s"),
                _fmt(t.time_per_iteration_s.median(), "s"),
                _fmt(t.peak_rss_mb.max(), "MB"),
                _fmt(t.peak_gpu_mb.max(), "MB"),
                ", ".join(sorted(set(g.device.replace("", "unknown")))),
            ]
        )
    cells = render.Layout(
        "## Per cell",
        scale_note,
        ["Cell", "Device", "Measured by"] + [label for _, label, _ in COST_METRICS],
        [
            [c.cell, c.device or "unknown", f"{c.status}; job {c.invocation or 'unknown'}"]
            + [_fmt(getattr(c, m), u) for m, _, u in COST_METRICS]
            for c in df.itertuples()
        ],
    )
    notes = sorted({n for n in df.missing if n})
    return render.Layout(
        "Compute cost of every training cell",
        scale_note,
        header,
        rows,
        intro=intro,
        extras=[cells] if len(df) else [],
        notes=[f"Missing or marked: {n}" for n in notes] if len(df) else ["No training cells in this run."],
    )


def cost_figure(df: pd.DataFrame, out: Path, title: str):
    """Three panels over the trained cells: Σ job wall time per task; time per iteration and peak memory per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = df[df.trained]
    tasks = list(dict.fromkeys(t.task))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    if not tasks:
        for ax in axes:
            ax.text(0.5, 0.5, "no trained cells", ha="center", va="center")
            ax.set_axis_off()
    else:
        ax = axes[0]
        totals = t.groupby("task", sort=False).job_wall_time_s.sum()
        ax.bar(range(len(tasks)), [totals[k] for k in tasks], color="#4c72b0")
        ax.set_xticks(range(len(tasks)), [f"{k}\n{(t.task == k).sum()} cells" for k in tasks], fontsize=8)
        ax.set_xlabel("task")
        ax.set_ylabel("Σ job wall time (s)")
        ax.set_title("Job wall time per task (result records)")
        base = t.method.str.split("-").str[0]
        colors = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(sorted(set(base)))}
        gpu = t.peak_gpu_mb.notna().any()
        for ax, col, scale, ylabel, ttl in (
            (axes[1], "time_per_iteration_s", 1000.0, "time / iteration (ms)", "Time per iteration, per cell"),
            (
                axes[2],
                "peak_gpu_mb" if gpu else "peak_rss_mb",
                1.0,
                "peak GPU memory (MB)" if gpu else "peak RSS (MB)",
                "Peak memory, per cell",
            ),
        ):
            for b in sorted(set(base)):
                s = t[(base == b) & t[col].notna()]
                x = [tasks.index(k) + ((j % 9) - 4) * 0.06 for j, k in enumerate(s.task)]
                ax.scatter(x, s[col].astype(float) * scale, s=18, color=colors[b], label=b, alpha=0.85)
            ax.set_xticks(range(len(tasks)), tasks, rotation=20)
            ax.set_xlim(-0.6, len(tasks) - 0.4)
            ax.set_xlabel("task")
            ax.set_ylabel(ylabel)
            ax.set_title(ttl)
            for i, k in enumerate(tasks):  # an empty column says why instead of looking like a bug
                if not t[(t.task == k) & t[col].notna()].shape[0]:
                    ax.text(
                        i,
                        0.5,
                        "not recorded\nfor this task's\ncells",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="0.4",
                    )
        handles, labels = axes[1].get_legend_handles_labels()
        if handles:
            fig.legend(
                handles,
                labels,
                loc="lower center",
                ncol=min(8, len(labels)),
                fontsize=8,
                frameon=False,
                title="method (colour)",
                title_fontsize=8,
            )
    devices = sorted(set(df.device.replace("", "unknown")))
    fig.suptitle(
        "\n".join(textwrap.wrap(title, 150)) + f"\ndevice(s): {', '.join(devices) if devices else '—'}", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.9))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return fig


def write_cost(
    metrics_files: Sequence[Path],
    datasets: dict[str, str],
    out_csv: Path,
    out_md: Path,
    figure: Path | None,
    scale_note: str,
) -> pd.DataFrame:
    """cost.csv (long form), cost.md (one renderer) and the overview figure; returns the long form."""
    cells = [read_cell(Path(p)) for p in metrics_files]
    rows = cost_rows(cells, datasets)
    write_csv(frame(rows).assign(scale=scale_note), Path(out_csv), COST_COLUMNS)
    Path(out_md).parent.mkdir(parents=True, exist_ok=True)
    df = cells_frame(cells)
    Path(out_md).write_text(render.markdown(layout(df, scale_note)))
    if figure:
        cost_figure(df, Path(figure), f"Compute cost of every training cell [{scale_note}]")
    return rows
