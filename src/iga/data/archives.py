"""Safe, all-or-nothing extraction of downloaded archives.

Why: the archives come from third-party servers, and ``zipfile``/``tarfile`` will happily
write outside the target for members such as ``../evil``, ``/etc/x`` or a symlink to ``/``.
:func:`safe_extract` checks every member first and raises :class:`UnsafeArchiveError`
naming the offending member; nothing is written to ``target`` unless the whole archive
extracted, because extraction happens in a temporary folder beside ``target`` that is then
renamed into place.

Supported: ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` and a
single-file ``.gz`` (e.g. ``Armadillo.ply.gz`` -> ``target/Armadillo.ply``).
"""
from __future__ import annotations

import gzip
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

# tarfile's own 'data' filter (3.11.4+) is a second line of defence behind our checks.
_FILTER_KW = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FILTER_ERROR = getattr(tarfile, "FilterError", ())
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the target (or is a device/fifo)."""


def _check_name(archive: Path, name: str) -> str:
    """Return the normalised relative member path, or raise when it escapes."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path")
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} escapes the target "
                                 "directory ('..')")
    return norm


def _check_link(archive: Path, name: str, link: str, relative_to_member: bool) -> None:
    """Reject links whose destination is absolute or lexically outside the target."""
    if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} links to absolute path "
                                 f"{link!r}")
    base = posixpath.dirname(posixpath.normpath(name)) if relative_to_member else ""
    joined = posixpath.normpath(posixpath.join(base, link.replace("\\", "/")))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} links outside the target "
                                 f"({link!r})")


def _inside(root: Path, path: str | Path) -> bool:
    """True when ``path`` resolves (following symlinks already on disk) inside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _extract_tar(archive: Path, tmp: Path) -> None:
    with tarfile.open(archive) as tf:
        for m in tf:
            _check_name(archive, m.name)
            if m.issym():
                _check_link(archive, m.name, m.linkname, relative_to_member=True)
            elif m.islnk():
                _check_link(archive, m.name, m.linkname, relative_to_member=False)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} is a device, "
                                         "fifo or other special file")
            # Lexical checks miss paths routed through symlinks extracted earlier: check
            # the real on-disk destination right before writing this member.
            dest = tmp / m.name  # raw name: '..' after a symlink must be resolved for real
            if dest != tmp and not (_inside(tmp, dest.parent) and _inside(tmp, dest)):
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} would be written "
                                         "through a symlink outside the target")
            link_dest = dest.parent / m.linkname if m.issym() else tmp / m.linkname
            if (m.issym() or m.islnk()) and not _inside(tmp, link_dest):
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r} links outside "
                                         f"the target ({m.linkname!r})")
            try:
                tf.extract(m, tmp, set_attrs=not m.issym(), **_FILTER_KW)
            except _FILTER_ERROR as exc:  # pragma: no cover - our checks come first
                raise UnsafeArchiveError(f"{archive.name}: member {m.name!r}: {exc}") from exc


def _extract_zip(archive: Path, tmp: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything before writing anything
            _check_name(archive, info.filename)
            if ".." in info.filename.replace("\\", "/").split("/"):
                # zipfile silently drops '..' parts ('a/../b' -> 'a/b'); refuse instead
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} "
                                         "contains '..'")
            if stat.S_ISLNK(info.external_attr >> 16):
                _check_link(archive, info.filename, zf.read(info).decode(),
                            relative_to_member=True)
        for info in infos:
            dest = tmp / _check_name(archive, info.filename)
            if dest != tmp and not (_inside(tmp, dest.parent) and _inside(tmp, dest)):
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} would be "
                                         "written through a symlink outside the target")
            if stat.S_ISLNK(info.external_attr >> 16):
                link = zf.read(info).decode()
                if not _inside(tmp, dest.parent / link):
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} "
                                             f"links outside the target ({link!r})")
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link, dest)
            else:
                zf.extract(info, tmp)


def _extract_gz(archive: Path, tmp: Path) -> None:
    name = archive.name[: -len(".gz")] if archive.name.endswith(".gz") else archive.name + ".out"
    with gzip.open(archive, "rb") as fi, open(tmp / name, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)


def archive_kind(archive: Path) -> str:
    """'zip', 'tar' or 'gz' from the name, falling back to sniffing the content."""
    n = archive.name.lower()
    if n.endswith(".zip"):
        return "zip"
    if n.endswith(TAR_SUFFIXES):
        return "tar"
    if n.endswith(".gz"):
        return "gz"
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ValueError(f"{archive}: not a .zip, .tar(.gz/.bz2/.xz), .tgz or .gz archive")


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract ``archive`` into ``target`` (replacing it) and return the files, sorted.

    Raises :class:`UnsafeArchiveError` naming the first unsafe member; ``target`` is then
    left as it was.
    """
    archive, target = Path(archive), Path(target)
    kind = archive_kind(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=target.parent))
    try:
        {"zip": _extract_zip, "tar": _extract_tar, "gz": _extract_gz}[kind](archive, tmp)
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p for p in target.rglob("*") if p.is_file() or p.is_symlink())
