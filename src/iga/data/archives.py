"""Safe, bounded, all-or-nothing extraction of downloaded archives.

Why: the archives come from third-party servers, and ``zipfile``/``tarfile`` will happily
write outside the target for members such as ``../evil``, ``/etc/x`` or a symlink to ``/``,
and will expand a 1 MB bomb into gigabytes.  :func:`safe_extract` checks every member
(name, type, link destination, size, compression ratio, count; :class:`ExtractLimits`) and
raises an :class:`ArchiveError` with a one-line message naming the archive and the member.
Nothing is written to ``target`` unless the whole archive extracted: extraction happens in a
temporary folder beside ``target`` that is renamed into place at the end (with normal
permissions, 0777 minus the umask, not ``mkdtemp``'s 0700).

Supported: ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` and a
single-file ``.gz`` (e.g. ``Armadillo.ply.gz`` -> ``target/Armadillo.ply``).  ``subdir``
keeps only one top-level folder of the archive (``nerf_synthetic.zip`` -> its
``nerf_synthetic/``), so a target is never shared with unrelated files.
"""
from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import re
import secrets
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

# tarfile's own 'data' filter (3.11.4+) is a second line of defence behind our checks.
_FILTER_KW = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FILTER_ERROR = getattr(tarfile, "FilterError", ())
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
GiB = 1 << 30
MiB = 1 << 20
_COPY_CHUNK = 1 << 20
# Decoder failures of a truncated or corrupt archive, reported as CorruptArchiveError.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
            gzip.BadGzipFile, lzma.LZMAError, UnicodeDecodeError, NotImplementedError)


class ArchiveError(ValueError):
    """An archive could not be extracted safely; the message names the archive."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the target (or is a device/fifo)."""


class ArchiveLimitError(ArchiveError):
    """The archive exceeds an :class:`ExtractLimits` bound (a zip/tar bomb or a wrong file)."""


class CorruptArchiveError(ArchiveError):
    """The file is not a readable archive (truncated, an HTML page, a wrong format)."""


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds checked while extracting; defaults are far above the real archives.

    The real inputs: nerf_synthetic.zip (PNGs, ratio ~1, thousands of members), lucy.tar.gz
    (~322 MB), the Thai statue .ply.gz (106 MB), and the occupancy .mat.zip volumes, whose
    128 MiB sparse member compresses 273x (dragon) and 338x (thai_statue), measured.
    Deflate cannot exceed ~1032x, so a ratio bound of 600 still stops the classic bomb of
    repeated bytes (1 MB -> 1 GiB) with a 1.8x margin over the real volumes; the total size
    bounds everything else.  The ratio applies only once a member (or a tar stream) passes
    ``ratio_floor_bytes``: tiny files can't hurt.
    """
    max_total_bytes: int = 16 * GiB
    max_member_bytes: int = 8 * GiB
    max_ratio: float = 600.0
    max_members: int = 200_000
    max_link_bytes: int = 4096          # PATH_MAX: no real symlink target is longer
    ratio_floor_bytes: int = 16 * MiB

    def __post_init__(self):
        for name in ("max_total_bytes", "max_member_bytes", "max_ratio", "max_members",
                     "max_link_bytes", "ratio_floor_bytes"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"extraction limit {name}={value!r}; allowed: a number > 0")


class _Budget:
    """Running totals of one extraction, checked against the limits."""

    def __init__(self, archive: Path, limits: ExtractLimits):
        self.archive, self.limits = archive, limits
        self.archive_bytes = max(archive.stat().st_size, 1)
        self.total = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveLimitError(f"{self.archive}: more than {self.limits.max_members} "
                                    f"members (limit max_members); refusing at {name!r}")

    def add(self, name: str, member_bytes: int, nbytes: int,
            compressed: int | None = None) -> None:
        """Account ``nbytes`` more of member ``name`` (now ``member_bytes`` long)."""
        lim = self.limits
        self.total += nbytes
        if member_bytes > lim.max_member_bytes:
            raise ArchiveLimitError(f"{self.archive}: member {name!r} expands beyond "
                                    f"{lim.max_member_bytes} bytes (limit max_member_bytes)")
        if self.total > lim.max_total_bytes:
            raise ArchiveLimitError(f"{self.archive}: contents exceed {lim.max_total_bytes} "
                                    f"bytes at member {name!r} (limit max_total_bytes)")
        # zip: per member (its own compressed size); tar/gz: the whole stream so far
        size, packed = ((member_bytes, max(compressed, 1)) if compressed is not None
                        else (self.total, self.archive_bytes))
        if size > lim.ratio_floor_bytes and size / packed > lim.max_ratio:
            raise ArchiveLimitError(f"{self.archive}: member {name!r} expands more than "
                                    f"{lim.max_ratio:g}x its compressed size (limit "
                                    "max_ratio; a decompression bomb?)")


def _check_name(archive: Path, name: str) -> str:
    """Return the normalised relative member path, or raise when it escapes."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target "
                                 "directory ('..')")
    return norm


def _check_link(archive: Path, name: str, link: str, relative_to_member: bool,
                limits: ExtractLimits) -> None:
    """Reject links whose destination is too long, absolute or lexically outside."""
    if len(link.encode("utf-8", "surrogateescape")) > limits.max_link_bytes:
        raise ArchiveLimitError(f"{archive}: member {name!r} is a link whose target is longer "
                                f"than {limits.max_link_bytes} bytes (limit max_link_bytes)")
    if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
        raise UnsafeArchiveError(f"{archive}: member {name!r} links to absolute path "
                                 f"{link!r}")
    base = posixpath.dirname(posixpath.normpath(name)) if relative_to_member else ""
    joined = posixpath.normpath(posixpath.join(base, link.replace("\\", "/")))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} links outside the target "
                                 f"({link!r})")


def _inside(root: Path, path: str | Path) -> bool:
    """True when ``path`` resolves (following symlinks already on disk) inside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _check_dest(archive: Path, tmp: Path, name: str, dest: Path) -> None:
    # Lexical checks miss paths routed through symlinks extracted earlier: check the real
    # on-disk destination right before writing each member.
    if dest != tmp and not (_inside(tmp, dest.parent) and _inside(tmp, dest)):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written through a "
                                 "symlink outside the target")


def _copy_counted(fi, dest: Path, name: str, budget: _Budget,
                  compressed: int | None = None) -> None:
    """Stream one member to ``dest``, enforcing the limits on the bytes really produced."""
    written = 0
    with open(dest, "wb") as fo:
        for block in iter(lambda: fi.read(_COPY_CHUNK), b""):
            written += len(block)
            budget.add(name, written, len(block), compressed)
            fo.write(block)


def _extract_tar(archive: Path, tmp: Path, limits: ExtractLimits) -> None:
    budget = _Budget(archive, limits)
    with tarfile.open(archive) as tf:
        for m in tf:
            budget.member(m.name)
            _check_name(archive, m.name)
            if m.issym():
                _check_link(archive, m.name, m.linkname, True, limits)
            elif m.islnk():
                _check_link(archive, m.name, m.linkname, False, limits)
            elif not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device, "
                                         "fifo or other special file")
            if m.isfile():  # declared sizes are exact for tar: check before writing
                budget.add(m.name, m.size, m.size)
            dest = tmp / m.name  # raw name: '..' after a symlink must be resolved for real
            _check_dest(archive, tmp, m.name, dest)
            link_dest = dest.parent / m.linkname if m.issym() else tmp / m.linkname
            if (m.issym() or m.islnk()) and not _inside(tmp, link_dest):
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} links outside "
                                         f"the target ({m.linkname!r})")
            try:
                tf.extract(m, tmp, set_attrs=not m.issym(), **_FILTER_KW)
            except _FILTER_ERROR as exc:  # pragma: no cover - our checks come first
                raise UnsafeArchiveError(f"{archive}: member {m.name!r}: {exc}") from exc


def _is_zip_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _zip_link_target(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo,
                     limits: ExtractLimits) -> str:
    # Never read a link member whole: its declared size is checked first and the read is
    # capped, so a 512 MiB "link target" costs nothing.
    if info.file_size > limits.max_link_bytes:
        raise ArchiveLimitError(f"{archive}: member {info.filename!r} is a link whose target "
                                f"is longer than {limits.max_link_bytes} bytes (limit "
                                "max_link_bytes)")
    with zf.open(info) as f:
        data = f.read(limits.max_link_bytes + 1)
    if len(data) > limits.max_link_bytes:
        raise ArchiveLimitError(f"{archive}: member {info.filename!r} is a link whose target "
                                f"is longer than {limits.max_link_bytes} bytes")
    return data.decode("utf-8", "surrogateescape")


def _extract_zip(archive: Path, tmp: Path, limits: ExtractLimits) -> None:
    budget, declared = _Budget(archive, limits), _Budget(archive, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything cheap, declared sizes too, before writing
            declared.member(info.filename)
            _check_name(archive, info.filename)
            if ".." in info.filename.replace("\\", "/").split("/"):
                # zipfile silently drops '..' parts ('a/../b' -> 'a/b'); refuse instead
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} "
                                         "contains '..'")
            declared.add(info.filename, info.file_size, info.file_size, info.compress_size)
            if _is_zip_link(info):
                _check_link(archive, info.filename,
                            _zip_link_target(archive, zf, info, limits), True, limits)
        for info in infos:
            dest = tmp / _check_name(archive, info.filename)
            _check_dest(archive, tmp, info.filename, dest)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if _is_zip_link(info):
                link = _zip_link_target(archive, zf, info, limits)
                if not _inside(tmp, dest.parent / link):
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} "
                                             f"links outside the target ({link!r})")
                os.symlink(link, dest)
                continue
            with zf.open(info) as fi:  # the sizes really produced are counted, not trusted
                _copy_counted(fi, dest, info.filename, budget, info.compress_size)


def _extract_gz(archive: Path, tmp: Path, limits: ExtractLimits) -> None:
    name = archive.name[: -len(".gz")] if archive.name.endswith(".gz") else archive.name + ".out"
    with gzip.open(archive, "rb") as fi:
        _copy_counted(fi, tmp / name, name, _Budget(archive, limits))


def _check_links_resolve_inside(archive: Path, tmp: Path) -> None:
    """After extraction: every link must resolve inside, chains and later members included.

    Why: each link was checked when written, but a link can point through another created
    after it (``a -> b/..`` first, then ``b -> .``), which no per-member check can see.
    """
    for dirpath, dirnames, filenames in os.walk(tmp):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            if p.is_symlink() and not _inside(tmp, p):
                rel = p.relative_to(tmp).as_posix()
                raise UnsafeArchiveError(f"{archive}: member {rel!r} links outside the target "
                                         f"after following links ({os.readlink(p)!r})")


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
    raise CorruptArchiveError(f"{archive}: not a .zip, .tar(.gz/.bz2/.xz), .tgz or .gz "
                              "archive")


def _make_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder with the usual mode (0777 minus umask), unlike ``mkdtemp``'s 0700."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def safe_extract(archive: Path, target: Path, limits: ExtractLimits | None = None,
                 subdir: str | None = None) -> list[Path]:
    """Extract ``archive`` into ``target`` (replacing it) and return the files, sorted.

    ``subdir``: keep only this top-level folder of the archive as ``target``.  Raises an
    :class:`ArchiveError` (unsafe member, limit exceeded, corrupt archive) naming the
    archive; ``target`` is then left as it was and no temporary folder remains.
    """
    archive, target = Path(archive), Path(target)
    limits = limits or ExtractLimits()
    if not archive.is_file():
        raise CorruptArchiveError(f"{archive}: no such archive file")
    kind = archive_kind(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_dir(target.parent, f".{target.name}.extract-")
    try:
        try:
            {"zip": _extract_zip, "tar": _extract_tar, "gz": _extract_gz}[kind](
                archive, tmp, limits)
        except ArchiveError:
            raise
        except _CORRUPT as exc:
            raise CorruptArchiveError(f"{archive}: not a valid {kind} archive (truncated or "
                                      f"corrupt?): {_one_line(exc)}") from exc
        except OSError as exc:  # bz2/lzma decoders report bad data as OSError too
            raise CorruptArchiveError(f"{archive}: extraction failed: {_one_line(exc)}") from exc
        _check_links_resolve_inside(archive, tmp)
        result = tmp
        if subdir is not None:
            result = tmp / _check_name(archive, subdir)
            if not result.is_dir() or result.is_symlink() or result == tmp:
                raise CorruptArchiveError(f"{archive}: has no top-level folder {subdir!r}")
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(result, target)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in target.rglob("*") if p.is_file() or p.is_symlink())
