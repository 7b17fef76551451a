"""`iga nerf-scene` (embedded Blender-format scene) and `iga nerf-train` (one NeRF run).

nerfstudio is imported only when `nerf-train` runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from ..nerf.cell_settings import NeRFAdjuster, NeRFRun
from .cell_args import add_lpips_arguments, cell_id


def add_model_arguments(parser, model, prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """One --flag per field of a settings model: type, default, choices and help come from the model.
    ``prefix``: the settings section, e.g. "adjuster." gives ``--adjuster.end`` (the config's name)."""
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        choices = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else None
        kind = type(choices[0]) if choices else field.annotation
        parser.add_argument(
            f"--{prefix}{name.replace('_', '-')}",
            dest=f"{prefix}{name}",
            type=kind,
            default=field.default,
            choices=choices,
            help=f"{field.description + '; ' if field.description else ''}default {field.default}",
        )


def _nerf_scene(args) -> int:
    from ..nerf.procedural_scene import SceneSpec, generate_scene

    spec = SceneSpec(
        size=args.size,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        samples_per_ray=args.samples_per_ray,
        supersample=args.supersample,
    )
    summary = generate_scene(Path(args.out), spec)
    print(json.dumps({"out": args.out, "files": len(summary["files"])}))
    return 0


def _nerf_train(args) -> int:
    try:
        import nerfstudio  # noqa: F401
    except ModuleNotFoundError:
        from ..configs import ConfigError

        raise ConfigError("nerf-train needs nerfstudio: pip install 'iga-repro[nerf]' (nerfstudio==1.1.5)") from None
    import torch

    from ..nerf.run import run

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.settings:  # a workflow cell: everything comes from its resolved settings
        from ..nerf.run import to_run_settings

        settings = to_run_settings(
            json.loads(args.settings), args.data, args.out, args.cell or "", args.lpips_status, args.no_lpips
        )
        metrics = run(settings)
        print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
        return 0
    from ..nerf.run import to_run_settings

    extra = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        extra[key] = json.loads(value)
    # the same cell-settings model as the workflow's cells: one declaration of every flag and default
    cell = {
        "run": {name: getattr(args, name) for name in NeRFRun.model_fields},
        "adjuster": {
            "kind": "iga" if args.method == "iga-nerf" else "vanilla",
            **{name: getattr(args, f"adjuster.{name}") for name in NeRFAdjuster.model_fields if name != "kind"},
        },
        "model": {"technique": "fr" if args.method == "nerf-fr" else "none"},
        "set": extra,
    }
    metrics = run(to_run_settings(cell, args.data, args.out, args.cell or "", args.lpips_status, args.no_lpips))
    print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
    return 0


def _figure_nerf(args) -> int:
    from ..report.nerf_figures import figure_nerf

    figure_nerf([Path(m) for m in args.metrics_files], args.item, Path(args.out), args.scale_note, args.view)
    return 0


def register(sub) -> None:
    p = sub.add_parser("figure-nerf", help="paper Fig. 12: test-view renders per method with crops")
    p.add_argument("--item", required=True, help="scene shown")
    p.add_argument("--view", type=int, default=0, help="index of the test view shown (default 0)")
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help="output (figure PNG or scene folder)")
    p.add_argument("metrics_files", nargs="+", help="the NeRF cells' metrics.json")
    p.set_defaults(func=_figure_nerf)

    p = sub.add_parser("nerf-scene", help="write the embedded analytic Blender-format scene")
    p.add_argument("--out", required=True, help="output (figure PNG or scene folder)")
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--n-train", type=int, default=24, help="training views (default 24)")
    p.add_argument("--n-val", type=int, default=4, help="validation views (default 4)")
    p.add_argument("--n-test", type=int, default=4, help="test views (default 4)")
    p.add_argument("--samples-per-ray", type=int, default=256, help="quadrature samples of the renderer")
    p.add_argument("--supersample", type=int, default=2, help="s×s rays per pixel")
    p.set_defaults(func=_nerf_scene)

    p = sub.add_parser("nerf-train", help="train a NeRF method with nerfstudio and evaluate the test views")
    p.add_argument("--settings", help="a workflow cell's resolved settings as JSON (overrides the flags below)")
    p.add_argument(
        "--method",
        choices=["nerf", "nerf-fr", "iga-nerf"],
        default="iga-nerf",
        help="nerf → ns method iga-nerf-vanilla, nerf-fr → iga-nerf-fr, iga-nerf → iga-nerf",
    )
    p.add_argument("--data", required=True, help="Blender-format scene folder (transforms_*.json)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, renders, metrics.json")
    add_model_arguments(p, NeRFRun)
    add_model_arguments(p, NeRFAdjuster, prefix="adjuster.", skip=("kind",))  # kind: from --method
    add_lpips_arguments(p)
    p.add_argument("--cell", type=cell_id, help="cell id recorded in provenance.json (nerf/SCENE/NeRF-METHOD/sSEED)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=JSON",
        help="extra nerfstudio setting, e.g. pipeline.model.fr.alpha=0.01 (repeatable)",
    )
    p.set_defaults(func=_nerf_train)
