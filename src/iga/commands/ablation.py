"""`iga ablation-collect`, `iga ablation-tables` (paper Tables 4, 5, the paper-vs-code variants) and
`iga cost-table` (wall time, time per iteration, peak memory and device of every training cell).

The ablation cells themselves are trained by `iga train-image` (the same trainer as Table 1/6).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..configs import ConfigError


def _pairs(values, what: str) -> dict:
    out = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep:
            raise ConfigError(f"{what} {v!r} must be KEY=VALUE")
        out[key] = val
    return out


def _collect(args) -> int:
    from ..report.ablation_tables import collect, reused_cells
    from ..report.tables import ROW_COLUMNS, write_csv

    rows = collect([Path(p) for p in args.metrics_files], args.preset, args.dataset)
    write_csv(rows, Path(args.out), ROW_COLUMNS)
    print(f"{len(rows)} rows from {len(args.metrics_files)} cells → {args.out}")
    reused = reused_cells(rows)
    if reused:
        print(
            f"{len(reused)} of them reuse identical main image cells (tasks.image_ablation.reuse_image_cells): "
            + ", ".join(reused)
        )
    return 0


def _tables(args) -> int:
    from ..report.ablation_layouts import TABLES, write_ablation_tables
    from ..report.tables import read_csv

    rows = [r for path in args.long for r in read_csv(Path(path))]
    section = json.loads(args.grids)
    names = args.tables.split(",")
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ConfigError(f"table(s) {unknown} unknown; known: {sorted(TABLES)}")
    missing = [TABLES[n][0] for n in names if TABLES[n][0] not in section.get("grids", {})]
    if missing:
        raise ConfigError(f"tasks.image_ablation.grids lacks {missing}; defined: {sorted(section.get('grids', {}))}")
    try:
        paths = write_ablation_tables(
            rows, section["grids"], section, args.dataset, Path(args.out_dir), args.scale_note, names
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for p in paths:
        print(p)
    return 0


def _cost(args) -> int:
    from ..report.cost import write_cost

    rows = write_cost(
        [Path(p) for p in args.metrics_files],
        _pairs(args.dataset, "--dataset"),
        Path(args.out_csv),
        Path(args.out_md),
        Path(args.figure) if args.figure else None,
        args.scale_note,
    )
    print(f"{len(rows)} rows from {len(args.metrics_files)} cells → {args.out_csv}, {args.out_md}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("ablation-collect", help="image_ablation cells → long form (PSNR, time, memory, settings)")
    p.add_argument("--preset", required=True, help="preset name written on every row (e.g. smoke)")
    p.add_argument("--dataset", required=True, help="dataset name written on every row (e.g. kodak)")
    p.add_argument("--out", required=True, help="long-form CSV to write")
    p.add_argument("metrics_files", nargs="+", help="image_ablation (and reused image) cells' metrics.json")
    p.set_defaults(func=_collect)

    p = sub.add_parser("ablation-tables", help="paper Tables 4 and 5 and the paper-vs-code variants table")
    p.add_argument("--long", nargs="+", required=True, help="long-form CSVs written by `iga ablation-collect`")
    p.add_argument(
        "--grids",
        required=True,
        help="JSON: {items, architectures, grids: {table4|table5|variants: {items?, architectures?, methods}}}",
    )
    p.add_argument("--dataset", required=True, help="dataset name written on every row (e.g. kodak)")
    p.add_argument(
        "--tables",
        default="table4_sampling,table5_group_size,variants_paper_vs_code",
        help="comma-separated tables to write (default: all three)",
    )
    p.add_argument("--out-dir", required=True, help="folder for NAME.csv, NAME.md and NAME.tex")
    p.add_argument("--scale-note", default="", help="the run's scale, printed on every table and CSV row")
    p.set_defaults(func=_tables)

    p = sub.add_parser("cost-table", help="measured cost of every training cell → cost.csv, cost.md, a figure")
    p.add_argument("--dataset", action="append", default=[], help="TASK=DATASET (repeatable)")
    p.add_argument("--out-csv", required=True, help="cost table, long form (CSV) to write")
    p.add_argument("--out-md", required=True, help="cost table (Markdown) to write")
    p.add_argument("--figure", help="cost overview PNG to write (optional)")
    p.add_argument("--scale-note", default="", help="the run's scale, printed on every table and CSV row")
    p.add_argument(
        "metrics_files",
        nargs="*",
        help="each training cell's metrics.json (its result record provenance.json beside it)",
    )
    p.set_defaults(func=_cost)
