"""Would the toy study (paper section 5, Exps. 1-2) run at full scale on this machine?

Times a few steps of representative paper-scale toy cells (settings resolved from config.yaml exactly
as the workflow does; only the iteration count, logging and evaluation are changed) and projects the
wall time of each cell kind and of the whole paper grid at the paper's iteration counts. The cost per
step of the adjusted methods is dominated by the per-step eNTK and its eigendecomposition (N² kernel,
N = 1024 for Exp. 1, N/G groups for Exp. 2), so a few steps after warm-up are representative.

    python benchmarks/toy_full_scale.py                 # ~5 min on 2 cores
    python benchmarks/toy_full_scale.py --steps 20 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iga.cells import Cell, cell_seeds, enumerate_cells, resolve_settings  # noqa: E402

# (item, arch, method, cells it prices): one timed case per cost class; the pattern (fnmatch on
# "item/arch-method") says which cells of the paper grid that class stands for
CASES = [
    ("exp1_w1024_s16", "TwoLayer", "vanilla", "exp1_*/TwoLayer-vanilla"),
    ("exp1_w1024_s16", "TwoLayer", "NTK-e15", "exp1_*/TwoLayer-NTK-*"),
    ("exp1_w1024_s16", "TwoLayer", "eNTK-e15", "exp1_w[12]0*/TwoLayer-eNTK-*"),  # widths 1024, 2048
    ("exp1_w8192_s16", "TwoLayer", "eNTK-e15", "exp1_w[48]*/TwoLayer-eNTK-*"),  # widths 4096, 8192
    ("exp1_w8192_s16", "TwoLayer", "IGA-e15", "exp1_*/TwoLayer-IGA-*"),
    ("exp2_s16", "ReLU", "vanilla", "exp2_*/*-vanilla"),
    ("exp2_s16", "ReLU", "IGA-g1e8", "exp2_*/*-IGA-g1*"),
    ("exp2_s16", "ReLU", "IGA-g8e8", "exp2_*/*-IGA-g[48]*"),
]


def time_case(
    config: dict, item: str, arch: str, method: str, steps: int, threads: int, tmp: Path, solver: str | None = None
) -> dict:
    seed = cell_seeds(config, "toy", item, arch, method)[0]
    settings = resolve_settings(config, Cell("toy", item, arch, method, seed))
    full_iterations = int(settings["train"]["iterations"])
    s = copy.deepcopy(settings)
    if solver:
        s["adjuster"]["solver"] = solver
    s["train"].update(iterations=steps, device="cpu", checkpoint_every=10**9, log_every=max(1, steps // 10))
    s["task"].update(eval_every=10**9, save_residuals=False, kernel_monitor=False)
    out = tmp / f"{item}-{arch}-{method}"
    (tmp / "s.json").write_text(json.dumps(s))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "iga.cli",
            "toy-train",
            "--settings-file",
            str(tmp / "s.json"),
            "--out",
            str(out),
            "--cell",
            f"toy/{item}/{arch}-{method}/s{seed}",
            "--threads",
            str(threads),
            "--no-resume",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if res.returncode:
        raise SystemExit(f"{item}/{arch}-{method} failed:\n{res.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    tpi = metrics["time_per_iteration_s"]
    return {
        "s_per_it": tpi,
        "fallbacks": metrics.get("eig_fallbacks"),
        "paper_iterations": full_iterations,
        "hours_per_cell": tpi * full_iterations / 3600,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="steps timed per case (the first logged interval is warm-up)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per cell")
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument(
        "--solver",
        choices=["eigh", "topk", "auto"],
        default=None,
        help="override adjuster.solver (default: the config's, i.e. auto)",
    )
    args = ap.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    grid = [f"{c.item}/{c.arch}-{c.method}" for g in ("exp1", "exp2") for c in enumerate_cells(config, "toy", g)]
    print(
        f"paper toy grid: {len(grid)} cells; {args.steps} steps timed per case, {args.threads} thread(s), "
        f"{os.cpu_count()} CPU(s); solver: {args.solver or 'as configured'}; loadavg {os.getloadavg()}"
    )
    print(f"{'case':42s} {'s/it':>8s} {'paper its':>9s} {'h/cell':>7s} {'cells':>5s} {'core-h':>8s}")
    total = 0.0
    with tempfile.TemporaryDirectory() as d:
        for item, arch, method, pattern in CASES:
            r = time_case(config, item, arch, method, args.steps, args.threads, Path(d), args.solver)
            n = sum(fnmatch.fnmatch(c, pattern) for c in grid)
            core_h = r["hours_per_cell"] * n * args.threads
            total += core_h
            print(
                f"{item + '/' + arch + '-' + method:42s} {r['s_per_it']:8.3f} {r['paper_iterations']:9d} "
                f"{r['hours_per_cell']:7.2f} {n:5d} {core_h:8.1f}"
                + (f"  (eigensolver fallbacks: {r['fallbacks']})" if r["fallbacks"] else ""),
                flush=True,
            )
    print(
        f"projected paper toy grid (each class priced by its timed case): {total:.0f} core-hours "
        f"= {total / max(os.cpu_count() or 1, 1):.0f} h wall on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
