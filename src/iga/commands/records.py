"""`iga keep-record` (a finished cell's record into the results tree) and `iga reproduce-check`."""

from __future__ import annotations

import time
from pathlib import Path


def _keep(args) -> int:
    from ..cell_records import keep

    for p in keep(Path(args.work), Path(args.record), args.task, Path(args.settings_file)):
        print(p)
    return 0


def _keep_figure(args) -> int:
    from ..cell_records import keep_figure_file

    folders = []
    for path in (args.source, args.dest):
        if not path.endswith("/" + args.file):
            raise ValueError(f"{path} does not end with --file {args.file}")
        folders.append(Path(path[: -len(args.file) - 1]))
    print(keep_figure_file(*folders, args.file))
    return 0


def _check(args) -> int:
    from ..reproduce import compare_trees, not_committed, summary, trained_since

    results = compare_trees(Path(args.ours), Path(args.committed), args.rel_tol)
    text, code = summary(results)
    lines = []
    if args.started is not None:
        wall = time.time() - args.started
        trained = trained_since(Path(args.ours), args.started)
        lines.append(f"cells trained in this run: {trained}")
        if trained == 0:
            lines.append(
                f"  NOTHING was trained in this run: the comparison is with an earlier run's records in "
                f"{args.ours} (`make clean-smoke`, then `make smoke`, trains from scratch)"
            )
        lines.append(f"wall time: {wall / 60:.1f} min")
    extra = not_committed(Path(args.ours), Path(args.committed))
    if extra:
        shown = ", ".join(extra[:6]) + (f", … {len(extra) - 6} more" if len(extra) > 6 else "")
        lines.append(f"cells of this run with no committed record (not compared): {len(extra)}: {shown}")
    if args.report:
        lines.append(f"report: {args.report}")
    lines.append(f"compared with: {args.committed} (committed records)")
    print("\n".join(["", "=" * 72, *lines, text, "=" * 72]))
    return code


def register(sub) -> None:
    p = sub.add_parser(
        "keep-record",
        help="copy a finished cell's record (metrics, provenance, thinned training log) from work/ to results/",
    )
    p.add_argument("--work", required=True, help="the cell's work folder (written by its training job)")
    p.add_argument("--record", required=True, help="the cell's record folder under results/{preset}/cells/")
    p.add_argument("--task", required=True, help="the cell's task (decides which extra files are kept)")
    p.add_argument(
        "--settings-file",
        required=True,
        help="the cell's settings file (its resolved settings, data files and results version; stored in the record)",
    )
    p.set_defaults(func=_keep)

    p = sub.add_parser(
        "keep-figure-file",
        help="copy a cell's figure file (reconstruction, prediction, render) from work/ into its record, "
        "if work/ holds the training the record describes",
    )
    p.add_argument("--file", required=True, help="the file, relative to the cell's folders (e.g. recon.png)")
    p.add_argument("--source", required=True, help="the file in the cell's work folder (work/…/FILE)")
    p.add_argument("--dest", required=True, help="the file in the cell's record (results/{preset}/cells/…/FILE)")
    p.set_defaults(func=_keep_figure)

    p = sub.add_parser(
        "reproduce-check",
        help="compare a fresh run's cell records with the committed ones; exit 1 if a metric differs",
    )
    p.add_argument("--ours", required=True, help="the fresh run's results folder (holding cells/)")
    p.add_argument("--committed", required=True, help="the committed results folder, e.g. results/smoke")
    p.add_argument(
        "--rel-tol",
        type=float,
        default=1e-4,
        help="relative difference reported as 'close' (last digits, another CPU) rather than 'different'",
    )
    p.add_argument("--started", type=float, default=None, help="the run's start (Unix time), for the summary")
    p.add_argument("--report", default=None, help="where the run's HTML report is, for the summary")
    p.set_defaults(func=_check)
