#!/usr/bin/env bash
# CI check of profiles/slurm on a real single-node SLURM cluster (127.0.0.1, 2 fake GPUs):
# the tiny preset's image branch runs through `snakemake --profile profiles/slurm`, then we check
# from SLURM itself (scontrol show job, MinJobAge=3600 keeps finished jobs) that every job went
# through sbatch with the resources the profile and the preset set: training jobs in the `gpu`
# partition with one GPU (--gpus=1, scheduled on a fake GPU: the job saw CUDA_VISIBLE_DEVICES from
# SLURM), the other jobs in the `cpu` partition without one; and that a second run plans nothing.
# The cluster is started here and always stopped by PID (trap), also on failure. Exit 0 = pass.
#   bash .ci/slurm/run_check.sh            (root; apt-installs the Debian slurm packages if missing)
# Environment: IGA_SLURM_CHECK_KEEP=1 keeps the temporary workflow copy; IGA_SLURM_* (cluster.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLUSTER=$ROOT/.ci/slurm/cluster.sh
T0=$(date +%s)
log() { echo "[slurm-check +$(( $(date +%s) - T0 ))s] $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    echo "run_check.sh: needs root (it starts munged/slurmctld/slurmd)" >&2
    exit 2
fi
if [[ -x $ROOT/.venv/bin/snakemake ]]; then
    export PATH=$ROOT/.venv/bin:$PATH VIRTUAL_ENV=$ROOT/.venv  # jobs inherit it (sbatch --export=ALL)
fi
command -v snakemake >/dev/null && command -v iga >/dev/null || { echo "run_check.sh: snakemake/iga not found" >&2; exit 2; }

WORK=$(mktemp -d /tmp/iga-slurm-check.XXXXXX)
cleanup() {
    local rc=$?
    bash "$CLUSTER" stop || rc=1
    if [[ ${IGA_SLURM_CHECK_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        log "workflow copy kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    if [[ $rc -eq 0 ]]; then log "PASS"; else log "FAIL (exit $rc)"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$CLUSTER" start
eval "$(bash "$CLUSTER" env)"   # SLURM_CONF of the private cluster, for snakemake, sbatch, squeue

# the workflow, in a scratch copy (its outputs never land in the repository)
cp -r "$ROOT/Snakefile" "$ROOT/config.yaml" "$ROOT/workflow" "$ROOT/profiles" "$WORK/"
cp "$ROOT/tests/presets/tiny.yaml" "$WORK/tiny.yaml"
cd "$WORK"

# The loopback cluster's answers to docs/CLUSTER.md's questions: partitions `cpu`/`gpu`, no account,
# no slurmdbd (so squeue, not sacct, with a short first status wait; MinJobAge is 3600).
export IGA_SLURM_PARTITION=cpu IGA_SLURM_GPU_PARTITION=gpu IGA_SLURM_STATUS_COMMAND=squeue IGA_SLURM_INIT_SECONDS=2
unset IGA_SLURM_ACCOUNT SLURM_JOB_ID CUDA_VISIBLE_DEVICES IGA_GPU_COUNT
SMK=(snakemake --profile profiles/slurm --configfile tiny.yaml)

log "snakemake --profile profiles/slurm (tiny preset, image branch)"
if ! timeout 480 "${SMK[@]}" --slurm-keep-successful-logs > snakemake.out 2>&1; then
    tail -n 60 snakemake.out >&2
    for f in logs/slurm/*/*.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }; done
    log "the snakemake run failed"
    exit 1
fi
grep -E "submitted with SLURM jobid|Finished job|steps \(100%\)" snakemake.out | tail -n 12 >&2 || true

scontrol show job -d -o > jobs.txt
log "second run: nothing may be planned"
timeout 120 "${SMK[@]}" -n > dryrun.out 2>&1 || { tail -n 30 dryrun.out >&2; exit 1; }
grep -q "Nothing to be done" dryrun.out || { tail -n 40 dryrun.out >&2; log "an unchanged rerun planned jobs"; exit 1; }

python3 - jobs.txt tiny.yaml <<'PY'
"""Each snakemake job must be one SLURM job with the resources the profile and the preset ask for."""
import re
import sys
from pathlib import Path

import yaml

jobs = []
for line in Path(sys.argv[1]).read_text().splitlines():
    if not line.startswith("JobId="):
        continue
    fields = dict(re.findall(r"(\S+?)=(\S*)", line))
    jobs.append(fields)
preset = yaml.safe_load(Path(sys.argv[2]).read_text())
train = preset["resources"]["train_image"]
items, archs, methods = (preset["tasks"]["image"][k] for k in ("items", "architectures", "methods"))
errors = []


def rule_of(job):
    m = re.match(r"rule_([A-Za-z0-9_]+?)(_wildcards_.*)?$", job.get("Comment", ""))
    return m.group(1) if m else None


def minutes(limit):  # [D-]HH:MM:SS -> minutes
    d, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(d or 0) * 1440 + h * 60 + m + s / 60


by_rule = {}
for job in jobs:
    by_rule.setdefault(rule_of(job), []).append(job)
print("SLURM jobs:", {k: len(v) for k, v in by_rule.items()})
for job in jobs:
    print("  ", job["JobId"], rule_of(job), job.get("JobState"), "partition=" + job.get("Partition", "?"),
          "gres=" + job.get("TresPerJob", "-"), "mem=" + job.get("MinMemoryNode", "?"),
          "time=" + job.get("TimeLimit", "?"), "cpus=" + job.get("NumCPUs", "?"), "exit=" + job.get("ExitCode", "?"))
    if job.get("JobState") != "COMPLETED":
        errors.append(f"job {job['JobId']} ({rule_of(job)}) ended {job.get('JobState')}")

n_cells = len(items) * len(archs) * len(methods)
expect = {"train_image": n_cells, "make_embedded_image": len(items), "collect_image": 1, "tables_image": 1,
          "figures_image": 1}
for rule, n in expect.items():
    if len(by_rule.get(rule, [])) != n:
        errors.append(f"{rule}: {len(by_rule.get(rule, []))} SLURM job(s), expected {n}")
if None in by_rule:
    errors.append(f"{len(by_rule[None])} SLURM job(s) without a snakemake rule comment")
if any(r and r.startswith("train_") and r != "train_image" for r in by_rule):
    errors.append(f"training rules of disabled tasks ran: {sorted(by_rule)}")

for job in by_rule.get("train_image", []):
    where = f"train_image job {job['JobId']}"
    if job.get("Partition") != "gpu":
        errors.append(f"{where}: partition {job.get('Partition')}, expected gpu (IGA_SLURM_GPU_PARTITION)")
    if job.get("TresPerJob") != f"gres:gpu:{train['gpu']}":
        errors.append(f"{where}: TresPerJob={job.get('TresPerJob')}, expected gres:gpu:{train['gpu']}")
    if job.get("MinMemoryNode") != f"{train['mem_mb']}M":
        errors.append(f"{where}: memory {job.get('MinMemoryNode')}, expected {train['mem_mb']}M")
    if minutes(job.get("TimeLimit", "0:0:0")) != train["runtime"]:
        errors.append(f"{where}: time limit {job.get('TimeLimit')}, expected {train['runtime']} min")
    if job.get("NumCPUs") != str(train["threads"]):
        errors.append(f"{where}: {job.get('NumCPUs')} CPUs, expected {train['threads']} (threads)")
    if job.get("Requeue") != "1":
        errors.append(f"{where}: Requeue={job.get('Requeue')}, expected 1 (slurm-requeue)")
for rule in sorted(r for r in by_rule if r and not r.startswith("train_")):  # data, collect, tables, figures, cost
    for job in by_rule.get(rule, []):
        where = f"{rule} job {job['JobId']}"
        if job.get("Partition") != "cpu":
            errors.append(f"{where}: partition {job.get('Partition')}, expected cpu (IGA_SLURM_PARTITION)")
        if job.get("TresPerJob"):
            errors.append(f"{where}: asked for {job['TresPerJob']}, expected no GPU")
        if job.get("MinMemoryNode") != "4000M" or minutes(job.get("TimeLimit", "0:0:0")) != 30:
            errors.append(f"{where}: mem {job.get('MinMemoryNode')} time {job.get('TimeLimit')}, "
                          "expected the profile's default-resources 4000M / 30 min")

# the GPU was scheduled: SLURM set CUDA_VISIBLE_DEVICES in the job, and `iga gpu-slot` ran the cell on it
from iga.cells import deep_merge, enumerate_cells  # noqa: E402  (the cells, with their seed folders)

config = deep_merge(yaml.safe_load(Path("config.yaml").read_text()), preset)
for c in enumerate_cells(config, "image"):
    cell = c.id
    log = c.dir("logs/tiny").with_suffix(".log")
    text = log.read_text() if log.exists() else ""
    m = re.search(r"gpu-slot: .*CUDA_VISIBLE_DEVICES=(\S*) - (.*)", text)
    if not m:
        errors.append(f"{log}: no gpu-slot line (did the training job run through iga gpu-slot?)")
    elif m.group(1) not in ("0", "1"):
        errors.append(f"{log}: the job saw CUDA_VISIBLE_DEVICES={m.group(1)!r}, expected a fake GPU 0 or 1")
    elif "SLURM allocated" not in m.group(2):
        errors.append(f"{log}: gpu-slot did not use SLURM's allocation: {m.group(2)}")
    else:
        print(f"   {cell}: CUDA_VISIBLE_DEVICES={m.group(1)} ({m.group(2)})")
    if not (c.dir("results/tiny/cells") / "metrics.json").exists():
        errors.append(f"{c.dir('results/tiny/cells')}/metrics.json missing")
for t in ("table1_image_average", "table6_image_psnr"):
    if not Path(f"results/tiny/tables/{t}.csv").exists():
        errors.append(f"results/tiny/tables/{t}.csv missing")

if errors:
    print("SLURM check FAILED:\n  - " + "\n  - ".join(errors))
    sys.exit(1)
print(f"SLURM check: {len(jobs)} jobs, resources as the profile sets them")
PY
log "done in $(( $(date +%s) - T0 ))s"
