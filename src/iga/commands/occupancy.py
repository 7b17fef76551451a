"""Occupancy sub-commands: `iga make-shape`, `iga voxelize`, `iga mat-to-volume`,
`iga downsample-volume`, `iga train-occupancy` (one cell) and `iga figure-occupancy` (paper Fig. 5)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .cell_args import add_cell_arguments, cell_settings


def _make_shape(args) -> int:
    from ..data.procedural_shape import make_mesh
    from ..data.voxelize import write_ply

    v, f = make_mesh(args.name, args.sdf_resolution)
    write_ply(Path(args.out), v, f)
    print(f"{args.name}: {len(v)} vertices, {len(f)} faces → {args.out}")
    return 0


def _voxelize(args) -> int:
    import resource

    from ..data.voxelize import find_mesh, read_ply, save_volume, voxelize

    src = Path(args.mesh)
    if src.is_dir():
        if not args.member:
            raise SystemExit("iga voxelize: error: --mesh is a folder: give --member (the PLY inside it)")
        src = find_mesh(src, args.member)
    t0 = time.perf_counter()
    v, f = read_ply(src)
    t1 = time.perf_counter()
    occ = voxelize(v, f, args.resolution, method=args.method, log=lambda m: print(m, file=sys.stderr, flush=True))
    t2 = time.perf_counter()
    save_volume(
        Path(args.out),
        occ,
        source=str(src),
        method=args.method,
        resolution=args.resolution,
        convention="acorn: bbox centred, longest half-extent 1, linspace(-1, 1)",
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "mesh": str(src),
                "vertices": int(len(v)),
                "faces": int(len(f)),
                "resolution": args.resolution,
                "method": args.method,
                "read_s": round(t1 - t0, 2),
                "voxelize_s": round(t2 - t1, 2),
                "peak_rss_mb": round(peak, 1),
                "occupied_fraction": round(float(occ.mean()), 6),
                "out": args.out,
            }
        )
    )
    return 0


def _mat_to_volume(args) -> int:
    from ..data.voxelize import load_mat_volume, save_volume

    src = Path(args.mat)
    if src.is_dir():
        mats = sorted(src.rglob("*.mat"))
        if len(mats) != 1:
            raise SystemExit(f"iga mat-to-volume: error: expected one .mat under {src}, found {[str(m) for m in mats]}")
        src = mats[0]
    vol = load_mat_volume(src, args.key)
    save_volume(
        Path(args.out),
        vol,
        source=str(src),
        method="precomputed (WIRE/FR-INR .mat)",
        resolution=int(max(vol.shape)),
        layout="as stored in the .mat",
    )
    print(f"{src}: {list(vol.shape)}, occupied {vol.mean():.4f} → {args.out}")
    return 0


def _downsample_volume(args) -> int:
    from ..data.volume_resample import downsample_occupancy
    from ..data.voxelize import load_volume, save_volume

    occ, meta = load_volume(Path(args.volume))
    try:
        small = downsample_occupancy(occ, args.resolution, args.threshold)
    except ValueError as e:
        raise SystemExit(f"iga downsample-volume: error: {args.volume}: {e}") from None
    meta = {k: v for k, v in meta.items() if k not in ("resolution", "downsampled_from")}
    save_volume(
        Path(args.out),
        small,
        **meta,
        resolution=args.resolution,
        downsampled_from=f"{list(occ.shape)} by block mean >= {args.threshold}",
    )
    print(
        f"{args.volume}: {list(occ.shape)} occupied {occ.mean():.4f} → {list(small.shape)} "
        f"occupied {small.mean():.4f} → {args.out}"
    )
    return 0


def _train(args) -> int:
    from ..cell_lock import cell_lock
    from ..tasks.occupancy import run_cell

    with cell_lock(Path(args.out), args.cell):
        m = run_cell(
            cell_settings(args),
            Path(args.volume),
            Path(args.out),
            args.cell,
            device=args.device,
            resume=not args.no_resume,
        )
    print(json.dumps({k: m[k] for k in ("iou", "iou_final", "iou_running", "best_epoch")}))
    return 0


def _figure(args) -> int:
    from ..cells import Cell
    from ..report.occupancy_figures import figure_occupancy

    preds = {}
    # one replicate per configuration in a figure: the lowest seed
    for c, path in sorted((Cell.from_path(Path(p)), Path(p)) for p in args.preds):
        if c.item == args.item:
            preds.setdefault((c.arch, c.method), path)
    figure_occupancy(
        Path(args.volume),
        args.crop,
        preds,
        args.archs.split(","),
        Path(args.out),
        title=f"{args.item}: best-state occupancy per method (IoU), enlarged region in red [{args.scale_note}]",
        view_axis=args.view_axis,
    )
    return 0


def register(sub) -> None:
    p = sub.add_parser("make-shape", help="write a procedural watertight mesh (analytic SDF → marching cubes)")
    p.add_argument("--name", required=True, help="bumpy or sphere")
    p.add_argument("--sdf-resolution", type=int, default=128, help="grid of the marching cubes (default 128)")
    p.add_argument("--out", required=True, help=".ply file")
    p.set_defaults(func=_make_shape)

    p = sub.add_parser("voxelize", help="mesh (.ply/.ply.gz) → occupancy volume (.npz) in ACORN's convention")
    p.add_argument("--mesh", required=True, help="a PLY file, or a folder with --member")
    p.add_argument("--member", help="path of the PLY inside --mesh (searched by name if absent)")
    p.add_argument("--resolution", type=int, required=True, help="voxels along the longest side")
    p.add_argument(
        "--method",
        default="winding",
        choices=("winding", "parity"),
        help="inside test: winding number (robust) or ray parity",
    )
    p.add_argument("--out", required=True, help="file to write (.npz volume; figure-occupancy: .png)")
    p.set_defaults(func=_voxelize)

    p = sub.add_parser("mat-to-volume", help="WIRE/FR-INR .mat ('hypercube') → occupancy volume (.npz)")
    p.add_argument("--mat", required=True, help="a .mat file, or a folder holding exactly one")
    p.add_argument("--key", default="hypercube", help="variable of the .mat holding the volume (default: hypercube)")
    p.add_argument("--out", required=True, help="file to write (.npz volume; figure-occupancy: .png)")
    p.set_defaults(func=_mat_to_volume)

    p = sub.add_parser("downsample-volume", help="occupancy volume → a coarser one (block mean, thresholded)")
    p.add_argument("--volume", required=True, help="occupancy .npz (iga voxelize / mat-to-volume)")
    p.add_argument("--resolution", type=int, required=True, help="longest side after (must divide it)")
    p.add_argument("--threshold", type=float, default=0.5, help="occupied if this fraction of the block is")
    p.add_argument("--out", required=True, help="file to write (.npz volume; figure-occupancy: .png)")
    p.set_defaults(func=_downsample_volume)

    p = sub.add_parser("train-occupancy", help="train one occupancy cell and write its metrics")
    add_cell_arguments(p, "occupancy/bunny/PE-IGA/s4096")
    p.add_argument("--volume", required=True, help="occupancy .npz (iga voxelize / mat-to-volume)")
    p.set_defaults(func=_train)

    p = sub.add_parser("figure-occupancy", help="paper Fig. 5: renderings per method with an enlarged region")
    p.add_argument("--volume", required=True, help="the item's ground-truth volume (.npz)")
    p.add_argument("--crop", default="official", help="task.crop of the cells (the predictions' grid)")
    p.add_argument("--preds", nargs="+", required=True, help="pred_occupancy.npz files of the cells")
    p.add_argument("--item", required=True, help="item (shape) shown")
    p.add_argument("--archs", default="ReLU,PE,SIREN", help="comma-separated architectures, one row each")
    p.add_argument("--view-axis", default="auto", help="x, y, z (0, 1, 2) or auto (the shortest extent)")
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help="file to write (.npz volume; figure-occupancy: .png)")
    p.set_defaults(func=_figure)
