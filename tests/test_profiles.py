"""profiles/local says so when it finds no GPU (every training job then runs with gpu=0, on the CPU)."""

import os
import subprocess

import pytest
from snakemake_runner import TINY, copy_workflow, snakemake_cmd

WARNING = "profiles/local: WARNING: no GPU"


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("profiles") / "wf")


@pytest.mark.parametrize("gpus, warned", [("0", True), ("2", False)])
def test_local_profile_warns_when_it_finds_no_gpu(workflow_copy, gpus, warned):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env["IGA_GPU_COUNT"] = gpus
    r = subprocess.run(
        snakemake_cmd("-n", "--configfile", str(TINY), profile="profiles/local"),
        cwd=workflow_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (WARNING in r.stderr) is warned
