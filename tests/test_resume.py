"""A killed training cell resumes from its checkpoint and ends exactly like an uninterrupted run.

Through the real workflow (tiny preset, one cell made long enough to be caught mid-training):
  * the trainer alone is killed (what a SLURM time limit or the OOM killer does): snakemake's retry
    (`--retries 1`, as profiles/slurm sets) resumes the cell in the same run;
  * snakemake and everything under it are killed (a lost node, kill -9): the cell is not taken as
    finished, and the rerun resumes it.
Both end with the metrics.json and per-step log of an uninterrupted run (`iga train-image` with the
same settings, CPU, bit for bit), and the rerun's first progress line shows that training restarted at
the checkpoint's step, not at 0.
Runs in temporary copies of the workflow: nothing lands in the repository's results/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch
from snakemake_runner import TINY, local_env, run_local, snakemake_cmd
from snakemake_runner import copy_workflow as shared_copy_workflow

ROOT = Path(__file__).resolve().parents[1]
CELL = "astronaut/PE-vanilla/s4096"
TARGET = f"results/tiny/cells/image/{CELL}/metrics.json"  # the record; checkpoints stay in work/
ITERATIONS = 1200
LONG = f"""# one cell, long enough to be killed mid-training
tasks:
  image:
    methods: [vanilla]
    settings:
      train: {{iterations: {ITERATIONS}, checkpoint_every: 50}}
"""

pytestmark = pytest.mark.timeout(600)


# --- helpers: the shared ones are in snakemake_runner.py -------------------------------------------
def copy_workflow(dest: Path) -> Path:
    shared_copy_workflow(dest)
    (dest / "long.yaml").write_text(LONG)
    return dest


def smk_env(wf: Path) -> dict:
    return local_env(wf, gpus=1)


def smk_cmd(*args) -> list:
    return snakemake_cmd("--configfile", str(TINY), "long.yaml", *args, profile="profiles/local")


def run(wf: Path, *args, check=True) -> str:
    return run_local(wf, "--configfile", str(TINY), "long.yaml", *args, env=smk_env(wf), check=check)


def cell_dir(wf: Path) -> Path:
    return wf / "work/tiny/image" / CELL


def checkpoint_step(wf: Path) -> int:
    return int(torch.load(cell_dir(wf) / "checkpoint.pt", map_location="cpu", weights_only=False)["step"])


def first_progress_step(wf: Path) -> int:
    """The step the (last) training attempt started at, from its first tqdm frame in the rule's log."""
    import re

    log = (wf / f"logs/tiny/image/{CELL}.log").read_text()
    m = re.search(r"(\d+)/(\d+) \[", log)
    assert m, log[:1000]
    assert int(m.group(2)) == ITERATIONS
    return int(m.group(1))


def trainer_processes(wf: Path) -> list:
    procs = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if p.info["cwd"] == str(wf) and "train-image" in (p.info["cmdline"] or []):
                procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return procs


def wait_for_checkpoint_then(wf: Path, proc: subprocess.Popen, kill) -> int:
    """Once the cell has a checkpoint (and no metrics.json), call ``kill``; return the step it had."""
    ckpt, t0 = cell_dir(wf) / "checkpoint.pt", time.monotonic()
    while not ckpt.exists():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before the first checkpoint:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() - t0 > 300:
            raise AssertionError("no checkpoint after 300s")
        time.sleep(0.02)
    kill()
    step = checkpoint_step(wf)
    assert 0 < step < ITERATIONS, step
    return step


def outcome(wf: Path):
    metrics = json.loads((cell_dir(wf) / "metrics.json").read_text())
    steps = [json.loads(ln) for ln in (cell_dir(wf) / "train_log.jsonl").read_text().splitlines() if ln.strip()]
    for rec in steps:
        rec.pop("time_s", None)  # wall-clock time is the one thing allowed to differ
    return metrics, steps


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A workflow copy whose input picture exists (so the timed runs start training at once)."""
    wf = copy_workflow(tmp_path_factory.mktemp("resume") / "base")
    run(wf, "--", "data/embedded/images/astronaut_16x16.png")
    return wf


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory):
    """An uninterrupted run: the command the rule runs, with the settings the workflow resolves."""
    import yaml

    from iga.cells import Cell, deep_merge, resolve_settings

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in (TINY.read_text(), LONG):
        config = deep_merge(config, yaml.safe_load(overlay))
    item, name, _ = CELL.split("/")
    settings = resolve_settings(config, Cell("image", item, *name.split("-", 1), 4096))
    out = tmp_path_factory.mktemp("resume") / "reference"
    r = subprocess.run(
        [
            "iga",
            "train-image",
            "--settings",
            json.dumps(settings, sort_keys=True),
            "--image",
            str(base / "data/embedded/images/astronaut_16x16.png"),
            "--no-lpips",
            "--out",
            str(out),
            "--cell",
            f"image/{CELL}",
            "--threads",
            "1",
        ],
        env=smk_env(base),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    steps = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln.strip()]
    for rec in steps:
        rec.pop("time_s", None)
    assert metrics["iterations"] == ITERATIONS and len(steps) == ITERATIONS
    return settings, (metrics, steps)


def check_same_as_uninterrupted(wf: Path, reference) -> None:
    settings, expected = reference
    # the workflow ran the cell with exactly the settings the reference used ...
    assert json.loads((cell_dir(wf) / "provenance.json").read_text())["settings"] == settings
    # ... and, although killed and resumed, ended with the same metrics and the same per-step log
    assert outcome(wf) == expected


@pytest.fixture
def wf(base, tmp_path):
    dest = tmp_path / "wf"
    shutil.copytree(base, dest, symlinks=True)
    return dest


def start(wf: Path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        smk_cmd(*args, "--", TARGET),
        cwd=wf,
        env=smk_env(wf),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


# --- tests --------------------------------------------------------------------------------------
def test_killed_trainer_is_retried_and_resumes(wf, reference):
    """A time limit / OOM kill of the training process: the retry resumes from the checkpoint."""
    proc = start(wf, "--retries", "1")
    try:

        def kill_trainer():
            victims = trainer_processes(wf)
            assert victims, "no training process found"
            for p in victims:
                p.send_signal(signal.SIGKILL)

        killed_at = wait_for_checkpoint_then(wf, proc, kill_trainer)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-4000:]
    assert "Trying to restart job" in out, out[-3000:]  # the kill made attempt 1 fail
    assert killed_at <= first_progress_step(wf) < ITERATIONS  # resumed, not restarted
    check_same_as_uninterrupted(wf, reference)


def test_killed_workflow_is_not_finished_and_the_rerun_resumes(wf, reference):
    """kill -9 of snakemake and all it started (a lost node): nothing is taken as finished; rerun resumes."""
    proc = start(wf)

    def kill_everything():
        root = psutil.Process(proc.pid)
        family = [root] + root.children(recursive=True)
        for p in family:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=30)

    try:
        killed_at = wait_for_checkpoint_then(wf, proc, kill_everything)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not trainer_processes(wf)
    assert not (cell_dir(wf) / "metrics.json").exists()  # written last: a killed cell has none
    assert (cell_dir(wf) / "checkpoint.pt").exists()

    run(wf, "--unlock")  # kill -9 left snakemake's lock behind (docs/CLUSTER.md)
    out = run(wf, "--", TARGET)  # profiles/default sets rerun-incomplete
    assert "rule train_image:" in out, out[-3000:]  # the killed cell was not taken as finished
    assert (cell_dir(wf) / "checkpoint.pt").exists()  # never a declared output: never deleted
    assert killed_at <= first_progress_step(wf) < ITERATIONS
    prov = json.loads((cell_dir(wf) / "provenance.json").read_text())
    assert prov["resumed_from_step"] == first_progress_step(wf)  # the record says it resumed, and where
    assert 0 < prov["train_time_this_run_s"] < prov["train_time_total_s"]
    check_same_as_uninterrupted(wf, reference)
