"""Tables of the toy studies: ``exp1_final_errors`` / ``exp1_convergence_with_width`` / ``exp2_final_errors``.

Long-form rows from the toy cells' ``metrics.json`` (and, for the width study, their curves); the
Markdown is a pivot of those rows through the one renderer.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from . import render, replicates
from .tables import frame, write_long_csv
from .toy_figures import ToyCell, exp1_width_rows


def _freq_note(c: ToyCell, metric: str) -> str:
    if metric.startswith("delta_f"):
        i = int(metric[len("delta_f") :].split("_")[0]) - 1
        what = "sin(2π·{:g}·θ)".format(c.m["freqs"][i]) if c.experiment == "exp1" else f"{c.m['freqs'][i]:g} Hz"
        return f"component {i + 1}: {what}, DFT bin {c.m['bins'][i]}"
    return ""


def _cell_metrics(c: ToyCell) -> list[str]:
    names = ["mse_final"]
    n = len(c.m["freqs"])
    names += [f"delta_f{i + 1}_final" for i in range(n)] + [f"delta_f{i + 1}_mean" for i in range(n)]
    names += [
        k
        for k in (
            "k_rel_init",
            "k_rel_final",
            "s_rel_init",
            "s_rel_final",
            "ke_rel_init",
            "se_rel_init",
            "se_rel_final",
            "k_rel_init_mc",
            "s_rel_init_mc",
            "se_rel_init_mc",
        )
        if k in c.m
    ]
    names += ["time_per_iteration_s"]
    return names


def _long(table: str, dataset: str, item: str, metric: str, arch: str, method: str, value, note: str, **extra) -> dict:
    return {
        "table": table,
        "task": "toy",
        "dataset": dataset,
        "item": item,
        "metric": metric,
        "architecture": arch,
        "method": method,
        "value": "" if value is None else value,
        "paper_value": "",
        "delta": "",
        "note": note,
        **extra,
    }


def final_error_rows(cells: list[ToyCell], experiment: str, dataset: str, scale_note: str) -> list[dict]:
    cells = sorted([c for c in cells if c.experiment == experiment], key=lambda c: (c.arch, c.item, c.method))
    rows = []
    per_seed: dict[tuple, list[tuple[ToyCell, float]]] = defaultdict(list)
    for c in cells:
        for name in _cell_metrics(c):
            v = c.m.get(name)
            note = _freq_note(c, name)
            if v is None:
                note = (note + "; " if note else "") + "missing: not recorded"
            rows.append(_long(experiment, dataset, c.item, name, c.arch, c.method, v, note, seed=c.seed, n=1))
            if v is not None:
                per_seed[(_strip_seed(c.item), c.arch, c.method, name)].append((c, float(v)))
    for (item, arch, method, name), vals in sorted(per_seed.items()):
        if len(vals) > 1:
            note = _freq_note(vals[0][0], name)
            seeds = ",".join(str(c.seed) for c, _ in vals)
            mean, std, n = replicates.summary([v for _, v in vals])
            rows.append(
                _long(
                    experiment,
                    dataset,
                    item,
                    name,
                    arch,
                    method,
                    mean,
                    (note + "; " if note else "") + f"mean ± std over seeds {seeds}",
                    std=std,
                    n=n,
                )
            )
    if rows:
        rows[0]["note"] = (rows[0]["note"] + "; " if rows[0]["note"] else "") + f"scale: {scale_note}"
    return rows


def _strip_seed(item: str) -> str:
    parts = item.split("_")
    return "_".join(p for p in parts if not (p.startswith("s") and p[1:].isdigit()))


def width_table_rows(cells: list[ToyCell], dataset: str, scale_note: str) -> list[dict]:
    rows = []
    for r in exp1_width_rows(cells):
        method = r["method"] if r["method"] == "vanilla" else f"{r['method']}-e{r['end']}"
        for k, v in r.items():
            if k in ("width", "seed", "end", "method", "item", "cell", "ntk_cell"):
                continue
            note = {
                "traj_dist_max": (
                    "max_t ‖r(t) − r_NTK(t)‖/‖y‖ vs the NTK-adjusted cell with the same width, seed and end"
                ),
                "traj_dist_final": "‖r(T) − r_NTK(T)‖/‖y‖ at the last evaluation",
                "traj_dist_mean": "mean over evaluations of ‖r(t) − r_NTK(t)‖/‖y‖",
            }.get(k, "")
            if k.endswith("_init_mc") or k.endswith("_init_mc_std"):
                note = "at initialisation over fresh random nets of this width (task.init_samples)"
            if r["method"] == "vanilla":
                note += f" (vanilla vs NTK-e{r['end']}: scale of the adjustment's effect)"
            rows.append(_long("exp1_width", dataset, r["item"], k, "TwoLayer", method, v, note.strip()))
    if rows:
        rows[0]["note"] = (rows[0]["note"] + "; " if rows[0]["note"] else "") + f"scale: {scale_note}"
    return rows


def _markdown(rows: list[dict], title: str, scale_note: str) -> str:
    """select → pivot (one line per item, architecture and method; one column per metric) → render."""
    if not rows:  # e.g. no NTK cell to compare with: an empty table, not a crash
        return render.markdown(render.Layout(title, scale_note, ["item", "arch", "method"], []))
    df = frame(rows)
    std, n = (df[k] if k in df else [""] * len(df) for k in ("std", "n"))
    df["text"] = [
        "—" if v == "" else f"{float(v):.4g}" + (f" ± {float(s):.2g} (n={int(k)})" if s != "" and k != "" else "")
        for v, s, k in zip(df.value, std, n)
    ]
    keys = ["item", "architecture", "method"]
    if "seed" in df and df.duplicated(keys + ["metric"]).any():  # replicates of one item (train.seeds)
        df["item"] = [f"{i}/s{s}" if s != "" else i for i, s in zip(df.item, df.seed)]
    wide = df.pivot(index=keys, columns="metric", values="text").fillna("")
    wide = wide.reindex(index=list(dict.fromkeys(zip(*(df[k] for k in keys)))), columns=list(dict.fromkeys(df.metric)))
    return render.markdown(
        render.Layout(
            title,
            scale_note,
            keys[:1] + ["arch", "method"] + list(wide.columns),
            [list(k) + list(v) for k, v in zip(wide.index, wide.values.tolist())],
        )
    )


def write_tables(
    cells: list[ToyCell], experiment: str, out_dir: Path, preset: str, dataset: str = "synthetic", scale_note: str = ""
) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    rows = final_error_rows(cells, experiment, dataset, scale_note or preset)
    p = out_dir / f"{experiment}_final_errors.csv"
    write_long_csv(rows, p, scale_note or preset)
    md = out_dir / f"{experiment}_final_errors.md"
    md.write_text(_markdown(rows, f"Toy {experiment}: final errors per cell", scale_note or preset))
    written += [p, md]
    if experiment == "exp1":
        wrows = width_table_rows(cells, dataset, scale_note or preset)
        p = out_dir / "exp1_convergence_with_width.csv"
        write_long_csv(wrows, p, scale_note or preset)
        md = out_dir / "exp1_convergence_with_width.md"
        md.write_text(_markdown(wrows, "Toy exp1: eNTK/IGA vs exact NTK by width", scale_note or preset))
        written += [p, md]
    return written
