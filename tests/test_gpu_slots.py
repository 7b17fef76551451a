"""iga.gpu_slots / `iga gpu-slot`: each local training job gets its own GPU(s).

Fake GPU counts (IGA_GPU_COUNT) and a private lock folder; the child commands print the
CUDA_VISIBLE_DEVICES they were given and wait for a release file, so the tests can hold slots
from several processes at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from snakemake_runner import TINY, copy_workflow, snakemake_cmd

from iga import gpu_slots

# the job: report the slot, then hold it until the release file appears
HOLDER = (
    "import os, sys, time, pathlib\n"
    "out, release = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
    "out.write_text(os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>') + '\\n')\n"
    "while not release.exists():\n"
    "    time.sleep(0.02)\n"
)


def _env(tmp_path, count=None, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "IGA_GPU_COUNT")}
    if count is not None:
        env["IGA_GPU_COUNT"] = str(count)
    env["IGA_GPU_LOCK_DIR"] = str(tmp_path / "locks")
    env.update(extra)
    return env


_STARTED = []


@pytest.fixture(autouse=True)
def _no_leftover_jobs():
    """Whatever a test leaves running (it failed half-way) is released and ended."""
    yield
    while _STARTED:
        proc, release = _STARTED.pop()
        release.touch()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(tmp_path, name, gpus, env, use_cli=False):
    out, release = tmp_path / f"{name}.out", tmp_path / f"{name}.release"
    head = ["iga", "gpu-slot"] if use_cli else [sys.executable, "-m", "iga.gpu_slots"]
    cmd = head + ["--gpus", str(gpus), "--label", name, "--", sys.executable, "-c", HOLDER, str(out), str(release)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _STARTED.append((proc, release))
    return proc, out, release


def _wait_for(path: Path, timeout=30.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {timeout}s")


def _finish(proc, release):
    release.touch()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_available_gpus_sources(monkeypatch):
    assert gpu_slots.available_gpus({"IGA_GPU_COUNT": "3"}) == ["0", "1", "2"]
    assert gpu_slots.available_gpus({"IGA_GPU_COUNT": "0", "CUDA_VISIBLE_DEVICES": "0,1"}) == []
    assert gpu_slots.available_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert gpu_slots.available_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpu_slots.available_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert gpu_slots.available_gpus({"CUDA_VISIBLE_DEVICES": "GPU-1a2b,GPU-3c4d"}) == ["GPU-1a2b", "GPU-3c4d"]
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no nvidia-smi: no GPU
    assert gpu_slots.available_gpus({}) == []
    assert gpu_slots.gpu_count({"IGA_GPU_COUNT": "many"}) == 0
    with pytest.raises(ValueError, match="IGA_GPU_COUNT"):
        gpu_slots.available_gpus({"IGA_GPU_COUNT": "many"})


def test_nvidia_smi_is_counted(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake A (UUID: GPU-0)'\necho 'GPU 1: Fake B (UUID: GPU-1)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu_slots.available_gpus({}) == ["0", "1"]


def test_concurrent_jobs_get_distinct_slots_and_the_next_one_waits(tmp_path):
    env = _env(tmp_path, count=4)
    jobs = [_start(tmp_path, f"job{i}", 1, env, use_cli=(i == 0)) for i in range(4)]
    try:
        seen = [_wait_for(out) for _, out, _ in jobs]
        assert sorted(seen) == ["0", "1", "2", "3"], seen  # four jobs, four different GPUs

        fifth = _start(tmp_path, "job4", 1, env)
        time.sleep(1.5)
        assert not fifth[1].exists(), "a fifth job ran although all 4 GPUs were taken"
        assert fifth[0].poll() is None

        freed = seen[2]
        err = _finish(*[(p, r) for p, _, r in jobs][2])
        assert f"CUDA_VISIBLE_DEVICES={freed}" in err
        assert _wait_for(fifth[1]) == freed  # it got exactly the slot that was given back
        err = _finish(fifth[0], fifth[2])
        assert "busy; waiting" in err and "after waiting" in err
    finally:
        for _, _, release in jobs:
            release.touch()


def test_a_killed_job_frees_its_slot(tmp_path):
    env = _env(tmp_path, count=1)
    proc, out, release = _start(tmp_path, "victim", 1, env)
    assert _wait_for(out) == "0"
    # the exec'd job holds the lock itself: no wrapper process is left in between
    assert "iga.gpu_slots" not in open(f"/proc/{proc.pid}/cmdline").read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    nxt, out2, release2 = _start(tmp_path, "next", 1, env)
    assert _wait_for(out2, timeout=10) == "0"
    _finish(nxt, release2)


def test_multi_gpu_requests_are_all_or_nothing(tmp_path):
    env = _env(tmp_path, count=3)
    a = _start(tmp_path, "a", 2, env)
    try:
        got = _wait_for(a[1]).split(",")
        assert len(got) == 2 and len(set(got)) == 2
        b = _start(tmp_path, "b", 2, env)  # needs 2, only 1 free: waits, holding nothing
        c = _start(tmp_path, "c", 1, env)  # the free one
        left = ({"0", "1", "2"} - set(got)).pop()
        assert _wait_for(c[1]) == left
        time.sleep(1.0)
        assert not b[1].exists()
        _finish(a[0], a[2])
        assert sorted(_wait_for(b[1]).split(",")) == sorted(got)
        _finish(b[0], b[2])
        _finish(c[0], c[2])
    finally:
        a[2].touch()


def test_no_gpu_requested_hides_gpus_and_no_gpu_present_changes_nothing(tmp_path):
    env = _env(tmp_path, count=2)
    proc, out, release = _start(tmp_path, "cpu_job", 0, env)
    assert _wait_for(out) == ""  # gpu=0: the job sees no GPU
    _finish(proc, release)

    env = _env(tmp_path, count=0)
    proc, out, release = _start(tmp_path, "no_gpus", 1, env)
    assert _wait_for(out) == "<unset>"  # nothing to hand out: the command runs as it is
    err = _finish(proc, release)
    assert "no GPU on this machine" in err


def test_inside_a_slurm_job_the_allocation_is_used(tmp_path):
    env = _env(tmp_path, CUDA_VISIBLE_DEVICES="5", SLURM_JOB_ID="777")
    del env["IGA_GPU_LOCK_DIR"]
    assert gpu_slots.default_lock_dir(env).name == "iga-gpu-slots-slurm-777"
    env["IGA_GPU_LOCK_DIR"] = str(tmp_path / "slurm-locks")
    # one sbatch job per cell: SLURM's GPU is used as it is (its id, no lock)
    proc, out, release = _start(tmp_path, "slurm_job", 1, env)
    assert _wait_for(out) == "5"
    assert "SLURM allocated" in _finish(proc, release)
    assert not (tmp_path / "slurm-locks").exists()
    # local jobs inside a 2-GPU allocation: one GPU each, among SLURM's
    env["CUDA_VISIBLE_DEVICES"] = "4,6"
    a, b = _start(tmp_path, "a", 1, env), _start(tmp_path, "b", 1, env)
    assert sorted([_wait_for(a[1]), _wait_for(b[1])]) == ["4", "6"]
    _finish(a[0], a[2])
    _finish(b[0], b[2])


def test_timeout_when_no_slot_frees(tmp_path):
    env = _env(tmp_path, count=1)
    holder = _start(tmp_path, "holder", 1, env)
    try:
        _wait_for(holder[1])
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "iga.gpu_slots",
                "--gpus",
                "1",
                "--timeout",
                "0.5",
                "--",
                sys.executable,
                "-c",
                "print('ran')",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 75, r.stderr
        assert "ran" not in r.stdout and "no 1 free GPU slot" in r.stderr
    finally:
        _finish(holder[0], holder[2])


def test_local_profile_counts_the_detected_gpus(tmp_path):
    """profiles/local gives snakemake --resources gpu=<detected>: a GPU job is capped to what exists."""
    copy_workflow(tmp_path)
    preset = TINY
    seen = {}
    for count in (0, 3):
        r = subprocess.run(
            snakemake_cmd("-n", "--configfile", str(preset), profile="profiles/local"),
            cwd=tmp_path,
            env=_env(tmp_path, count=count),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        seen[count] = {ln.strip() for ln in r.stdout.splitlines() if "iga gpu-slot --gpus" in ln}
        assert seen[count], r.stdout
    assert all("--gpus 0 " in ln for ln in seen[0])  # no GPU: the tiny preset's gpu=1 is capped to 0
    assert all("--gpus 1 " in ln for ln in seen[3])  # 3 GPUs: each job asks for its 1
