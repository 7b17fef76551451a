"""`iga toy-train` (one toy cell), `iga toy-tables` and `iga toy-figures` (paper section 5, appendix C)."""

from __future__ import annotations

import json
from pathlib import Path

from .cell_args import add_cell_arguments, cell_settings


def _train(args) -> int:
    from ..cell_lock import cell_lock
    from ..tasks.toy import run_cell

    with cell_lock(Path(args.out), args.cell):
        m = run_cell(cell_settings(args), Path(args.out), args.cell, device=args.device, resume=not args.no_resume)
    keys = ["mse_final"] + sorted(k for k in m if k.startswith("delta_f") and k.endswith("_final"))
    print(json.dumps({k: m[k] for k in keys}))
    return 0


def _tables(args) -> int:
    from ..report.toy_figures import load_cells
    from ..report.toy_tables import write_tables

    cells = load_cells([Path(p) for p in args.metrics_files])
    for p in write_tables(cells, args.experiment, Path(args.out_dir), args.preset, args.dataset, args.scale_note):
        print(p)
    return 0


def _figures(args) -> int:
    from ..report import toy_figures as tf

    cells = tf.load_cells([Path(p) for p in args.metrics_files])
    out = {k: Path(v) for k, v in (o.split("=", 1) for o in args.out)}
    if args.experiment == "exp1":
        widths = [int(w) for w in args.fig1_widths.split(",")] if args.fig1_widths else None
        tf.exp1_figures(cells, out, widths, args.fig1_end, args.scale_note)
    else:
        tf.exp2_figures(cells, out, args.fig3_component, args.fig2_group_size, args.scale_note)
    for p in out.values():
        print(p)
    return 0


def register(sub) -> None:
    p = sub.add_parser("toy-train", help="train one toy cell (Exp. 1 or 2 of paper section 5)")
    add_cell_arguments(p, "toy/exp1_w1024_s16/TwoLayer-IGA-e15/s16")
    p.set_defaults(func=_train)

    p = sub.add_parser("toy-tables", help="toy cells' metrics.json → long-form result tables")
    p.add_argument(
        "--experiment",
        choices=("exp1", "exp2"),
        required=True,
        help="toy experiment: exp1 (NTK vs eNTK) or exp2 (progressive impacts)",
    )
    p.add_argument("--preset", required=True, help="preset name written on every row (e.g. smoke)")
    p.add_argument("--dataset", default="synthetic", help="dataset name written on every row (default: synthetic)")
    p.add_argument("--scale-note", default="", help="the run's scale, printed on every table, CSV row and figure")
    p.add_argument("--out-dir", required=True, help="folder for the tables' .csv and .md")
    p.add_argument("metrics_files", nargs="+", help="metrics.json of the cells (curve.npz beside each)")
    p.set_defaults(func=_tables)

    p = sub.add_parser("toy-figures", help="paper Figs. 1-3, 6-9 and the width study from toy cells")
    p.add_argument(
        "--experiment",
        choices=("exp1", "exp2"),
        required=True,
        help="toy experiment: exp1 (NTK vs eNTK) or exp2 (progressive impacts)",
    )
    p.add_argument(
        "--out",
        action="append",
        required=True,
        help="KIND=PATH (repeatable); exp1 kinds: fig1, fig6, width; exp2 kinds: fig2, fig3, fig7, fig8, fig9",
    )
    p.add_argument("--fig1-widths", default="", help="comma-separated widths of Fig. 1 (default: smallest, largest)")
    p.add_argument("--fig1-end", type=int, default=0, help="balanced eigenvalues shown in Fig. 1 (0: the largest)")
    p.add_argument("--fig2-group-size", type=int, default=8, help="IGA group size shown in Fig. 2 (default 8)")
    p.add_argument(
        "--fig3-component", type=int, default=4, help="1-based component of Fig. 3 (4: 40 Hz for SIREN, 20 Hz for ReLU)"
    )
    p.add_argument("--scale-note", default="", help="the run's scale, printed on every table, CSV row and figure")
    p.add_argument("metrics_files", nargs="+", help="metrics.json of the cells (curve.npz beside each)")
    p.set_defaults(func=_figures)
