"""`iga collect` (cell metrics → long form), `iga tables` and the image figures."""

from __future__ import annotations

from pathlib import Path

from ..cells import Cell
from ..configs import ConfigError


def _collect(args) -> int:
    from ..report.tables import ROW_COLUMNS, collect, write_csv

    cells = []
    for m in args.metrics_files:
        c = Cell.from_path(m)
        cells.append(
            {
                "task": c.task,
                "item": c.item,
                "arch": c.arch,
                "method": c.method,
                "seed": c.seed,
                "cell": c.id,
                "path": str(m),
                "dataset": args.dataset,
            }
        )
    rows = collect(cells, args.preset, args.metrics.split(","))
    write_csv(rows, Path(args.out), ROW_COLUMNS)
    print(f"{len(rows)} rows from {len(cells)} cells → {args.out}")
    return 0


def _tables(args) -> int:
    from ..report.tables import TABLES, read_long, write_table

    rows = read_long(Path(p) for p in args.long)
    for name in args.tables.split(","):
        if name not in TABLES:
            raise ConfigError(f"table {name!r} is unknown; known: {sorted(TABLES)}")
        for p in write_table(TABLES[name], rows, Path(args.out_dir), args.scale_note):
            print(p)
    return 0


def _fig_image(args) -> int:
    from ..report.image_figures import figure_crops, figure_visual

    recons = {}
    # one replicate per configuration in a figure: the lowest seed
    for c, path in sorted((Cell.from_path(Path(p).parent), Path(p)) for p in args.recons):
        recons.setdefault((c.item, c.arch, c.method), path)
    gts = dict(g.split("=", 1) for g in args.gt)
    gts = {k: Path(v) for k, v in gts.items()}
    if args.kind == "crops":
        item = args.items[0] if args.items else sorted(gts)[0]
        arch = args.arch
        figure_crops(
            gts[item],
            {m: p for (i, a, m), p in recons.items() if i == item and a == arch},
            arch,
            Path(args.out),
            f"{item}, {arch}: reconstructions, enlarged crops and residual spectra [{args.scale_note}]",
        )
    else:
        items = args.items or sorted(gts)[:2]
        figure_visual(
            {i: gts[i] for i in items},
            recons,
            args.archs.split(","),
            Path(args.out),
            f"Reconstructions per method; PSNR: the cell's best float state, as in Table 6"
            f" (the image shown is its 8-bit rendering) [{args.scale_note}]",
        )
    return 0


def _page(args) -> int:
    from ..provenance import atomic_file
    from ..report.pages import figure_page, markdown_page

    caption = Path(args.caption).read_text() if args.caption else ""
    src = Path(args.markdown or args.figure)
    if not src.is_file():
        raise ConfigError(f"report-page: {src} does not exist; give an existing Markdown file or figure")
    text = markdown_page(src, caption) if args.markdown else figure_page(src, caption, args.title)
    with atomic_file(Path(args.out)) as f:
        f.write(text)
    print(args.out)
    return 0


def _claims(args) -> int:
    from ..report.claims import write

    claims = write([Path(p) for p in args.tables], Path(args.out_csv), Path(args.out_md))
    print(f"{len(claims)} claims -> {args.out_md}")
    return 0


def _findings(args) -> int:
    from ..provenance import atomic_file
    from ..report.findings import render

    for path in [Path(args.template), *map(Path, args.tables)]:
        if not path.exists():
            raise ConfigError(f"findings: {path} does not exist; give the preset's template and its tables' CSVs")
    text = render(Path(args.template), [Path(t) for t in args.tables], [Path(m) for m in args.records])
    with atomic_file(Path(args.out)) as f:
        f.write(text)
    print(args.out)
    return 0


def register(sub) -> None:
    p = sub.add_parser("collect", help="cell metrics.json files → one long-form CSV")
    p.add_argument("--task", required=True, help="task of the cells (image, occupancy, nerf)")
    p.add_argument("--dataset", required=True, help="dataset name written on every row (e.g. kodak)")
    p.add_argument("--preset", required=True, help="preset name written on every row (e.g. smoke)")
    p.add_argument("--metrics", required=True, help="comma-separated metric names to keep")
    p.add_argument("--out", required=True, help="long-form CSV to write")
    p.add_argument("metrics_files", nargs="+", help="cells' metrics.json (…/TASK/ITEM/ARCH-METHOD/sSEED/metrics.json)")
    p.set_defaults(func=_collect)

    p = sub.add_parser("tables", help="long-form CSVs → paper-shaped tables (csv, md, tex)")
    p.add_argument("--long", nargs="+", required=True, help="long-form CSVs written by `iga collect`")
    p.add_argument(
        "--tables", required=True, help="comma-separated table names, e.g. table1_image_average,table6_image_psnr"
    )
    p.add_argument("--out-dir", required=True, help="folder for NAME.csv, NAME.md and NAME.tex")
    p.add_argument("--scale-note", default="", help="the run's scale, printed on every table and CSV row")
    p.set_defaults(func=_tables)

    p = sub.add_parser("claims", help="paper tables' CSVs → is IGA the best method, here and in the paper")
    p.add_argument("--out-csv", required=True, help="claims.csv to write (one row per table cell compared)")
    p.add_argument("--out-md", required=True, help="claims.md to write (the same, as a readable table)")
    p.add_argument("tables", nargs="+", help="the paper tables' CSVs (Tables 1/6, 2/9, 3/10; others are ignored)")
    p.set_defaults(func=_claims)

    p = sub.add_parser("findings", help="FINDINGS.md: a template's prose with every number read from the results")
    p.add_argument("--template", required=True, help="Jinja2 template (workflow/report/findings/PRESET.md.j2)")
    p.add_argument("--out", required=True, help="FINDINGS.md to write")
    p.add_argument("--tables", nargs="+", required=True, help="the tables' CSVs, claims.csv and cost.csv among them")
    p.add_argument("--records", nargs="*", default=[], help="cells' metrics.json (provenance.json beside: wall times)")
    p.set_defaults(func=_findings)

    p = sub.add_parser("figure-image", help="paper Figs. 4 (crops) and 10 (visual) from reconstructions")
    p.add_argument(
        "--kind", choices=("crops", "visual"), required=True, help="crops: paper Fig. 4; visual: paper Fig. 10"
    )
    p.add_argument("--gt", nargs="+", required=True, help="ITEM=PATH of the ground-truth images")
    p.add_argument("--recons", nargs="+", required=True, help="recon.png files of the cells")
    p.add_argument("--items", nargs="*", help="items shown (crops: the first; default: the first one or two)")
    p.add_argument("--arch", default="PE", help="architecture of the crops figure")
    p.add_argument("--archs", default="ReLU,PE,SIREN", help="comma-separated architectures of the visual figure")
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help="PNG to write")
    p.set_defaults(func=_fig_image)

    p = sub.add_parser("report-page", help="a table/Markdown note or a figure → a standalone HTML page for the report")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--markdown", help="Markdown file (a table's NAME.md, FINDINGS.md) shown as HTML")
    src.add_argument("--figure", help="image (.png, .jpg, .svg) embedded in the page")
    p.add_argument("--caption", help="caption file (reStructuredText, as for Snakemake's report) shown on the page")
    p.add_argument("--title", default="", help="figure page title (default: the file name)")
    p.add_argument("--out", required=True, help="HTML page to write")
    p.set_defaults(func=_page)
