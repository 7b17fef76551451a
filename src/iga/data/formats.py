"""Cheap content checks for downloads that have no published checksum.

Why: a server can answer 200 with a login page, an error page or a truncated file; without a
hash, only the content can tell.  :func:`check_format` returns None when ``path`` looks like
the named format, else why not, in one line.  Formats:

- ``gzip``: gzip magic, and the whole stream decompresses (its CRC and length check out, so
  a truncated download is caught here, not at extraction);
- ``tar.gz``: ``gzip`` plus a tar header at the start of the decompressed stream;
- ``ply.gz``: ``gzip`` plus a PLY header (``ply`` then ``format``) at the start;
- ``zip``: zip magic and a readable central directory (at the end: catches truncation).
"""
from __future__ import annotations

import gzip
import tarfile
import zipfile
import zlib
from pathlib import Path

FORMATS = ("gzip", "tar.gz", "ply.gz", "zip")
_CHUNK = 1 << 20


def _gzip_problem(path: Path) -> tuple[str | None, bytes]:
    """(problem or None, first 1 KiB of the decompressed stream)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return "not gzip data (no gzip magic bytes; an HTML or error page?)", b""
    head = b""
    try:
        with gzip.open(path, "rb") as g:
            for block in iter(lambda: g.read(_CHUNK), b""):
                if len(head) < 1024:
                    head += block[: 1024 - len(head)]
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt or truncated gzip data ({' '.join(str(exc).split())})", head
    return None, head


def check_format(path: Path, fmt: str, name: str | None = None) -> str | None:
    """None when ``path`` has format ``fmt`` (one of :data:`FORMATS`), else why not."""
    path = Path(path)
    name = name or path.name
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "zip":
        if not zipfile.is_zipfile(path):
            return f"format check failed for {name}: not a readable zip archive"
        return None
    problem, head = _gzip_problem(path)
    if problem is None and fmt == "tar.gz":
        try:
            tarfile.TarInfo.frombuf(head[:512].ljust(512, b"\0"), "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            problem = "gzip data does not start with a tar header"
    if problem is None and fmt == "ply.gz" and not (
            head.startswith(b"ply") and b"format" in head[:200]):
        problem = "gzip data does not start with a PLY header"
    return None if problem is None else f"format check failed for {name}: {problem}"
