"""The paper's main claim checked cell by cell: is IGA the best method here, and in the paper?

Read from the written paper tables (their CSVs: Tables 1/6 images, 2/9 occupancy, 3/10 NeRF), so every
number is the one a table prints. For each (table, item, metric, architecture) with an IGA row: IGA's
value and the best other method's (mean ± std over the seeds where n > 1), the gap (positive: IGA better,
whatever the metric's direction), whether it is within the seeds' noise (:mod:`.replicates`' rule), the
same comparison in the paper's values, and a verdict. FINDINGS cites this table instead of copying numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from . import render, replicates
from .labels import LOWER_IS_BETTER, arch_key, fmt, metric_label, number

CLAIM_TABLES = ("1", "6", "2", "9", "3", "10")  # averages and per-item values of images, occupancy, NeRF
AVERAGE_OF = {"6": "1", "9": "2", "10": "3"}  # a per-item table's average rows repeat its average table's
COLUMNS = [
    "table",
    "task",
    "item",
    "metric",
    "architecture",
    "iga",
    "iga_std",
    "iga_n",
    "best_other",
    "best_other_value",
    "best_other_std",
    "best_other_n",
    "gap",
    "within_noise",
    "paper_iga",
    "paper_best_other",
    "paper_best_other_value",
    "paper_gap",
    "verdict",
    "scale",
]


def _better(a: float, b: float, metric: str) -> float:
    """a's lead over b in the metric's good direction."""
    return b - a if metric in LOWER_IS_BETTER else a - b


def _best(rows: pd.DataFrame, column: str, metric: str) -> pd.Series | None:
    have = rows[rows[column].map(number).notna()]
    if have.empty:
        return None
    values = have[column].map(number)
    return have.loc[values.idxmin() if metric in LOWER_IS_BETTER else values.idxmax()]


def iga_best(gap: float | None) -> bool:
    """IGA leads the best other method, or ties it (the paper prints ties: Table 9, PE on armadillo and
    bunny); no gap (None or NaN) is not best."""
    g = number(gap)
    return g is not None and g >= 0


def standing(gap: float) -> str:
    return "IGA tied best" if gap == 0 else "IGA best" if gap > 0 else "IGA not best"


def verdict(gap: float | None, noise: bool, paper_gap: float | None) -> str:
    if gap is None:
        return "no value here"
    here = standing(gap)
    if noise:
        here += " (within noise)"
    if paper_gap is None:
        return f"{here}; no paper value"
    if iga_best(gap) == iga_best(paper_gap):
        return f"agrees with the paper: {here}" + (", paper: IGA tied best" if paper_gap == 0 and gap else "")
    return f"differs from the paper: {here}, paper: {standing(paper_gap)}"


def build(tables: pd.DataFrame) -> pd.DataFrame:
    """One claim row per (table, item, metric, architecture) that has an IGA row and another method."""
    df = tables[tables["table"].astype(str).isin(CLAIM_TABLES)].copy()
    df["table"] = df["table"].astype(str)
    for per_item, average in AVERAGE_OF.items():
        repeated = set(df.loc[df["table"] == average, "item"])
        df = df[~((df["table"] == per_item) & df["item"].isin(repeated))]
    out = []
    for (table, item, metric, arch), rows in df.groupby(["table", "item", "metric", "architecture"], sort=False):
        iga = rows[rows["method"] == "IGA"]
        others = rows[rows["method"] != "IGA"]
        if iga.empty or others.empty:
            continue
        i = iga.iloc[0]
        best = _best(others, "value", metric)
        value = number(i["value"])
        gap = noise = None
        if best is not None and value is not None:
            gap = _better(value, float(best["value"]), metric)
            noise = replicates.within_noise(i.to_dict(), best.to_dict())
        # the paper's best other among the methods that have a value here, so both sides compare the same set
        have = others[others["value"].map(number).notna()]
        paper_best = _best(have if value is not None and not have.empty else others, "paper_value", metric)
        paper_iga = number(i["paper_value"])
        if value is None and paper_iga is None:  # nothing to compare (e.g. LPIPS offline, no paper value)
            continue
        paper_gap = (
            _better(paper_iga, float(paper_best["paper_value"]), metric)
            if paper_best is not None and paper_iga is not None
            else None
        )
        out.append(
            {
                "table": table,
                "task": i["task"],
                "item": item,
                "metric": metric,
                "architecture": arch,
                "iga": value,
                "iga_std": number(i.get("std")),
                "iga_n": replicates.count(i.get("n")),
                "best_other": best["method"] if best is not None else "",
                "best_other_value": number(best["value"]) if best is not None else None,
                "best_other_std": number(best.get("std")) if best is not None else None,
                "best_other_n": replicates.count(best.get("n")) if best is not None else None,
                "gap": gap,
                "within_noise": int(bool(noise)) if gap is not None else None,
                "paper_iga": paper_iga,
                "paper_best_other": paper_best["method"] if paper_best is not None else "",
                "paper_best_other_value": number(paper_best["paper_value"]) if paper_best is not None else None,
                "paper_gap": paper_gap,
                "verdict": verdict(gap, bool(noise), paper_gap),
                "scale": i.get("scale", ""),
            }
        )
    claims = pd.DataFrame(out, columns=COLUMNS)
    order = {t: k for k, t in enumerate(CLAIM_TABLES)}
    claims["_t"] = claims["table"].map(order)
    claims["_avg"] = claims["item"] != "average"  # each table's average first
    claims["_a"] = claims["architecture"].map(arch_key)
    return claims.sort_values(["_t", "_avg", "item", "metric", "_a"], kind="stable").drop(columns=["_t", "_avg", "_a"])


def spread(value, std, n, metric) -> str:
    return replicates.text(or_blank(value), or_blank(std), n, metric)


def or_blank(x):
    """A claims number as the renderers take it: "" for none (NaN is pandas' empty cell)."""
    v = number(x)
    return "" if v is None else v


def signed(x, metric: str) -> str:
    """A gap in the metric's digits (labels.fmt), with its sign; "—" for none."""
    v = number(x)
    return fmt(v, metric) if v is None or v < 0 else "+" + fmt(v, metric)


def summary(claims: pd.DataFrame) -> str:
    """One sentence: in how many comparisons IGA is best here, within noise, and agreeing with the paper."""
    has = claims["gap"].notna()
    best_here = int(claims.loc[has, "gap"].map(iga_best).sum())
    noisy = int((claims.loc[has, "within_noise"] == 1).sum())
    with_paper = claims["paper_gap"].notna() & has
    mine, theirs = claims.loc[with_paper, "gap"].map(iga_best), claims.loc[with_paper, "paper_gap"].map(iga_best)
    agree = int((mine == theirs).sum())
    n_paper = int(with_paper.sum())
    return (
        f"IGA is the best method in {best_here} of {int(has.sum())} comparisons here"
        + (f" ({noisy} of them within the seeds' noise)" if noisy else "")
        + (
            f"; of the {n_paper} with a paper value, {agree} agree with the paper on whether IGA is best."
            if n_paper
            else "; the paper has no values for these cells."
        )
    )


def layout(claims: pd.DataFrame) -> render.Layout:
    rows, has = [], claims["gap"].notna()
    for c in claims.itertuples(index=False):
        gap, paper_gap = signed(c.gap, c.metric), signed(c.paper_gap, c.metric)
        other = f"{c.best_other} {spread(c.best_other_value, c.best_other_std, c.best_other_n, c.metric)}"
        paper_other = (
            f"{c.paper_best_other} {fmt(number(c.paper_best_other_value), c.metric)}" if c.paper_best_other else "—"
        )
        rows.append(
            [
                f"{c.table}",
                c.item,
                metric_label(c.metric),
                c.architecture,
                spread(c.iga, c.iga_std, c.iga_n, c.metric) + (replicates.NOISE_MARK if c.within_noise == 1 else ""),
                other if c.best_other else "—",
                gap,
                fmt(number(c.paper_iga), c.metric),
                paper_other,
                paper_gap,
                c.verdict,
            ]
        )
    summary_text = summary(claims)
    noisy = int((claims.loc[has, "within_noise"] == 1).sum())
    scale = next((s for s in claims["scale"] if isinstance(s, str) and s), "")
    return render.Layout(
        "Is IGA the best method? Ours against the paper, per table cell",
        scale,
        [
            "Table",
            "Item",
            "Metric",
            "Arch.",
            "IGA (ours)",
            "Best other (ours)",
            "Gap",
            "IGA (paper)",
            "Best other (paper)",
            "Gap (paper)",
            "Verdict",
        ],
        rows,
        intro=summary_text + " Gap: IGA minus the best other method in the metric's good direction (positive: IGA "
        "better). Values as the paper tables print them (mean ± std (n) over seeds where n > 1).",
        notes=[replicates.NOISE_RULE] if noisy else [],
    )


def read_tables(paths: Iterable[Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"table": str}, keep_default_na=False) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["table"])


def write(paths: Iterable[Path], out_csv: Path, out_md: Path) -> pd.DataFrame:
    claims = build(read_tables(paths))
    claims.to_csv(out_csv, index=False)
    out_md.write_text(render.markdown(layout(claims)))
    return claims
