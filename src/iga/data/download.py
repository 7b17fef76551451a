"""Verified, resumable, atomic downloads with only the standard library.

Why this module exists: every dataset the pipeline uses (Kodak, NeRF-synthetic, Stanford
scans, LPIPS weights) comes from a third-party server that may be slow, flaky, down or
serving a changed file.  :func:`fetch` makes one file appear at ``dest`` only when it is
complete and verified, so a Snakemake rule either gets the right bytes or a clear error.

Lookup order (explicit, because a local mirror must win over the network):

1. if ``mirror`` is given, each relative path in ``mirror_paths`` (default: ``[dest.name]``)
   under the mirror, in order -- e.g. ``mirror/kodak/kodim01.png`` then
   ``mirror/kodim01.png``.  A mirror is a local folder, a ``file://`` URL or an
   ``http(s)://`` URL prefix;
2. then each URL of ``urls``, in order.

Per candidate: transient failures (unreachable host, timeout, 5xx/408/429, a body shorter
than its Content-Length, a dropped connection, an attempt past its deadline or slower than
the minimum rate) are retried ``retries`` times with
exponential backoff ``backoff * 2**k`` seconds; the partial ``.part`` file is kept and the
next attempt resumes it with an HTTP ``Range`` request (restarting when the server answers
200).  Permanent failures (404 and other 4xx, a wrong size or checksum, an HTML page where a
binary was expected, a failed format check) move on to the next candidate at once: retrying
a 404 only wastes time, and a mirror holding a corrupt copy should not hide a good upstream.
When every candidate failed, :class:`DownloadError` names each one tried with its own error.

Time bounds per attempt (a socket timeout alone lets a server trickling 1 KiB every 2 s hang
forever): ``timeout`` seconds in total, and at least ``min_rate`` bytes/s averaged over each
``rate_window`` seconds; ``stall_timeout`` bounds a single silent socket read.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from .formats import check_format

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "iga-repro-downloader/1.0 (+urllib)"
MAX_BACKOFF_S = 60.0


class DownloadError(RuntimeError):
    """No candidate produced a verified file; ``attempts`` lists ``(source, error)``."""

    def __init__(self, message: str, attempts: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.attempts = list(attempts)


class _Transient(Exception):
    """Worth retrying the same source (network trouble, truncated body)."""


class _Permanent(Exception):
    """Retrying the same source cannot help (404, wrong checksum, wrong size)."""


class _NotInMirror(_Permanent):
    """The mirror lacks this path: expected for all but one mirror path, so quiet."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large archives do not fill memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, sha256: str | None = None, size: int | None = None,
           sha256_prefix: str | None = None, name: str | None = None,
           min_size: int | None = None, fmt: str | None = None) -> str | None:
    """Return None when ``path`` matches every given expectation, else why not.

    ``name`` is the file name used in the message (the final name, not ``.part``);
    ``min_size`` and ``fmt`` (see :mod:`iga.data.formats`) stand in for a missing hash.
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        return f"{path} does not exist"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size mismatch for {name}: expected {size} bytes, got {actual_size}"
    if min_size is not None and actual_size < min_size:
        return (f"size check failed for {name}: {actual_size} bytes, expected at least "
                f"{min_size} (an error page?)")
    if fmt is not None:
        problem = check_format(path, fmt, name)
        if problem is not None:
            return problem
    if sha256 is None and sha256_prefix is None:
        return None
    digest = sha256_file(path)
    if sha256 is not None and digest != sha256.lower():
        return (f"checksum mismatch for {name}: expected sha256 {sha256.lower()}, "
                f"got {digest}")
    if sha256_prefix is not None and not digest.startswith(sha256_prefix.lower()):
        return (f"checksum mismatch for {name}: expected sha256 starting with "
                f"{sha256_prefix.lower()}, got {digest}")
    return None


def _mirror_candidates(mirror: str | os.PathLike, rel_paths: Sequence[str]) -> list[str]:
    """Turn a mirror (folder, file:// or http(s):// prefix) plus relative paths into sources."""
    m = os.fspath(mirror)
    if m.startswith("file://"):
        m = urllib.request.url2pathname(urllib.parse.urlparse(m).path)
    out: list[str] = []
    for rel in rel_paths:
        rel = rel.strip("/")
        if re.match(r"^https?://", m):
            out.append(m.rstrip("/") + "/" + urllib.parse.quote(rel))
        else:
            out.append(str(Path(m) / rel))
    return list(dict.fromkeys(out))  # de-duplicate, keep order


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, file=sys.stderr, disable=not enabled, leave=False, mininterval=1.0)


def _copy_local(src: Path, part: Path, progress: bool) -> None:
    if not src.is_file():
        raise _NotInMirror("not in mirror")
    with open(src, "rb") as fi, open(part, "wb") as fo, \
            _progress_bar(src.stat().st_size, 0, src.name, progress) as bar:
        for block in iter(lambda: fi.read(CHUNK), b""):
            fo.write(block)
            bar.update(len(block))
        fo.flush()
        os.fsync(fo.fileno())


RETRIES = 4  # retries per URL
BACKOFF = 1.0  # first retry delay in seconds, doubled each retry


@dataclass(frozen=True)
class Pace:
    """Time bounds of one attempt: total seconds, minimum bytes/s over a window, stall."""
    timeout: float = 7200.0
    min_rate: float = 1024.0
    rate_window: float = 60.0
    stall_timeout: float = 60.0

    def __post_init__(self):
        for name in ("timeout", "rate_window", "stall_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; allowed: seconds > 0")
        if not self.min_rate >= 0:
            raise ValueError(f"min_rate={self.min_rate!r}; allowed: bytes/s >= 0 (0: off)")

    def socket_timeout(self) -> float:
        # no byte for a whole rate window already means a rate of 0
        window = self.rate_window if self.min_rate > 0 else self.stall_timeout
        return min(self.stall_timeout, self.timeout, window)


class _Clock:
    """Raises _Transient when an attempt runs past its deadline or below its minimum rate."""

    def __init__(self, pace: Pace):
        self.pace = pace
        self.start = self.window_start = time.monotonic()
        self.window_bytes = 0

    def check(self, received: int) -> None:
        now, p = time.monotonic(), self.pace
        if now - self.start > p.timeout:
            raise _Transient(f"attempt exceeded its deadline of {p.timeout:g} s after "
                             f"{received} bytes (data.timeout_s)")
        if p.min_rate > 0 and now - self.window_start >= p.rate_window:
            rate = (received - self.window_bytes) / (now - self.window_start)
            if rate < p.min_rate:
                raise _Transient(f"too slow: {rate:.0f} bytes/s over the last "
                                 f"{now - self.window_start:.1f} s, below the minimum "
                                 f"{p.min_rate:g} bytes/s (data.min_rate_bytes_per_s)")
            self.window_start, self.window_bytes = now, received


def _http_get(url: str, part: Path, size: int | None, pace: Pace, progress: bool) -> bool:
    """Stream ``url`` into ``part``, resuming it when possible; True when it resumed."""
    clock = _Clock(pace)
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=pace.socket_timeout())
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # our .part is stale or already complete: start over
            part.unlink(missing_ok=True)
            raise _Transient("HTTP 416 on resume; restarting from byte 0") from exc
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise _Permanent(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Transient(f"{type(exc).__name__}: {reason}") from exc

    with resp:
        status = getattr(resp, "status", 200)
        resumed = False
        if offset and status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            resumed = bool(m and int(m.group(1)) == offset)
            if not resumed:  # unusable partial answer: restart cleanly on the next attempt
                part.unlink(missing_ok=True)
                raise _Transient("server answered an unexpected Content-Range; restarting")
        elif offset:
            log.info("%s ignores Range (HTTP %s); restarting %s", url, status, part.name)
            offset = 0
        ctype = resp.headers.get("Content-Type", "")
        name = part.name[: -len(".part")]
        if ctype.startswith("text/html") and not name.endswith((".html", ".htm")):
            raise _Permanent(f"server returned an HTML page ({ctype}), not the file "
                             "(login, quota or confirmation page?)")
        length = resp.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else None
        if size is not None and expected_total is not None and expected_total != size:
            raise _Permanent(f"size mismatch: expected {size} bytes, server announces "
                             f"{expected_total}")
        received = offset
        try:
            with open(part, "ab" if resumed else "wb") as fo, \
                    _progress_bar(expected_total or size, offset, name, progress) as bar:
                while True:
                    # read1: return what arrived, so the clock is checked between trickles
                    block = resp.read1(CHUNK)
                    if not block:
                        break
                    fo.write(block)
                    received += len(block)
                    bar.update(len(block))
                    clock.check(received)
                    if size is not None and received > size:
                        raise _Permanent(f"size mismatch: server sent more than {size} bytes")
                fo.flush()
                os.fsync(fo.fileno())
        except (http.client.HTTPException, OSError) as exc:
            raise _Transient(f"connection dropped after {received} bytes: "
                             f"{type(exc).__name__}: {exc}") from exc
        if expected_total is not None and received != expected_total:
            raise _Transient(f"truncated body: got {received} of {expected_total} bytes")
        return resumed


def _try_source(source: str, is_local: bool, part: Path, *, checks: dict, size: int | None,
                retries: int, backoff: float, pace: Pace, progress: bool) -> None:
    """Fetch one candidate into ``part`` and verify it, retrying transient errors."""
    attempt = 0
    while True:
        try:
            if is_local:
                try:
                    _copy_local(Path(source), part, progress)
                except OSError as exc:  # unreadable mirror file, disk full: next source
                    raise _Permanent(f"{type(exc).__name__}: {exc}") from exc
                resumed = False
            else:
                resumed = _http_get(source, part, size, pace, progress)
            problem = verify(part, size=size, name=part.name[: -len(".part")], **checks)
            if problem is None:
                return
            part.unlink(missing_ok=True)
            if resumed:  # a stale .part may have been glued to new bytes: retry from 0
                raise _Transient(f"{problem} (after resuming); retrying from byte 0")
            raise _Permanent(problem)
        except _Transient as exc:
            if attempt >= retries:
                raise
            delay = min(backoff * 2 ** attempt, MAX_BACKOFF_S)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.2fs", source, exc, attempt, retries, delay)
            time.sleep(delay)


def fetch(urls: Sequence[str], dest: Path, sha256: str | None, size: int | None = None,
          sha256_prefix: str | None = None, mirror: str | os.PathLike | None = None,
          retries: int = RETRIES, backoff: float = BACKOFF, timeout: float = Pace.timeout,
          progress: bool = True, mirror_paths: Sequence[str] | None = None,
          min_size: int | None = None, fmt: str | None = None, min_rate: float = Pace.min_rate,
          rate_window: float = Pace.rate_window, stall_timeout: float = Pace.stall_timeout) -> Path:
    """Make ``dest`` hold the verified file; return ``dest``.

    ``sha256``/``size``/``sha256_prefix``/``min_size``/``fmt`` are checked when not None
    (the prefix is torchvision's convention, e.g. ``alexnet-owt-7be5be79.pth``; ``fmt`` one
    of :data:`iga.data.formats.FORMATS`).  ``timeout`` (total s), ``min_rate`` (bytes/s over
    ``rate_window`` s, 0: off) and ``stall_timeout`` (one silent read) bound each attempt.
    ``mirror`` is searched first, at each relative path of ``mirror_paths`` (default
    ``[dest.name]``), then ``urls`` in order.  An existing ``dest`` that verifies is kept
    untouched.  Bytes stream into ``dest + '.part'`` and reach ``dest`` only by ``os.replace``
    after verification, so ``dest`` never holds a partial or wrong file.  Raises :class:`DownloadError`.
    """
    dest = Path(dest)
    pace = Pace(timeout, min_rate, rate_window, stall_timeout)
    checks = dict(sha256=sha256, sha256_prefix=sha256_prefix, min_size=min_size, fmt=fmt)
    if dest.exists():
        problem = verify(dest, size=size, **checks)
        if problem is None:
            log.info("%s already present and verified", dest)
            return dest
        log.warning("%s exists but %s; downloading it again", dest, problem)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    candidates: list[tuple[str, bool]] = []
    if mirror is not None and os.fspath(mirror) != "":
        rels = list(mirror_paths) if mirror_paths else [dest.name]
        for c in _mirror_candidates(mirror, rels):
            candidates.append((c, not re.match(r"^https?://", c)))
    candidates += [(u, False) for u in urls]
    if not candidates:
        raise DownloadError(f"no source for {dest.name}: no URL given and no mirror")

    attempts: list[tuple[str, str]] = []
    for source, is_local in candidates:
        try:
            _try_source(source, is_local, part, checks=checks, size=size, retries=retries,
                        backoff=backoff, pace=pace, progress=progress)
        except (_Transient, _Permanent) as exc:
            attempts.append((source, str(exc)))
            if is_local and not isinstance(exc, _NotInMirror):
                part.unlink(missing_ok=True)  # never resume a network fetch from a local copy
            (log.debug if isinstance(exc, _NotInMirror) else log.warning)("%s: %s", source, exc)
            continue
        os.replace(part, dest)
        log.info("fetched %s from %s", dest, source)
        return dest

    # A .part left now holds only the bytes of an interrupted transfer (failed checks delete
    # it), so it is kept for the next run to resume; it is never mistaken for ``dest``.
    # Every source with its own reason: the last one tried (often the real URL, unreachable
    # offline) is rarely the cause (e.g. a corrupt copy in the mirror).
    tried = "\n".join(f"  - {s}: {e}" for s, e in attempts)
    raise DownloadError(f"could not fetch {dest.name} into {dest}; tried {len(attempts)} "
                        f"source(s), each failed:\n{tried}", attempts)
