"""`iga nerf-scene` (embedded Blender-format scene) and `iga nerf-train` (one NeRF run).

nerfstudio is imported only when `nerf-train` runs, so the rest of the CLI works without it.
"""
from __future__ import annotations

import json
from pathlib import Path


def _nerf_scene(args) -> int:
    from ..nerf.procedural_scene import SceneSpec, generate_scene
    spec = SceneSpec(size=args.size, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                     samples_per_ray=args.samples_per_ray, supersample=args.supersample)
    summary = generate_scene(Path(args.out), spec)
    print(json.dumps({"out": args.out, "files": len(summary["files"])}))
    return 0


def _nerf_train(args) -> int:
    try:
        import nerfstudio  # noqa: F401
    except ModuleNotFoundError:
        from ..configs import ConfigError
        raise ConfigError("nerf-train needs nerfstudio: pip install 'iga-repro[nerf]' (nerfstudio==1.1.5)")
    import torch
    from ..nerf.run import NeRFRunSettings, run
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.settings:  # a workflow cell: everything comes from its resolved settings
        from ..nerf.cell_settings import to_run_settings
        settings = to_run_settings(json.loads(args.settings), args.data, args.out, args.cell or "", args.lpips_status)
        metrics = run(settings)
        print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
        return 0
    extra = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        extra[key] = json.loads(value)
    settings = NeRFRunSettings(
        method=args.method, data=args.data, out=args.out, iterations=args.iterations, end=args.end,
        lr_schedule=args.lr_schedule, device=args.device, downscale=args.downscale, testskip=args.testskip,
        num_rays=args.num_rays, coarse_samples=args.coarse_samples, fine_samples=args.fine_samples,
        net_width=args.net_width, net_depth=args.net_depth, seed=args.seed,
        checkpoint_every=args.checkpoint_every, eval_chunk=args.eval_chunk,
        lpips_status_file=args.lpips_status, cell=args.cell or "", extra=extra)
    metrics = run(settings)
    print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
    return 0


def _figure_nerf(args) -> int:
    from ..report.nerf_figures import figure_nerf
    figure_nerf([Path(m) for m in args.metrics_files], args.item, Path(args.out), args.scale_note, args.view)
    return 0


def register(sub) -> None:
    p = sub.add_parser("figure-nerf", help="paper Fig. 12: test-view renders per method with crops")
    p.add_argument("--item", required=True, help="scene shown")
    p.add_argument("--view", type=int, default=0, help='index of the test view shown (default 0)')
    p.add_argument("--scale-note", default="", help="the run's scale, printed in the figure title")
    p.add_argument("--out", required=True, help='output (figure PNG or scene folder)')
    p.add_argument("metrics_files", nargs="+", help="the NeRF cells' metrics.json")
    p.set_defaults(func=_figure_nerf)

    p = sub.add_parser("nerf-scene", help="write the embedded analytic Blender-format scene")
    p.add_argument("--out", required=True, help='output (figure PNG or scene folder)')
    p.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument("--n-train", type=int, default=24, help='training views (default 24)')
    p.add_argument("--n-val", type=int, default=4, help='validation views (default 4)')
    p.add_argument("--n-test", type=int, default=4, help='test views (default 4)')
    p.add_argument("--samples-per-ray", type=int, default=256, help="quadrature samples of the renderer")
    p.add_argument("--supersample", type=int, default=2, help="s×s rays per pixel")
    p.set_defaults(func=_nerf_scene)

    p = sub.add_parser("nerf-train", help="train a NeRF method with nerfstudio and evaluate the test views")
    p.add_argument("--settings", help="a workflow cell's resolved settings as JSON (overrides the flags below)")
    p.add_argument("--method", choices=["nerf", "nerf-fr", "iga-nerf"], default="iga-nerf",
                   help="nerf → ns method iga-nerf-vanilla, nerf-fr → iga-nerf-fr, iga-nerf → iga-nerf")
    p.add_argument("--data", required=True, help="Blender-format scene folder (transforms_*.json)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, renders, metrics.json")
    p.add_argument("--iterations", type=int, default=200_000, help="total training steps (paper: 200000)")
    p.add_argument("--end", type=int, default=25, help="IGA balanced eigenvalues (paper: 25; ficus 30)")
    p.add_argument("--lr-schedule", choices=["nerf-pytorch", "official"], default="nerf-pytorch",
                   help="nerf-pytorch: 5e-4·0.1^(step/500k); official: constant 5e-5 (official IGA code)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help='auto: CUDA when available, else CPU')
    p.add_argument("--downscale", type=int, default=2, help="image downscale (2 = nerf-pytorch half_res)")
    p.add_argument("--testskip", type=int, default=8, help="every N-th test view (nerf-pytorch: 8)")
    p.add_argument("--num-rays", type=int, default=1024, help="rays per step = IGA groups (paper: 1024)")
    p.add_argument("--coarse-samples", type=int, default=64, help='coarse samples per ray (paper: 64)')
    p.add_argument("--fine-samples", type=int, default=128, help='fine samples per ray (paper: 128)')
    p.add_argument("--net-width", type=int, default=256, help='hidden width of the NeRF MLP (paper: 256)')
    p.add_argument("--net-depth", type=int, default=8, help='hidden layers of the NeRF MLP (paper: 8)')
    p.add_argument("--seed", type=int, default=4096, help='random seed (default 4096)')
    p.add_argument("--checkpoint-every", type=int, default=5000, help='steps between checkpoints (default 5000)')
    p.add_argument("--eval-chunk", type=int, default=4096, help="rays per chunk when rendering test views")
    p.add_argument("--lpips-status", help="status JSON written by `iga fetch-lpips-weights`")
    p.add_argument("--cell", help="cell id recorded in provenance.json")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--set", action="append", metavar="KEY=JSON",
                   help="extra nerfstudio setting, e.g. pipeline.model.fr.alpha=0.01 (repeatable)")
    p.set_defaults(func=_nerf_train)
