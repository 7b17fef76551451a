"""`iga download`, `iga extract`, `iga fetch-scene` and `iga fetch-lpips-weights`: the workflow's data rules.

Failures print one ``iga <command>: error: ...`` message (one line for ``extract``; for
``download`` one line per source tried, with its own reason) and return exit code 1 (2 for a
bad dataset/item name or option value), except ``fetch-lpips-weights``, which records the failure in its
status file and returns 0 so that LPIPS is reported as missing downstream, never as NaN.
The mirror defaults to the ``IGA_DATA_MIRROR`` environment variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

MIRROR_ENV = "IGA_DATA_MIRROR"


def _err(command: str, exc: BaseException) -> None:
    print(f"iga {command}: error: {exc}", file=sys.stderr)


def _fetch_kwargs(args) -> dict:
    return {
        "mirror": args.mirror or None,
        "retries": args.retries,
        "backoff": args.backoff,
        "timeout": args.timeout,
        "min_rate": args.min_rate,
        "rate_window": args.rate_window,
        "stall_timeout": args.stall_timeout,
        "progress": not args.no_progress,
    }


def _download(args) -> int:
    from ..data.download import DownloadError, fetch
    from ..data.registry import resolve

    out = Path(args.out)
    try:
        if args.url:
            fetch(args.url, out, args.sha256, size=args.size, **_fetch_kwargs(args))
        else:
            if not (args.dataset and args.item):
                _err("download", ValueError("give --dataset and --item, or --url"))
                return 2
            source = resolve(args.dataset, args.item)
            source.fetch(out, **_fetch_kwargs(args))
    except ValueError as exc:
        _err("download", exc)
        return 2
    except (DownloadError, OSError) as exc:  # OSError: dest not writable, disk full
        _err("download", exc)
        return 1
    print(out)
    return 0


def _extract(args) -> int:
    from ..data.archives import ArchiveError, CorruptArchiveError, ExtractLimits, safe_extract

    try:
        limits = ExtractLimits(**{k: getattr(args, k) for k in _LIMIT_FLAGS})
    except ValueError as exc:
        _err("extract", exc)
        return 2
    try:
        files = safe_extract(Path(args.archive), Path(args.out), limits, subdir=args.subdir)
    except CorruptArchiveError as exc:  # a download that verified, damaged since: refetch
        _err("extract", f"{exc}; delete {args.archive} so that the next run downloads it again")
        return 1
    except (ArchiveError, ValueError, OSError) as exc:
        _err("extract", " ".join(str(exc).split()))
        return 1
    print(f"extracted {len(files)} files into {args.out}")
    return 0


def _fetch_scene(args) -> int:
    from ..data.scene_folder import SceneFolderError, copy_scene, mirror_scene

    src = Path(args.source) if args.source else mirror_scene(args.mirror, args.dataset, args.scene)
    if src is None:
        _err(
            "fetch-scene",
            ValueError(
                f"no scene folder {args.dataset}/{args.scene}/transforms_train.json in the mirror "
                f"{args.mirror!r} (--mirror or ${MIRROR_ENV}: a local folder; or --from a scene folder)"
            ),
        )
        return 1
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    try:
        files = copy_scene(src, Path(args.out), splits=splits, link=bool(args.source))
    except (SceneFolderError, OSError, ValueError, KeyError) as exc:
        _err("fetch-scene", exc)
        return 1
    print(f"copied {len(files)} files ({', '.join(splits)}) of {args.dataset}/{args.scene} from {src} into {args.out}")
    return 0


def _write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _fetch_lpips(args) -> int:
    from ..data.download import DownloadError, fetch, sha256_file
    from ..data.registry import resolve

    source = resolve("lpips", "alexnet")
    out, status = Path(args.out), Path(args.status)
    if out.name != source.filename:  # torch.hub finds the weights only by this exact name
        _err("fetch-lpips-weights", ValueError(f"--out must be named {source.filename}, not {out.name}"))
        return 2
    try:
        if args.url:  # test / air-gapped override of the public URL, same checks
            fetch(
                args.url,
                out,
                source.sha256,
                size=source.size,
                sha256_prefix=source.sha256_prefix,
                mirror_paths=source.mirror_paths,
                **_fetch_kwargs(args),
            )
        else:
            source.fetch(out, **_fetch_kwargs(args))
    except DownloadError as exc:
        _write_json_atomic(status, {"available": False, "reason": str(exc)})
        print(f"iga fetch-lpips-weights: LPIPS weights unavailable: {exc}", file=sys.stderr)
        return 0
    _write_json_atomic(status, {"available": True, "path": str(out.resolve()), "sha256": sha256_file(out)})
    print(out)
    return 0


# `iga extract` flags -> ExtractLimits fields (config: data.extract_limits, same names)
_LIMIT_FLAGS = ("max_total_bytes", "max_member_bytes", "max_ratio", "max_members", "max_link_bytes")


def _add_fetch_options(p: argparse.ArgumentParser) -> None:
    from ..data.download import BACKOFF, RETRIES, Pace  # the defaults, declared once

    p.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_ENV),
        help="local folder, file:// or http(s):// prefix searched first, as "
        f"<dataset>/<file> then <file> (default: ${MIRROR_ENV})",
    )
    p.add_argument(
        "--retries", type=int, default=RETRIES, help=f"retries per URL (default {RETRIES}; config data.retries)"
    )
    p.add_argument(
        "--backoff",
        type=float,
        default=BACKOFF,
        help=f"first retry delay in seconds, doubled each retry (default {BACKOFF:g})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=Pace.timeout,
        help=f"deadline of one attempt in seconds, in total (default {Pace.timeout:g}; config data.timeout_s)",
    )
    p.add_argument(
        "--min-rate",
        type=float,
        default=Pace.min_rate,
        help="abort an attempt slower than this many bytes/s over --rate-window "
        f"(default {Pace.min_rate:g}, 0: off; config data.min_rate_bytes_per_s)",
    )
    p.add_argument(
        "--rate-window",
        type=float,
        default=Pace.rate_window,
        help=f"seconds over which --min-rate is averaged (default {Pace.rate_window:g}; config data.rate_window_s)",
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=Pace.stall_timeout,
        help=f"socket timeout: longest wait for one read, in seconds (default {Pace.stall_timeout:g})",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub) -> None:
    p = sub.add_parser("download", help="fetch one registry item (verified, resumable)")
    p.add_argument("--dataset", help="kodak, nerf_synthetic, stanford, occupancy or lpips")
    p.add_argument("--item", help="e.g. kodim01")
    p.add_argument("--out", required=True, help="destination file")
    p.add_argument("--url", action="append", help="bypass the registry: URL to fetch (repeatable; tried in order)")
    p.add_argument("--sha256", help="with --url: expected SHA-256")
    p.add_argument("--size", type=int, help="with --url: expected size in bytes")
    _add_fetch_options(p)
    p.set_defaults(func=_download)

    p = sub.add_parser("extract", help="safely extract a .zip/.tar(.gz)/.tgz/.gz archive")
    p.add_argument("--archive", required=True, help="archive to extract (.zip, .tar, .tar.gz, .tgz, .gz)")
    p.add_argument("--out", required=True, help="target folder (replaced atomically)")
    p.add_argument("--subdir", help="keep only this top-level folder of the archive as --out")
    from ..data.archives import ExtractLimits  # stdlib only: cheap at CLI start-up

    defaults = ExtractLimits()
    for name in _LIMIT_FLAGS:
        kind = float if name == "max_ratio" else int
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=getattr(defaults, name),
            help=f"extraction limit (default {getattr(defaults, name)})",
        )
    p.set_defaults(func=_extract)

    p = sub.add_parser(
        "fetch-scene", help="copy an extracted scene folder (mirror or --from), checked against its SHA256SUMS"
    )
    p.add_argument("--dataset", default="nerf_synthetic", help="mirror subfolder (default nerf_synthetic)")
    p.add_argument("--scene", required=True, help="scene folder name, e.g. lego")
    p.add_argument("--out", required=True, help="target folder (replaced atomically)")
    p.add_argument(
        "--mirror",
        default=os.environ.get(MIRROR_ENV),
        help=f"local folder holding <dataset>/<scene>/ (default: ${MIRROR_ENV})",
    )
    p.add_argument(
        "--from",
        dest="source",
        help="take the scene from this folder instead (e.g. extracted from nerf_synthetic.zip; hard-linked)",
    )
    p.add_argument("--splits", default="train,val,test", help="comma-separated splits to copy (default train,val,test)")
    p.set_defaults(func=_fetch_scene)

    p = sub.add_parser("fetch-lpips-weights", help="fetch LPIPS AlexNet weights; record availability in a status file")
    p.add_argument("--out", required=True, help=".../alexnet-owt-7be5be79.pth")
    p.add_argument("--status", required=True, help="status JSON to write")
    p.add_argument("--url", action="append", help="override the public URL (repeatable)")
    _add_fetch_options(p)
    p.set_defaults(func=_fetch_lpips)
