"""One way for tests to run the project's workflow.

* :func:`run_snakemake` — `python -m snakemake` on the repo's Snakefile from any folder (dry runs, small
  real runs whose outputs land in that folder);
* :func:`copy_workflow` + :func:`run_local` — a private copy of the workflow (Snakefile, config.yaml,
  workflow/, profiles/) run through ``--profile profiles/local`` with fake GPUs, for tests that edit
  files, kill jobs or need Snakemake's metadata to themselves.

conftest.py already puts this environment's bin first on PATH, so the rules' `iga` is ours.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "presets" / "tiny.yaml"


def snakemake_cmd(*args: str, profile: str | None = None, snakefile: Path | None = None) -> list[str]:
    """The command line every test runs Snakemake with (this environment's Snakemake): ``profile``
    (e.g. ``profiles/local``) or ``--cores 2``; ``snakefile``: the repository's, run from another folder."""
    cmd = [sys.executable, "-m", "snakemake"]
    if snakefile:
        cmd += ["-s", str(snakefile)]
    return cmd + (["--profile", profile] if profile else ["--cores", "2"]) + list(args)


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(*args, snakefile=ROOT / "Snakefile"),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def copy_workflow(dest: Path) -> Path:
    """A runnable copy of the workflow in ``dest`` (nothing lands in the repository's results/)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("workflow", "profiles"):
        shutil.copytree(ROOT / name, dest / name)
    return dest


def local_env(workflow: Path, gpus: int | str = 1, **extra) -> dict:
    """The environment of a local-profile run: ``gpus`` fake GPU slots locked under the copy."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update(IGA_GPU_COUNT=str(gpus), IGA_GPU_LOCK_DIR=str(workflow / "gpu-locks"))
    env.update(extra)
    return env


def run_local(workflow: Path, *args: str, env: dict | None = None, check: bool = True, timeout: int = 400) -> str:
    """`snakemake --profile profiles/local ARGS` in a copy; its output, or AssertionError when it fails."""
    cmd = snakemake_cmd(*args, profile="profiles/local")
    r = subprocess.run(
        cmd, cwd=workflow, env=env or local_env(workflow), capture_output=True, text=True, timeout=timeout
    )
    out = r.stdout + r.stderr
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{out[-4000:]}")
    return out
