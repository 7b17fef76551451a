"""GPU slots for local runs: each training job sees only the GPU(s) it was given.

Snakemake's local scheduler only *counts* GPUs (``--resources gpu=N``): it starts at most N
GPU jobs at once but does not say which GPU each one may use. ``iga gpu-slot`` closes that
gap. It takes ``k`` free slots out of the machine's GPUs, sets ``CUDA_VISIBLE_DEVICES`` to
them and replaces itself (``exec``) with the training command::

    iga gpu-slot --gpus 1 --label image/kodim03/PE-IGA -- iga train-image ...

A slot is a lock file ``<lock dir>/gpu-<id>.lock`` held with ``fcntl.flock``. The lock's file
descriptor is inherited across ``exec``, so the slot is held exactly as long as the training
process lives and the kernel frees it when that process ends in any way (exit, Ctrl-C,
``kill -9``): a crashed job never leaves a stale lock behind. Locks are per machine
(``/tmp/iga-gpu-slots`` by default), so two workflows running at once on one machine share
the GPUs correctly too.

Which GPUs: ``IGA_GPU_COUNT`` (a number; tests and fake GPUs), else the ids listed in
``CUDA_VISIBLE_DEVICES`` (when set, a user's restriction is respected), else the GPUs that
``nvidia-smi -L`` lists, else none.

Special cases:

* ``--gpus 0``: the job asked for no GPU, so it sees none (``CUDA_VISIBLE_DEVICES=""``), as
  snakemake accounted for it; ``device: auto`` then trains on the CPU.
* no GPU on the machine: the command runs unchanged (``device: auto`` picks the CPU).
* inside a SLURM job (``SLURM_JOB_ID`` set) SLURM already gave the job its GPUs in
  ``CUDA_VISIBLE_DEVICES``: a job that asks for all of them (one sbatch job per workflow job,
  the SLURM profile) runs on them as they are, no locks; several local jobs inside one
  multi-GPU allocation (``salloc`` + ``--profile profiles/local``) take slots among them, with
  locks kept per SLURM job (GPU ids in a job are the job's own).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LOCK_DIR = Path("/tmp/iga-gpu-slots")


def _parse_visible(value: str) -> list[str]:
    """GPU ids of a CUDA_VISIBLE_DEVICES value ("" or "-1" → none; CUDA stops at the first invalid id)."""
    ids = []
    for part in value.split(","):
        part = part.strip()
        if not part or part.startswith("-"):
            break
        ids.append(part)
    return ids


def _nvidia_smi_count() -> int:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for ln in out.stdout.splitlines() if ln.startswith("GPU "))


def available_gpus(env: dict[str, str] | None = None) -> list[str]:
    """The ids (as CUDA_VISIBLE_DEVICES spells them) of the GPUs jobs on this machine may use."""
    env = os.environ if env is None else env
    forced = env.get("IGA_GPU_COUNT", "").strip()
    if forced:
        try:
            n = int(forced)
        except ValueError:
            raise ValueError(f"IGA_GPU_COUNT={forced!r} must be a whole number") from None
        return [str(i) for i in range(max(n, 0))]
    if "CUDA_VISIBLE_DEVICES" in env:
        return _parse_visible(env["CUDA_VISIBLE_DEVICES"])
    return [str(i) for i in range(_nvidia_smi_count())]


def gpu_count(env: dict[str, str] | None = None) -> int:
    """How many GPUs to give snakemake as ``--resources gpu=N`` (profiles/local uses this)."""
    try:
        return len(available_gpus(env))
    except ValueError:
        return 0


def default_lock_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("IGA_GPU_LOCK_DIR"):
        return Path(env["IGA_GPU_LOCK_DIR"])
    if env.get("SLURM_JOB_ID"):  # GPU ids inside a SLURM job are the job's own: keep its locks apart
        return Path(tempfile.gettempdir()) / f"iga-gpu-slots-slurm-{env['SLURM_JOB_ID']}"
    return DEFAULT_LOCK_DIR


@dataclass
class Slots:
    gpus: list[str]  # ids handed to the job ([] for none)
    fds: list[int]  # open, flock'ed lock files (inheritable), one per GPU
    visible: str  # the CUDA_VISIBLE_DEVICES value for the job
    note: str  # one line saying what was decided

    def release(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def _lock_file(lock_dir: Path, gpu: str) -> int:
    path = lock_dir / f"gpu-{gpu}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        os.fchmod(fd, 0o666)  # other users' jobs on a shared machine may take the slot later
    except OSError:
        pass
    return fd


def _try_take(lock_dir: Path, gpu: str) -> int | None:
    fd = _lock_file(lock_dir, gpu)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def _describe(fd: int, label: str) -> None:
    """Write who holds the slot into its lock file (for people looking at /tmp/iga-gpu-slots)."""
    info = f"pid={os.getpid()} label={label} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
    except OSError:
        pass


def acquire(
    k: int,
    label: str = "",
    lock_dir: Path | None = None,
    timeout: float | None = None,
    poll: float = 0.5,
    env: dict[str, str] | None = None,
    log=None,
) -> Slots:
    """Take ``k`` free GPU slots (all or nothing), waiting while fewer are free.

    Raises TimeoutError after ``timeout`` seconds (None: wait for ever).
    """
    env = dict(os.environ if env is None else env)
    if k <= 0:
        return Slots([], [], "", "no GPU requested: the job sees none (CUDA_VISIBLE_DEVICES='')")
    pool = available_gpus(env)
    if not pool:
        return Slots([], [], env.get("CUDA_VISIBLE_DEVICES", ""), "no GPU on this machine: running unchanged")
    if k > len(pool):
        k = len(pool)  # as snakemake caps a job's resources to what is available
    if env.get("SLURM_JOB_ID") and k == len(pool):
        # one sbatch job per workflow job (profiles/slurm): SLURM's allocation is the job's alone
        return Slots(list(pool), [], ",".join(pool), f"the {k} GPU(s) SLURM allocated to job {env['SLURM_JOB_ID']}")
    lock_dir = Path(lock_dir) if lock_dir else default_lock_dir(env)
    if not lock_dir.exists():
        lock_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(lock_dir, 0o1777)  # shared like /tmp: every user's jobs take slots here
        except OSError:
            pass
    # start the search at a place that depends on the job, so jobs started together spread out
    start = sum(label.encode()) % len(pool) if label else 0
    order = pool[start:] + pool[:start]
    t0 = time.monotonic()
    waited = False
    while True:
        taken: list[tuple] = []
        for gpu in order:
            fd = _try_take(lock_dir, gpu)
            if fd is not None:
                taken.append((gpu, fd))
                if len(taken) == k:
                    break
        if len(taken) == k:
            for _, fd in taken:
                os.set_inheritable(fd, True)
                _describe(fd, label)
            gpus = [g for g, _ in taken]
            visible = ",".join(gpus)
            note = f"slot(s) {visible} of {len(pool)} GPU(s) [{', '.join(pool)}] (locks in {lock_dir})"
            if waited:
                note += f" after waiting {time.monotonic() - t0:.1f}s"
            return Slots(gpus, [fd for _, fd in taken], visible, note)
        for _, fd in taken:  # all or nothing: never sit on part of a multi-GPU request
            os.close(fd)
        if timeout is not None and time.monotonic() - t0 >= timeout:
            raise TimeoutError(f"no {k} free GPU slot(s) among {pool} in {lock_dir} after {timeout}s")
        if not waited and log:
            log(f"gpu-slot: all {len(pool)} GPU slot(s) in {lock_dir} are busy; waiting")
        waited = True
        time.sleep(poll)


def job_environment(slots: Slots, k: int, env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    if k <= 0 or slots.gpus:
        env["CUDA_VISIBLE_DEVICES"] = slots.visible
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # ids as nvidia-smi numbers them
    env["IGA_GPU_SLOT"] = slots.visible
    return env


def run(
    command: Sequence[str], k: int, label: str = "", lock_dir: Path | None = None, timeout: float | None = None
) -> int:
    """Take the slots and ``exec`` the command with them (does not return on success)."""
    if not command:
        print("gpu-slot: no command given (usage: iga gpu-slot --gpus K -- COMMAND ...)", file=sys.stderr)
        return 2
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    slots = acquire(k, label=label, lock_dir=lock_dir, timeout=timeout, log=log)
    env = job_environment(slots, k)
    log(
        f"gpu-slot: {label or command[0]}: CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '<unset>')}"
        f" - {slots.note}"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], list(command), env)
    except OSError as exc:
        slots.release()
        print(f"gpu-slot: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached


def main(argv=None) -> int:
    """``python -m iga.gpu_slots --gpus K [--label L] -- COMMAND ...`` (same as ``iga gpu-slot``)."""
    import argparse

    p = argparse.ArgumentParser(prog="iga gpu-slot", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return run_from_args(args)


def add_arguments(p) -> None:
    import argparse

    p.add_argument("--gpus", type=int, default=1, help="GPUs the job needs (snakemake's resources.gpu)")
    p.add_argument("--label", default="", help="the job, e.g. its cell id (written into the lock file)")
    p.add_argument("--lock-dir", help=f"folder of lock files (default {DEFAULT_LOCK_DIR} or $IGA_GPU_LOCK_DIR)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds of waiting")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run on the slot(s)")


def run_from_args(args) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    try:
        return run(
            command,
            args.gpus,
            label=args.label,
            lock_dir=Path(args.lock_dir) if args.lock_dir else None,
            timeout=args.timeout,
        )
    except TimeoutError as exc:
        print(f"gpu-slot: {exc}", file=sys.stderr)
        return 75  # EX_TEMPFAIL


if __name__ == "__main__":
    sys.exit(main())
