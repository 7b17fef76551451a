"""Long-form results → paper-shaped tables (CSV, Markdown, LaTeX, HTML), each value beside the paper's.

Every cell's metrics become long-form rows (one value per row, a pandas DataFrame); a table is
select → pivot → format (:mod:`.labels`) → render (:mod:`.render`), so a new metric or method is a
new row, not a new code path.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from ..nerf.splits import HELD_OUT_WORDS
from . import render, replicates
from .caveats import CAVEAT_SEP, cell_caveat, table_caveats
from .labels import IOU_ZERO, LOWER_IS_BETTER, arch_key, cause, fmt, method_key, metric_label, reason, row_label

# "scale": the preset's scale note on every row, so a table's CSV is never mistaken for paper-scale numbers
LONG_COLUMNS = [
    "table",
    "task",
    "dataset",
    "item",
    "metric",
    "architecture",
    "method",
    "value",  # the mean over the seeds (the value itself for one seed)
    "std",  # sample standard deviation over the seeds; empty for one seed
    "n",  # number of seeds
    "paper_value",
    "delta",
    "within_noise",  # IGA rows: 1 when the gap to the best other method is within the seeds' spread, else 0
    "note",
    "caveat",  # the cell's uncertain-recipe caveat (iga.report.caveats), from its resolved settings
    "scale",
]
TABLE_ROW_KEYS = LONG_COLUMNS[:-1]  # a built table's rows in memory; write_long_csv adds "scale"
# the collected long form: one row per cell (seed) and metric
ROW_COLUMNS = [
    "preset",
    "task",
    "dataset",
    "item",
    "metric",
    "architecture",
    "method",
    "seed",
    "value",
    "note",
    "cell",
    "caveat",
]
GROUP_KEYS = ["task", "dataset", "item", "metric", "architecture", "method"]  # one table entry; seeds vary within
Key = tuple[str, str, str, str, str, str]  # task, dataset, item, metric, architecture, method


@dataclass
class TableSpec:
    """A paper table: which rows of the long form it holds and how they are laid out."""

    name: str  # file stem, e.g. "table6_image_psnr"
    paper_table: str  # number of the paper's table whose values sit beside ours
    task: str
    metrics: Sequence[str]
    title: str
    columns: str = "item"  # "item" (per-item tables) or "metric" (average tables)
    average_only: bool = False  # keep only the "average" item
    paper_metric_tables: dict[str, str] = field(default_factory=dict)  # metric -> paper table


TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    TABLES[spec.name] = spec
    return spec


for _spec in (
    TableSpec(
        "table1_image_average",
        "1",
        "image",
        ("psnr", "ssim", "lpips"),
        "Average metrics of 2D colour image approximation (paper Table 1)",
        columns="metric",
        average_only=True,
        paper_metric_tables={"psnr": "6"},
    ),
    TableSpec("table6_image_psnr", "6", "image", ("psnr",), "PSNR ↑ per image (paper Table 6)"),
    TableSpec("table7_image_ssim", "7", "image", ("ssim",), "SSIM ↑ per image (paper Table 7)"),
    TableSpec("table8_image_lpips", "8", "image", ("lpips",), "LPIPS ↓ per image (paper Table 8)"),
    TableSpec(
        "table3_nerf_average",
        "3",
        "nerf",
        ("psnr", "ssim", "lpips"),
        "Average metrics of NeRF on Blender (paper Table 3; paper values from Table 10's averages)",
        columns="metric",
        average_only=True,
        paper_metric_tables={"psnr": "10", "ssim": "10", "lpips": "10"},
    ),
    TableSpec(
        "table10_nerf_per_scene",
        "10",
        "nerf",
        ("psnr", "ssim", "lpips"),
        "Per-scene PSNR ↑ / SSIM ↑ / LPIPS ↓ of NeRF on Blender (paper Table 10)",
    ),
    # the paper prints the per-shape IoU twice (Table 9, appendix Table 11); Table 2 is its "average" rows
    TableSpec(
        "table2_occupancy_average",
        "2",
        "occupancy",
        ("iou",),
        "Average IoU of 3D shape representation (paper Table 2)",
        columns="metric",
        average_only=True,
        paper_metric_tables={"iou": "9"},
    ),
    TableSpec(
        "table9_occupancy_iou", "9", "occupancy", ("iou",), "IoU ↑ per shape (paper Table 9 / appendix Table 11)"
    ),
):
    register_table(_spec)


# --- reference values -------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_reference() -> pd.DataFrame:
    with resources.files("iga.report").joinpath("reference_tables.csv").open() as f:
        return pd.read_csv(f, dtype={"table": str, "item": str})


def reference_lookup(table: str) -> dict[Key, float]:
    ref = load_reference()
    ref = ref[ref.table == table]
    keys = zip(ref.task, ref.dataset, ref.item, ref.metric, ref.architecture, ref.method)
    return {k: float(v) for k, v in zip(keys, ref.value)}


# --- long form --------------------------------------------------------------------------
def frame(rows) -> pd.DataFrame:
    """Long-form rows (a DataFrame or dicts) as a DataFrame of exact strings/numbers (no NaN)."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return df.astype(object).fillna("")


def read_long(paths: Iterable[Path]) -> pd.DataFrame:
    """Long CSVs as written, values kept as text so a table's CSV repeats them digit for digit."""
    return pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths], ignore_index=True)


def metric_rows(
    preset: str,
    task: str,
    dataset: str,
    item: str,
    arch: str,
    method: str,
    metrics: dict,
    cell: str,
    names: Iterable[str],
    seed: int | str = "",
    caveat: str = "",
) -> list[dict]:
    """One long-form row per metric; a missing metric is a row with an empty value and a note.

    A cell evaluated on other views than the test split (NeRF on a scene without one) says so in
    every row's note (``evaluation.note`` of its metrics.json), ahead of any missing-value reason.
    """
    rows = []
    views = (metrics.get("evaluation") or {}).get("note", "")
    for name in names:
        v, note = metrics.get(name), ""
        if isinstance(v, dict) and v.get("missing"):
            v, note = "", reason("missing: " + str(v.get("reason", "unknown reason")))
        elif v is None:
            v, note = "", "missing: not recorded"
        note = "; ".join(n for n in (views, note) if n)
        rows.append(
            {
                "preset": preset,
                "task": task,
                "dataset": dataset,
                "item": item,
                "metric": name,
                "architecture": arch,
                "method": method,
                "seed": seed,
                "value": v,
                "note": note,
                "cell": cell,
                "caveat": caveat,
            }
        )
    return rows


def write_csv(rows, path: Path, columns: Sequence[str]) -> None:
    """Rows (dicts or a DataFrame) → CSV with exactly ``columns``, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    tmp.replace(path)


def write_long_csv(rows, path: Path, scale_note: str) -> None:
    """A table's long-form CSV (LONG_COLUMNS), each row stamped with the run's scale note."""
    write_csv(frame(rows).assign(scale=scale_note), path, LONG_COLUMNS)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _average(g: pd.DataFrame) -> dict:
    missing = g[g.value == ""]
    caveats = CAVEAT_SEP.join(dict.fromkeys(c for c in g.get("caveat", []) if c))  # one per distinct setting
    base = dict(g.iloc[0], item="average", cell="", **({"caveat": caveats} if "caveat" in g else {}))
    views = "".join(f"; {n}" for n in view_notes(g))  # the averaged items' held-out views, kept
    if len(missing):
        first = _without_views(missing.note.iloc[0])
        return dict(
            base,
            value="",
            note=f"missing for {len(missing)}/{len(g)} items: " + (cause(first) or "no value") + views,
        )
    return dict(base, value=sum(float(v) for v in g.value) / len(g), note=f"mean over {len(g)} items{views}")


def _without_views(note: str) -> str:
    return "; ".join(p for p in str(note).split("; ") if not p.startswith(HELD_OUT_WORDS))


def view_notes(rows: pd.DataFrame) -> list[str]:
    """The rows' held-out-views notes, each with the items it covers: "held-out … (every 8th), no test split: lego".

    Per-item rows name their item; an average row's note already carries its items."""
    items: dict[str, list[str]] = {}
    for item, note in zip(rows["item"], rows["note"]):
        for part in str(note).split("; "):
            if not part.startswith(HELD_OUT_WORDS):
                continue
            words, _, named = part.partition(": ")
            for i in named.split(", ") if named else ([] if item == "average" else [item]):
                items.setdefault(words, [])
                if i not in items[words]:
                    items[words].append(i)
    return [f"{w}: {', '.join(i)}" if i else w for w, i in items.items()]


def with_averages(rows) -> pd.DataFrame:
    """Add an "average" item per (task, dataset, metric, architecture, method) over its items.

    Per seed when every item has the same seeds (so the average has a spread over seeds too); else
    one row, the mean of the items' means, marked ``mixed`` (no spread; see :func:`by_seed`).
    """
    df = frame(rows)
    if "seed" not in df.columns:  # a long form written before seeds: one replicate per row
        df["seed"] = ""
    out = []
    per_item = df[df.item != "average"]
    # an average is over the items every method has; one that lacks some has none (never a smaller set)
    every = per_item.groupby(["task", "dataset", "metric"], sort=False).item.agg(lambda s: sorted(set(s))).to_dict()
    groups = per_item.groupby(["task", "dataset", "metric", "architecture", "method"], sort=False)
    for key, g in groups:
        absent = [i for i in every[key[:3]] if i not in set(g.item)]
        if absent:
            n = len(every[key[:3]])
            note = f"missing for {len(absent)}/{n} items: not run ({', '.join(absent)})"
            out.append(dict(g.iloc[0], item="average", cell="", seed="", mixed=1, value="", note=note))
            continue
        if g.groupby("item", sort=False).seed.agg(lambda s: tuple(sorted(s))).nunique() == 1:
            out += [_average(gs) for _, gs in g.groupby("seed", sort=False)]
            continue
        means = [
            dict(gi.iloc[0], value=_mean_or_blank(gi.value), note=_first_missing_note(gi) or gi.note.iloc[0])
            for _, gi in g.groupby("item", sort=False)
        ]
        row = _average(pd.DataFrame(means))
        row.update(seed="", mixed=1)
        if row["value"] != "":
            row["note"] = (
                f"mean over {len(means)} items of each item's mean over its seeds (their seeds differ: no spread)"
            )
        out.append(row)
    return pd.concat([df, pd.DataFrame(out)], ignore_index=True).astype(object).fillna("")


def _first_missing_note(g: pd.DataFrame) -> str:
    """The reason a seed of this item has no value (kept so the average can say why), else ""."""
    missing = g[g.value == ""]
    return str(missing.note.iloc[0]) if len(missing) else ""


def _mean_or_blank(values) -> float | str:
    return "" if any(v == "" for v in values) else sum(float(v) for v in values) / len(values)


def by_seed(rows) -> pd.DataFrame:
    """One row per table entry (GROUP_KEYS): value = mean over its seeds, ``std`` (sample), ``n``."""
    df = frame(rows)
    if "seed" not in df.columns:
        df["seed"] = ""
    out = []
    for _, g in df.groupby(GROUP_KEYS, sort=False):
        first = dict(g.iloc[0])
        mixed = bool(first.get("mixed", ""))
        missing = g[g.value == ""]
        seeds = ", ".join(str(s) for s in g.seed if s != "")
        if len(g) == 1:
            out.append(dict(first, std="", n="" if mixed else 1))
        elif len(missing):
            why = cause(missing.note.iloc[0]) or "no value"
            out.append(
                dict(first, value="", std="", n=len(g), note=f"missing for {len(missing)}/{len(g)} seeds: {why}")
            )
        else:
            mean, std, n = replicates.summary([float(v) for v in g.value])
            note = "; ".join(x for x in (first.get("note", ""), f"mean ± std over seeds {seeds}") if x)
            out.append(dict(first, value=mean, std=std, n=n, note=note))
    return pd.DataFrame(out, columns=list(df.columns) + [c for c in ("std", "n") if c not in df.columns])


def build_table(spec: TableSpec, rows) -> pd.DataFrame:
    """Long-form rows of one table (TABLE_ROW_KEYS) with the paper's values and deltas.

    ``rows``: the collected long form (one row per seed) or rows already reduced by :func:`by_seed`.
    """
    df = frame(rows)
    if "n" not in df.columns:  # not yet reduced over the seeds (averages added unless already there)
        df = by_seed(df if (df.item == "average").any() else with_averages(df))
    df = df[(df.task == spec.task) & df.metric.isin(spec.metrics)]
    # the items each row's average is over (before an average-only table drops the per-item rows)
    ours = df[df.item != "average"].groupby(["dataset", "metric", "architecture", "method"]).item.agg(set).to_dict()
    if spec.average_only:
        df = df[df.item == "average"]
    refs = {m: reference_lookup(spec.paper_metric_tables.get(m, spec.paper_table)) for m in spec.metrics}
    ref_items: dict[str, set] = {}
    for ref in refs.values():
        for k in ref:
            ref_items.setdefault(k[1], set()).add(k[2])
    out = []
    for r in df.to_dict("records"):
        paper = refs[r["metric"]].get((r["task"], r["dataset"], r["item"], r["metric"], r["architecture"], r["method"]))
        # the paper's average is over its own items: compare only when ours covers the same set
        if r["item"] == "average" and ours.get((r["dataset"], r["metric"], r["architecture"], r["method"]), set()) != (
            ref_items.get(r["dataset"], set()) - {"average"}
        ):
            paper = None
        value, note = r["value"], reason(r.get("note", ""))
        if r["metric"] == "iou" and value != "" and float(value) == 0.0:
            note = "; ".join(n for n in (note, IOU_ZERO) if n)
        out.append(
            {
                **{k: r[k] for k in TABLE_ROW_KEYS if k in r},
                "table": spec.paper_table,
                "within_noise": "",
                "note": note,
                "caveat": r.get("caveat", ""),
                "paper_value": "" if paper is None else paper,
                "delta": (float(value) - paper) if (paper is not None and value != "") else "",
            }
        )
    replicates.mark_noise(out, lambda r: r["method"] == "IGA", lambda m: m in LOWER_IS_BETTER)
    out.sort(
        key=lambda r: (
            arch_key(r["architecture"]),
            method_key(r["method"]),
            r["item"] == "average",
            r["item"],
            r["metric"],
        )
    )
    return pd.DataFrame(out, columns=TABLE_ROW_KEYS)


# --- layout -----------------------------------------------------------------------------
def _best(table: pd.DataFrame) -> pd.Series:
    """Per architecture and column, the method with the best value (bold, as in the paper)."""
    t = table[table.value != ""].assign(v=lambda d: d.value.astype(float))
    t["v"] = t.v.where(~t.metric.isin(LOWER_IS_BETTER), -t.v)
    winners = t.sort_values("v", ascending=False, kind="stable").groupby(["architecture", "item", "metric"]).head(1)
    return table.index.isin(winners.index)


def caveat_marks(table: pd.DataFrame, labels: list[tuple[str, str]]) -> tuple[dict, list[str]]:
    """Numbered marks for the rows with a caveat ({(arch, method): " [1]"}) and the notes they point to."""
    caveats = table.caveat if "caveat" in table else pd.Series("", index=table.index)
    texts: list[str] = []
    marks = {}
    for lab in labels:
        mine = table[(table.architecture == lab[0]) & (table.method == lab[1])]
        found = dict.fromkeys(c for cs in caveats[mine.index] if cs for c in str(cs).split(CAVEAT_SEP) if c)
        for c in found:
            if c not in texts:
                texts.append(c)
        if found:
            marks[lab] = " " + "".join(f"[{texts.index(c) + 1}]" for c in found)
    return marks, [f"[{i + 1}] {c}" for i, c in enumerate(texts)]


def untranscribed(spec: TableSpec, metrics) -> dict[str, list[str]]:
    """{paper table: metrics of ``spec`` it should give but that have no transcribed value at all}."""
    out: dict[str, list[str]] = {}
    for m in metrics:
        ref = spec.paper_metric_tables.get(m, spec.paper_table)
        if not reference_lookup(ref):
            out.setdefault(ref, []).append(m)
    return out


def layout(spec: TableSpec, table: pd.DataFrame, scale_note: str) -> render.Layout:
    """select (the built table) → pivot (method × column) → format → one Layout for every output format."""
    pairs = list(zip(table.item, table.metric))
    cols = sorted(
        dict.fromkeys(pairs),
        key=lambda c: (c[0] == "average", c[0] if spec.columns == "item" else "", list(spec.metrics).index(c[1])),
    )
    t = table.assign(best=_best(table), col=[cols.index(p) for p in pairs])
    labels = list(dict.fromkeys(zip(t.architecture, t.method)))
    wide = t.pivot(
        index=["architecture", "method"],
        columns="col",
        values=["value", "std", "n", "paper_value", "best", "within_noise"],
    )
    has_paper = bool((t.paper_value != "").any())
    missing_refs = untranscribed(spec, [m for m in spec.metrics if m in set(t.metric)])
    noisy = bool((t.within_noise.astype(str) == "1").any())
    spread = any(replicates.count(n) > 1 for n in t.n)

    def entry(lab, i):
        if pd.isna(wide.loc[lab, ("value", i)]):
            return ""
        paper, metric = wide.loc[lab, ("paper_value", i)], cols[i][1]
        mark = replicates.NOISE_MARK if str(wide.loc[lab, ("within_noise", i)]) == "1" else ""
        return render.Entry(
            replicates.text(wide.loc[lab, ("value", i)], wide.loc[lab, ("std", i)], wide.loc[lab, ("n", i)], metric)
            + mark,
            bool(wide.loc[lab, ("best", i)]),
            fmt(paper, metric) if paper != "" else "",
        )

    one = len(spec.metrics) == 1 and spec.columns == "item"
    header = ["Method"] + [
        c[0] if one else (metric_label(c[1]) if spec.columns == "metric" else f"{c[0]} {metric_label(c[1])}")
        for c in cols
    ]
    notes = sorted({_without_views(n) for n, v in zip(t.note, t.value) if n and (v == "" or IOU_ZERO in n)})
    # which views were evaluated, when not the test split: per-item rows name them; else the averages
    per_item = t[t["item"] != "average"]
    notes = [f"Evaluated on {n}" for n in view_notes(per_item if len(per_item) else t)] + notes
    notes += [replicates.NOISE_RULE] if noisy else []
    marks, caveat_notes = caveat_marks(t, labels)
    notes = caveat_notes + notes + table_caveats(spec.task, t.method)
    notes += [
        f"No paper values for {', '.join(metric_label(m) for m in ms)}: the body of the paper's Table {ref} is not "
        "in the paper's text here (only its caption), so they are not transcribed"
        for ref, ms in missing_refs.items()
    ]
    return render.Layout(
        spec.title,
        scale_note,
        header,
        [[row_label(*lab) + marks.get(lab, "")] + [entry(lab, i) for i in range(len(cols))] for lab in labels],
        groups=[a for a, _ in labels],
        caption="Ours (paper)" if has_paper else "Ours",
        intro=(
            "Each cell: ours (paper)."
            if has_paper
            else "Each cell: ours (paper values not transcribed: see Notes)."
            if sum(map(len, missing_refs.values())) == t.metric.nunique()
            else "Each cell: ours (no paper value for these items)."
        )
        + " Bold: best method per architecture in our run. — : no value (see Notes)."
        + (" " + replicates.SPREAD_INTRO if spread else ""),
        notes=notes,
    )


def write_table(
    spec: TableSpec, long_rows, out_dir: Path, scale_note: str, formats: Sequence[str] = ("csv", "md", "tex")
) -> list[Path]:
    rows = build_table(spec, long_rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if "csv" in formats:
        write_long_csv(rows, out_dir / f"{spec.name}.csv", scale_note)
        paths.append(out_dir / f"{spec.name}.csv")
    return paths + render.write(layout(spec, rows, scale_note), out_dir, spec.name, formats)


def collect(cells: list[dict], preset: str, metric_names: Sequence[str]) -> list[dict]:
    """Long-form rows from finished cells: dicts with task/dataset/item/arch/method/seed/path."""
    rows = []
    for c in cells:
        metrics = json.loads(Path(c["path"]).read_text())
        prov = Path(c["path"]).with_name("provenance.json")  # the cell's resolved settings
        record = json.loads(prov.read_text()) if prov.exists() else {}
        settings = record.get("cell_settings", record.get("settings", {}))  # the cell's, as the config resolves them
        caveat = cell_caveat(c["task"], c["arch"], c["method"], settings) or ""
        rows += metric_rows(
            preset,
            c["task"],
            c["dataset"],
            c["item"],
            c["arch"],
            c["method"],
            metrics,
            c.get("cell", ""),
            metric_names,
            c.get("seed", ""),
            caveat,
        )
    return rows
