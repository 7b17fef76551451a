"""`iga figure-curves` (training curves per method) and `iga figure-vs-paper` (ours against the paper)."""

from __future__ import annotations

from pathlib import Path


def _curves(args) -> int:
    from ..report.curve_figures import figure_curves

    figure_curves(
        [Path(p) for p in args.logs],
        args.metric,
        Path(args.out),
        f"{args.title} [{args.scale_note}]" if args.scale_note else args.title,
        args.panels,
    )
    return 0


def _vs_paper(args) -> int:
    from ..report.curve_figures import figure_vs_paper

    figure_vs_paper(
        [Path(p) for p in args.long],
        args.task,
        Path(args.out),
        args.scale_note,
        args.metrics.split(",") if args.metrics else None,
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("figure-curves", help="training curves: a metric vs iteration, one line per method")
    p.add_argument("--metric", required=True, help="key of the log rows to plot (psnr, iou, mse, loss, ...)")
    p.add_argument(
        "--panels",
        choices=("arch", "item-arch"),
        default="arch",
        help="one panel per architecture (methods averaged over items) or per item and architecture",
    )
    p.add_argument("--title", required=True, help="figure title (the scale note is appended)")
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("logs", nargs="+", help="cells' JSON-lines logs (…/TASK/ITEM/ARCH-METHOD/train_log.jsonl)")
    p.set_defaults(func=_curves)

    p = sub.add_parser("figure-vs-paper", help="our value against the paper's per cell, with y = x")
    p.add_argument("--task", required=True, help="task of the rows to plot (image, occupancy, nerf)")
    p.add_argument(
        "--metrics", default="", help="comma-separated metrics, one panel each (default: those with paper values)"
    )
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("long", nargs="+", help="long-form CSVs written by `iga collect`")
    p.set_defaults(func=_vs_paper)
