"""`iga make-image` (embedded data) and `iga train-image` (one image cell)."""
from __future__ import annotations

import json
from pathlib import Path


def _make_image(args) -> int:
    from ..data.embedded_images import make_embedded_image
    make_embedded_image(args.name, Path(args.out), args.width, args.height)
    return 0


def _train_image(args) -> int:
    import torch
    from ..tasks.image import run_cell
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = json.loads(Path(args.settings_file).read_text()) if args.settings_file else json.loads(args.settings)
    metrics = run_cell(settings, Path(args.image), Path(args.out), args.cell,
                       lpips_status=Path(args.lpips_status) if args.lpips_status else None,
                       lpips_disabled_reason=args.no_lpips,
                       device=args.device, resume=not args.no_resume)
    print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
    return 0


def register(sub) -> None:
    p = sub.add_parser("make-image", help="write an embedded (scikit-image) picture as a PNG")
    p.add_argument("--name", required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_make_image)

    p = sub.add_parser("train-image", help="train one image cell and write its metrics")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--settings", help="the cell's resolved settings as JSON")
    g.add_argument("--settings-file", help="… or a JSON file holding them")
    p.add_argument("--image", required=True)
    p.add_argument("--out", required=True, help="the cell's work folder")
    p.add_argument("--cell", required=True, help="cell id, e.g. image/kodim03/PE-IGA")
    p.add_argument("--lpips-status", help="status JSON written by `iga fetch-lpips-weights`")
    p.add_argument("--no-lpips", nargs="?", const="LPIPS disabled in config (lpips.enabled: false)", default=None,
                   metavar="REASON", help="do not compute LPIPS; report it missing with REASON")
    p.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:1)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(func=_train_image)
