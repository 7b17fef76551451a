"""One trainer per cell: an exclusive ``flock`` on ``<cell dir>/.train.lock`` for the whole job.

Two trainers on one cell (an orphaned job still running after ``kill -9`` of snakemake and
``--unlock``, or two workflows started on one work folder) would interleave their step logs and
checkpoints. Every ``iga train-*`` / ``iga nerf-train`` takes this lock first; a second one exits
at once with a one-line error naming the holder's PID. The kernel releases a flock when its holder
dies in any way, so a killed trainer never leaves a lock that blocks the rerun.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .configs import ConfigError

LOCK_NAME = ".train.lock"


class CellBusyError(ConfigError):
    """Another live process is training this cell."""


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


@contextmanager
def cell_lock(cell_dir: Path, label: str = "") -> Iterator[Path]:
    """Hold the cell's training lock while the ``with`` body runs; raise CellBusyError if taken."""
    cell_dir = Path(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    path = cell_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inheritable: children do not hold it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise CellBusyError(
                    f"cell folder {cell_dir} is being trained by another process "
                    f"({_holder(path)}); wait for it to end or stop it, then rerun"
                ) from None
            raise
        # who holds it, for the message above and for people looking at the folder
        info = (
            f"pid {os.getpid()} on {os.uname().nodename}, {label or cell_dir.name}, "
            f"since {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race a new holder)
