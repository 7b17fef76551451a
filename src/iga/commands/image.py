"""`iga make-image` (embedded data) and `iga train-image` (one image cell)."""

from __future__ import annotations

import json
from pathlib import Path

from .cell_args import add_cell_arguments, add_lpips_arguments, cell_settings


def _make_image(args) -> int:
    from ..data.embedded_images import make_embedded_image

    make_embedded_image(args.name, Path(args.out), args.width, args.height)
    return 0


def _train_image(args) -> int:
    from ..cell_lock import cell_lock
    from ..tasks.image import run_cell

    with cell_lock(Path(args.out), args.cell):
        metrics = run_cell(
            cell_settings(args),
            Path(args.image),
            Path(args.out),
            args.cell,
            lpips_status=Path(args.lpips_status) if args.lpips_status else None,
            lpips_disabled_reason=args.no_lpips,
            device=args.device,
            resume=not args.no_resume,
        )
    print(json.dumps({k: metrics[k] for k in ("psnr", "ssim", "lpips")}))
    return 0


def register(sub) -> None:
    p = sub.add_parser("make-image", help="write an embedded (scikit-image) picture as a PNG")
    p.add_argument("--name", required=True, help="scikit-image picture name, e.g. astronaut")
    p.add_argument("--width", type=int, required=True, help="width in pixels after resizing")
    p.add_argument("--height", type=int, required=True, help="height in pixels after resizing")
    p.add_argument("--out", required=True, help="PNG to write")
    p.set_defaults(func=_make_image)

    p = sub.add_parser("train-image", help="train one image cell and write its metrics")
    add_cell_arguments(p, "image/kodim03/PE-IGA/s4096")
    p.add_argument("--image", required=True, help="the item's image (PNG)")
    add_lpips_arguments(p)
    p.set_defaults(func=_train_image)
