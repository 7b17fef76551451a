"""The arguments every `iga train-*` command shares, and how they are read (one place)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cells import Cell
from ..configs import ConfigError


def cell_id(text: str) -> str:
    """argparse type of --cell: a cell id as the workflow writes it (TASK/ITEM/ARCH-METHOD/sSEED)."""
    try:
        Cell.from_id(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_cell_arguments(p, cell_example: str, settings_required: bool = True) -> None:
    """--settings/--settings-file, --out, --cell, --device, --no-resume, --threads."""
    g = p.add_mutually_exclusive_group(required=settings_required)
    g.add_argument("--settings", help="the cell's resolved settings as JSON")
    g.add_argument("--settings-file", help="… or a JSON file holding them")
    p.add_argument("--out", required=True, help="the cell's work folder")
    p.add_argument("--cell", required=True, type=cell_id, help=f"cell id, e.g. {cell_example}")
    p.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:1)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def add_lpips_arguments(p) -> None:
    """--lpips-status and --no-lpips, for the commands that evaluate images (train-image, nerf-train)."""
    p.add_argument("--lpips-status", help="status JSON written by `iga fetch-lpips-weights`")
    p.add_argument(
        "--no-lpips",
        nargs="?",
        const="LPIPS disabled in config (lpips.enabled: false)",
        default=None,
        metavar="REASON",
        help="do not compute LPIPS; report it missing with REASON",
    )


def cell_settings(args) -> dict:
    """The cell's settings from --settings or --settings-file; sets torch's CPU threads first."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return json.loads(Path(args.settings_file).read_text()) if args.settings_file else json.loads(args.settings)
