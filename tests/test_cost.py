"""The cost table: measured values from benchmark TSVs and provenance, the device per cell, a missing
benchmark said as such; and the workflow wiring (the cost rule depends on the image + ablation cells)."""
import csv
import json
import shutil
from pathlib import Path

import pytest

from iga.report.cost import benchmark_path, cost_rows, read_benchmark, read_cell, write_cost
from iga.report.tables import TABLE_ROW_KEYS
from snakemake_runner import run_snakemake

ROOT = Path(__file__).resolve().parents[1]
TSV_HEAD = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def make_cell(work: Path, rel: str, device="cpu (x86_64, 2 cores)", tpi=0.02, gpu=None, bench=(12.5, 900.0, 4.0),
              iterations=100):
    d = work / rel
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"psnr": 30.0, "iterations": iterations}))
    prov = {"cell": rel, "device": device, "time_per_iteration_s": tpi, "wall_time_s": 2.0, "peak_rss_mb": 950.0,
            "settings": {"train": {"iterations": iterations}}}
    if gpu is not None:
        prov["peak_gpu_mb"] = gpu
    (d / "provenance.json").write_text(json.dumps(prov))
    if bench is not None:
        b = work / "benchmarks" / f"{rel}.tsv"
        b.parent.mkdir(parents=True, exist_ok=True)
        s, rss, cpu = bench
        b.write_text(TSV_HEAD + f"{s}\t0:00:12\t{rss}\t3000\t600\t700\t0\t1\t40\t{cpu}\n")
    return d / "metrics.json"


def test_benchmark_tsv_parsing_and_path_convention(tmp_path):
    work = tmp_path / "work" / "p"
    cell = work / "image_ablation" / "kodim01" / "PE-IGA-RSI"
    assert benchmark_path(cell, work) == work / "benchmarks" / "image_ablation" / "kodim01" / "PE-IGA-RSI.tsv"
    tsv = tmp_path / "b.tsv"
    tsv.write_text(TSV_HEAD + "10\t0\tNA\t0\t0\t0\t0\t0\t0\t3\n" + "14\t0\t800\t0\t0\t0\t0\t0\t0\t5\n")
    b = read_benchmark(tsv)
    assert b["s"] == 12 and b["cpu_time"] == 4 and b["max_rss"] == 800 and b["repeats"] == 2
    assert read_benchmark(tmp_path / "absent.tsv") is None


def test_cost_rows_are_measured_values_with_the_device(tmp_path):
    work = tmp_path / "work" / "p"
    files = [make_cell(work, "image/kodim01/PE-IGA"),
             make_cell(work, "image_ablation/kodim01/SIREN-IGA-P16", device="cuda (NVIDIA H200)", tpi=0.004, gpu=2048.0),
             make_cell(work, "toy/exp1_w256_s16/TwoLayer-IGA-e15", bench=None)]
    cells = [read_cell(f, work) for f in files]
    rows = cost_rows(cells, {"image": "kodak", "image_ablation": "kodak", "toy": "synthetic"})
    assert all(list(r) == TABLE_ROW_KEYS and r["table"] == "cost" and r["paper_value"] == "" for r in rows)
    got = {(r["task"], r["item"], r["architecture"], r["method"], r["metric"]): r for r in rows}
    r = got[("image", "kodim01", "PE", "IGA", "job_wall_time_s")]
    assert r["value"] == 12.5 and r["dataset"] == "kodak" and "device: cpu (x86_64, 2 cores)" in r["note"]
    assert got[("image", "kodim01", "PE", "IGA", "time_per_iteration_s")]["value"] == 0.02
    assert got[("image", "kodim01", "PE", "IGA", "job_max_rss_mb")]["value"] == 900.0
    assert ("image", "kodim01", "PE", "IGA", "peak_gpu_mb") not in got  # a CPU cell: no GPU row
    g = got[("image_ablation", "kodim01", "SIREN", "IGA-P16", "peak_gpu_mb")]
    assert g["value"] == 2048.0 and "cuda (NVIDIA H200)" in g["note"]
    t = got[("toy", "exp1_w256_s16", "TwoLayer", "IGA-e15", "job_wall_time_s")]
    assert t["value"] == "" and "no benchmark TSV" in t["note"]  # missing is said, never invented
    assert got[("toy", "exp1_w256_s16", "TwoLayer", "IGA-e15", "time_per_iteration_s")]["value"] == 0.02


def test_write_cost_writes_csv_markdown_and_figure(tmp_path):
    work = tmp_path / "work" / "p"
    files = [make_cell(work, f"image/kodim0{i}/{a}-{m}") for i in (1, 2) for a in ("ReLU", "PE") for m in ("vanilla", "IGA")]
    out = tmp_path / "results"
    write_cost(files, work, {"image": "kodak"}, out / "cost.csv", out / "cost.md", out / "cost.png", "TEST scale")
    rows = list(csv.DictReader(open(out / "cost.csv")))
    assert len({(r["item"], r["architecture"], r["method"]) for r in rows}) == 8
    md = (out / "cost.md").read_text()
    assert "TEST scale" in md and "| image | 8 | 100.0 s |" in md and "cpu (x86_64, 2 cores)" in md
    assert (out / "cost.png").stat().st_size > 5000
    # no cells at all: still a table that says so
    write_cost([], work, {}, out / "c2.csv", out / "c2.md", out / "c2.png", "TEST")
    assert "No training cells" in (out / "c2.md").read_text()


# --- workflow wiring (dry runs: no training) ---------------------------------------------------
def dry_run_counts(workdir: Path, *args: str) -> dict:
    res = run_snakemake(workdir, "-n", "--quiet", "rules", *args, timeout=300)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    counts = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture
def workdir(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def test_paper_dry_run_lists_the_ablation_cells_and_the_cost_table_needs_image_and_ablation_cells(workdir):
    cost = dry_run_counts(workdir, "--", "results/paper/tables/cost.csv")
    assert cost.get("cost_table") == 1
    assert cost.get("train_image") == 96  # every main image cell ...
    # ... and every ablation cell (3 images x 3 archs x 9 distinct) but the 18 vanilla/IGA cells that are
    # identical to main image cells and reused from them (tasks.image_ablation.reuse_image_cells)
    assert cost.get("train_image_ablation") == 81 - 18


def test_smoke_dry_run_lists_the_smoke_ablation(workdir):
    counts = dry_run_counts(workdir, "--configfile", str(ROOT / "presets" / "smoke.yaml"), "--",
                            "results/smoke/tables/table4_sampling.csv")
    assert counts.get("train_image_ablation") == 39  # table4: 2 x 3 x 4; table5: +3 x 3; variants: +3 x 2
    assert counts.get("collect_image_ablation") == 1 and counts.get("tables_image_ablation") == 1
    assert "download_kodak" not in counts  # embedded data only
