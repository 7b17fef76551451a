"""How fast snakemake plans the workflow: the paper grid, and synthetic image grids of ~1k and ~10k cells.

    python benchmarks/dag_scale.py                 # paper grid + 1k + 10k cells
    python benchmarks/dag_scale.py --sizes 1000    # just one synthetic size
    python benchmarks/dag_scale.py --json out.json

Each measurement is the wall time of `snakemake -n` (parse, config validation of every cell,
DAG build, dry-run scheduling) in a scratch copy of the workflow, so nothing touches the repo's
.snakemake/, work/ or results/. The synthetic grids are real image-task configs, made large with
method *variants* (`IGA-v0001`, ... each with its own `tasks.image.variants` entry and learning
rate): the schema's item and architecture names stay valid, and every cell has distinct settings,
as in a hyperparameter sweep. All other tasks are switched off there, so the numbers are per
image cell. "per 1k jobs" is the marginal cost: (time - time of a 12-cell grid) / (extra jobs / 1000).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KODAK = [f"kodim{i:02d}" for i in range(1, 25)]
ARCHS = ["ReLU", "PE", "SIREN"]
BASE_METHODS = ["vanilla", "FR", "BN", "IGA"]
OTHER_TASKS = ["image_ablation", "occupancy", "toy", "nerf"]


def synthetic_overlay(n_cells: int) -> dict:
    """An overlay on config.yaml with ~n_cells image cells (24 Kodak items x 3 archs x methods)."""
    per_method = len(KODAK) * len(ARCHS)
    n_variants = max(0, -(-n_cells // per_method) - len(BASE_METHODS))
    variants = {f"v{i:04d}": {"optim": {"lr": round(1e-4 * (1 + i), 6)}} for i in range(n_variants)}
    methods = BASE_METHODS + [f"IGA-{v}" for v in variants]
    tasks = {t: {"enabled": False} for t in OTHER_TASKS}
    tasks["image"] = {"items": KODAK, "architectures": ARCHS, "methods": methods, "variants": variants}
    return {"preset": "dagscale", "tasks": tasks}


def small_overlay() -> dict:
    tasks = {t: {"enabled": False} for t in OTHER_TASKS}
    tasks["image"] = {"items": KODAK[:1], "architectures": ARCHS, "methods": BASE_METHODS}
    return {"preset": "dagscale", "tasks": tasks}


def scratch_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("workflow", "profiles"):
        shutil.copytree(ROOT / name, dest / name)
    return dest


def dry_run(wf: Path, overlay: dict | None, label: str) -> dict:
    args = ["snakemake", "-n", "--cores", "1", "--quiet", "rules"]
    if overlay is not None:
        path = wf / f"{label}.yaml"
        path.write_text(yaml.safe_dump(overlay, sort_keys=False))
        args += ["--configfile", str(path)]
    t0 = time.perf_counter()
    r = subprocess.run(args, cwd=wf, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise SystemExit(f"{label}: snakemake -n failed:\n{out[-3000:]}")
    stats = out.split("Job stats:", 1)[-1].split("\n\n", 1)[0]  # the first job-stats table
    total = re.search(r"^total\s+(\d+)", stats, re.M)
    jobs = int(total.group(1)) if total else 0
    trains = sum(int(m.group(1)) for m in re.finditer(r"^train_\w+\s+(\d+)", stats, re.M))
    return {"label": label, "wall_s": round(wall, 2), "jobs": jobs, "training_cells": trains}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000], help="synthetic cell counts")
    p.add_argument("--no-paper", action="store_true", help="skip the paper grid")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="iga-dag-scale-") as tmp:
        wf = scratch_workflow(Path(tmp))
        if not args.no_paper:
            rows.append(dry_run(wf, None, "paper grid (config.yaml)"))
        base = dry_run(wf, small_overlay(), "12 image cells")
        rows.append(base)
        for n in args.sizes:
            row = dry_run(wf, synthetic_overlay(n), f"{n} image cells")
            extra = max(row["jobs"] - base["jobs"], 1)
            row["s_per_1k_jobs"] = round((row["wall_s"] - base["wall_s"]) / (extra / 1000), 2)
            rows.append(row)
    print(f"{'grid':<28} {'jobs':>7} {'cells':>7} {'snakemake -n (s)':>17} {'s per 1k jobs':>14}")
    for r in rows:
        print(
            f"{r['label']:<28} {r['jobs']:>7} {r['training_cells']:>7} {r['wall_s']:>17.2f} "
            f"{r.get('s_per_1k_jobs', ''):>14}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
