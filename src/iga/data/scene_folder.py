"""An extracted scene folder from a local data mirror, copied verified (e.g. one Blender scene).

Why: a mirror may hold a scene already unpacked (``<mirror>/nerf_synthetic/lego/transforms_train.json``
+ ``train/…``) instead of the whole ``nerf_synthetic.zip``. :func:`copy_scene` copies the files the
scene needs; when the folder has a ``SHA256SUMS`` (``sha256sum`` format) every file it lists is
checked, and a mismatch fails naming the file. The copy lands in a temporary folder beside ``dest``
that is renamed into place only when complete, as :mod:`iga.data.archives` does.

:func:`nerf_scene_source` decides, when the workflow is planned, where a preset that uses the scenes'
train split only (``tasks.nerf.train_only_scenes``) takes that split from: the mirror's scene folder, or
``nerf_synthetic.zip`` (mirror or download) through its extraction. Either way :func:`copy_scene` writes
the same files (the train split, ``splits=("train",)``) to the same place, so a cell's result and record
do not depend on which copy a machine has. Presets evaluated on the real test split read the zip's scenes.
Only local mirrors (a folder or ``file://``) are searched for scene folders.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from .download import sha256_file

SUMS = "SHA256SUMS"


class SceneFolderError(RuntimeError):
    """The scene folder is incomplete or a file fails its checksum; the message names the file."""


def local_mirror(mirror: str | os.PathLike | None) -> Path | None:
    """The mirror as a local folder, or None (no mirror, or an http(s) one)."""
    if not mirror:
        return None
    m = os.fspath(mirror)
    if m.startswith("file://"):
        m = urllib.request.url2pathname(urllib.parse.urlparse(m).path)
    elif "://" in m:
        return None
    return Path(m)


def mirror_scene(mirror, dataset: str, scene: str) -> Path | None:
    """``<mirror>/<dataset>/<scene>`` when it holds ``transforms_train.json``, else None."""
    root = local_mirror(mirror)
    if root is None:
        return None
    folder = root / dataset / scene
    return folder if (folder / "transforms_train.json").is_file() else None


def nerf_scene_source(mirror, scene: str, dataset: str = "nerf_synthetic") -> str:
    """Where a train-split-only preset takes ``scene`` from: ``"folder"`` (the mirror's extracted scene
    folder: no 4 GB archive) or ``"zip"`` (``nerf_synthetic.zip``, mirror first, then the URLs)."""
    return "folder" if mirror_scene(mirror, dataset, scene) is not None else "zip"


def read_sums(path: Path) -> dict[str, str]:
    """``sha256sum`` output (``<hex>  <path>``, ``*`` for binary mode) → {relative path: hex}."""
    sums = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name:
            raise SceneFolderError(f"{path}:{n}: not a sha256sum line: {line!r}")
        sums[_safe_rel(name, path)] = digest.lower()
    return sums


def _safe_rel(name: str, where: Path) -> str:
    rel = Path(name.removeprefix("./"))
    if rel.is_absolute() or ".." in rel.parts:
        raise SceneFolderError(f"{where}: {name!r} is outside the scene folder")
    return rel.as_posix()


SPLITS = ("train", "val", "test")


def needed_files(src: Path, splits=SPLITS) -> list[str]:
    """The scene's transforms_{split}.json and every image their frames name (relative paths)."""
    files = []
    for split in splits:
        t = src / f"transforms_{split}.json"
        if not t.is_file():
            continue
        files.append(t.name)
        for frame in json.loads(t.read_text())["frames"]:
            files.append(_safe_rel(frame["file_path"] + ".png", t))
    return list(dict.fromkeys(files))


def _place(src: Path, out: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, out)  # an extracted archive beside the data: no second copy of the images
            return
        except OSError:
            pass  # another filesystem, or no hard links: copy
    shutil.copyfile(src, out)


def copy_scene(src: Path, dest: Path, splits=SPLITS, link: bool = False) -> list[str]:
    """Copy the ``splits`` of the scene at ``src`` into ``dest`` (replaced whole), verified against the
    folder's SHA256SUMS where it has one; return the files copied. ``link``: hard-link where possible."""
    src, dest = Path(src), Path(dest)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or "train" not in splits:
        raise ValueError(f"splits={list(splits)}; allowed: train plus any of val, test")
    if not (src / "transforms_train.json").is_file():
        raise SceneFolderError(f"{src} has no transforms_train.json (not a Blender-format scene folder)")
    files = needed_files(src, splits)
    sums = read_sums(src / SUMS) if (src / SUMS).is_file() else None
    if sums is not None:
        unlisted = [f for f in files if f not in sums]
        if unlisted:
            raise SceneFolderError(f"{src / SUMS} does not list {unlisted[0]} ({len(unlisted)} file(s) unlisted)")
    missing = [f for f in files if not (src / f).is_file()]
    if missing:
        raise SceneFolderError(f"{src}: {missing[0]} is missing ({len(missing)} file(s) named by transforms_*.json)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        for rel in files:
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            _place(src / rel, out, link)
            if sums is not None and (got := sha256_file(out)) != sums[rel]:
                raise SceneFolderError(f"checksum mismatch for {rel} in {src}: expected sha256 {sums[rel]}, got {got}")
        if sums is not None:  # the sums of what was copied (a subset of the splits lists no absent file)
            (tmp / SUMS).write_text("".join(f"{sums[rel]}  {rel}\n" for rel in files))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files
