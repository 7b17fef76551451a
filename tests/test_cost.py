"""The result record and the cost table built on it: each task's real writer on a tiny cell, fed into the
real reader; job wall time encloses the training loop; a re-evaluated cell is marked and kept apart; and
the workflow wiring (the cost rule depends on the image + ablation cells)."""

import csv
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake_runner import run_snakemake

from iga.cli import main
from iga.report.cost import REEVALUATED, read_cell, write_cost
from iga.result_record import TIME_PER_ITERATION, WARMUP_STEPS, StepTimer, Training, build_record, write_record

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(600)


# --- each task's real writer on a tiny cell ------------------------------------------------------
def image_settings() -> dict:
    from iga.cells import Cell, deep_merge, resolve_settings

    config = deep_merge(
        yaml.safe_load((ROOT / "config.yaml").read_text()),
        yaml.safe_load((ROOT / "tests" / "presets" / "tiny.yaml").read_text()),
    )
    s = resolve_settings(config, Cell("image", "astronaut", "PE", "IGA", 4096))
    s["train"].update(iterations=12, checkpoint_every=0, progress=False)
    return s


def train_image(work: Path) -> Path:
    pic = work / "astronaut.png"
    assert main(["make-image", "--name", "astronaut", "--width", "16", "--height", "16", "--out", str(pic)]) == 0
    out = work / "image" / "astronaut" / "PE-IGA" / "s4096"
    assert (
        main(
            [
                "train-image",
                "--settings",
                json.dumps(image_settings()),
                "--image",
                str(pic),
                "--no-lpips",
                "--out",
                str(out),
                "--cell",
                "image/astronaut/PE-IGA/s4096",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return out / "metrics.json"


def train_occupancy(work: Path) -> Path:
    from test_occupancy import tiny_settings

    assert main(["make-shape", "--name", "sphere", "--sdf-resolution", "32", "--out", str(work / "s.ply")]) == 0
    assert main(["voxelize", "--mesh", str(work / "s.ply"), "--resolution", "16", "--out", str(work / "s.npz")]) == 0
    out = work / "occupancy" / "sphere" / "PE-IGA" / "s4096"
    assert (
        main(
            [
                "train-occupancy",
                "--settings",
                json.dumps(tiny_settings("IGA")),
                "--volume",
                str(work / "s.npz"),
                "--out",
                str(out),
                "--cell",
                "occupancy/sphere/PE-IGA/s4096",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return out / "metrics.json"


def train_toy(work: Path) -> Path:
    from test_toy import exp2_settings

    out = work / "toy" / "exp2_s16" / "ReLU-IGA-g4e2" / "s16"
    assert (
        main(
            [
                "toy-train",
                "--settings",
                json.dumps(exp2_settings(its=12)),
                "--out",
                str(out),
                "--cell",
                "toy/exp2_s16/ReLU-IGA-g4e2/s16",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return out / "metrics.json"


def train_nerf(work: Path) -> Path:
    pytest.importorskip("nerfstudio")
    from iga.nerf.procedural_scene import SceneSpec, generate_scene

    scene = work / "scene"
    generate_scene(scene, SceneSpec(size=16, n_train=4, n_val=1, n_test=1, samples_per_ray=32, supersample=1))
    out = work / "nerf" / "scene" / "NeRF-IGA" / "s4096"
    assert (
        main(
            [
                "nerf-train",
                "--method",
                "iga-nerf",
                "--data",
                str(scene),
                "--out",
                str(out),
                "--iterations",
                "8",
                "--adjuster.end",
                "4",
                "--device",
                "cpu",
                "--downscale",
                "1",
                "--testskip",
                "1",
                "--num-rays",
                "32",
                "--coarse-samples",
                "4",
                "--fine-samples",
                "4",
                "--net-width",
                "16",
                "--checkpoint-every",
                "100",
                "--cell",
                "nerf/scene/NeRF-IGA/s4096",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return out / "metrics.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """metrics.json of one tiny cell per task, each written by its task's own `iga` command."""
    import os

    work = tmp_path_factory.mktemp("work")
    os.environ.setdefault("TORCH_HOME", str(work / "torch"))  # offline: no AlexNet download attempt
    return {
        "image": train_image(work),
        "occupancy": train_occupancy(work),
        "toy": train_toy(work),
        "nerf": train_nerf(work),
    }


def test_every_task_writes_the_one_record(trained):
    for task, metrics in trained.items():
        rec = json.loads((metrics.parent / "provenance.json").read_text())
        assert rec["cell"].startswith(task + "/") and rec["settings"] and rec["seed"] is not None, task
        assert rec["device"].startswith("cpu") and rec["code_hash"] and "commit" in rec["git"], task
        assert rec["time_per_iteration_definition"] == TIME_PER_ITERATION, task
        assert rec["trained_this_run"] and rec["steps_this_run"] == rec["iterations"] > WARMUP_STEPS, task
        assert 0 < rec["time_per_iteration_s"] < rec["train_time_this_run_s"] <= rec["job_wall_time_s"], task
        assert rec["train_time_total_s"] == rec["train_time_this_run_s"] and rec["resumed_from_step"] is None, task
        assert rec["peak_rss_mb"] > 0 and rec["peak_gpu_mb"] is None and rec["extra"] == {}, task
    toy = json.loads(trained["toy"].read_text())  # the toy tables show the record's number
    assert (
        toy["time_per_iteration_s"]
        == json.loads((trained["toy"].parent / "provenance.json").read_text())["time_per_iteration_s"]
    )


def test_cost_table_of_the_real_records(trained, tmp_path):
    out = tmp_path / "results"
    datasets = {"image": "embedded", "occupancy": "embedded", "toy": "synthetic", "nerf": "embedded"}
    write_cost(list(trained.values()), datasets, out / "cost.csv", out / "cost.md", out / "cost.png", "TEST scale")
    rows = list(csv.DictReader(open(out / "cost.csv")))
    got = {(r["task"], r["metric"]): r for r in rows}
    for task in trained:
        tpi, wall = got[(task, "time_per_iteration_s")], got[(task, "job_wall_time_s")]
        assert float(tpi["value"]) > 0 and TIME_PER_ITERATION in tpi["note"], task
        assert float(wall["value"]) >= float(got[(task, "train_time_s")]["value"]) > 0, task
        assert "measured by job " in wall["note"] and "trained from scratch" in wall["note"], task
        assert (task, "peak_gpu_mb") not in got  # CPU cells: no GPU row
        assert got[(task, "iterations")]["dataset"] == datasets[task] and wall["scale"] == "TEST scale"
    assert {r["architecture"] + "-" + r["method"] for r in rows} == {"PE-IGA", "ReLU-IGA-g4e2", "NeRF-IGA"}
    md = (out / "cost.md").read_text()
    assert "TEST scale" in md and TIME_PER_ITERATION in md and "| nerf | 1 | 0 |" in md and "## Per cell" in md
    assert "nerf/scene/NeRF-IGA" in md
    assert (out / "cost.png").stat().st_size > 5000


# --- the writer's guarantees -----------------------------------------------------------------------
def test_step_timer_skips_the_warm_up_steps():
    t = StepTimer()
    t.durations = [9.0] * WARMUP_STEPS + [1.0, 2.0, 3.0]
    assert t.time_per_iteration() == 2.0
    t.durations = [4.0, 2.0]  # fewer steps than the warm-up: all of them
    assert t.time_per_iteration() == 3.0
    assert StepTimer().time_per_iteration() is None
    with pytest.raises(RuntimeError):
        StepTimer().stop()


def test_a_job_clock_started_after_training_is_refused():
    started_late = time.perf_counter()
    training = Training(
        steps_this_run=10, iterations=10, train_time_this_run_s=60.0, train_time_total_s=60.0, time_per_iteration_s=5.0
    )
    with pytest.raises(ValueError, match="job wall time .* < training loop"):
        build_record("image/a/PE-IGA", {}, 0, "cpu", started_late, training)


def test_a_reevaluated_cell_is_marked_and_kept_out_of_the_task_sums(tmp_path):
    start = time.perf_counter() - 1.0  # a job that began a second ago
    trained = tmp_path / "image" / "a" / "PE-IGA" / "s0"
    write_record(trained, "image/a/PE-IGA/s0", {}, 0, "cpu", start, Training(12, 12, 0.001, 0.001, 0.0001))
    again = tmp_path / "image" / "b" / "PE-IGA" / "s0"
    write_record(again, "image/b/PE-IGA/s0", {}, 0, "cpu", start, Training(0, 12, 0.0, 0.0, None))
    for d in (trained, again):
        (d / "metrics.json").write_text("{}")
    c = read_cell(again / "metrics.json")
    assert c["status"] == REEVALUATED and c["values"]["time_per_iteration_s"] is None
    # none of its times or memory is the training's (Table 5 reads them too): only what it says of the cell
    assert {m for m, v in c["values"].items() if v is not None} == {"iterations", "steps_this_run"}
    rows = write_cost(
        [trained / "metrics.json", again / "metrics.json"], {}, tmp_path / "c.csv", tmp_path / "c.md", None, "T"
    )
    note = rows[(rows.item == "b") & (rows.metric == "time_per_iteration_s")].note.iloc[0]
    assert "missing: " + REEVALUATED in note
    assert "| image | 1 | 1 |" in (tmp_path / "c.md").read_text()


def test_a_cell_without_record_says_so(tmp_path):
    d = tmp_path / "toy" / "exp1_w256_s16" / "TwoLayer-IGA-e15" / "s16"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text("{}")
    write_cost([d / "metrics.json"], {}, tmp_path / "c.csv", tmp_path / "c.md", None, "T")
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert {r["value"] for r in rows} == {""} and all("no provenance.json in" in r["note"] for r in rows)
    assert rows[0]["architecture"] == "TwoLayer" and rows[0]["method"] == "IGA-e15"  # identity: Cell.from_path
    write_cost([], {}, tmp_path / "c2.csv", tmp_path / "c2.md", tmp_path / "c2.png", "T")
    assert "No training cells" in (tmp_path / "c2.md").read_text()


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
    counts = dry_run_counts(
        workdir, "--configfile", str(ROOT / "presets" / "smoke.yaml"), "--", "results/smoke/tables/table4_sampling.csv"
    )
    assert counts.get("train_image_ablation") == 39  # table4: 2 x 3 x 4; table5: +3 x 3; variants: +3 x 2
    assert counts.get("collect_image_ablation") == 1 and counts.get("tables_image_ablation") == 1
    assert "download_kodak" not in counts  # embedded data only


def test_replicates_stay_apart_in_the_cost_csv(tmp_path):
    """Cost is per training job: two seeds of one cell are two sets of rows, told apart by seed and cell."""
    start = time.perf_counter() - 1.0
    files = []
    for seed in (4096, 4097):
        d = tmp_path / "image" / "kodim03" / "PE-IGA" / f"s{seed}"
        write_record(d, f"image/kodim03/PE-IGA/s{seed}", {}, seed, "cpu", start, Training(12, 12, 0.01, 0.01, 0.001))
        (d / "metrics.json").write_text("{}")
        files.append(d / "metrics.json")
    write_cost(files, {}, tmp_path / "c.csv", tmp_path / "c.md", None, "T")
    rows = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    assert set(rows.seed) == {"4096", "4097"} and set(rows.cell) == {f"image/kodim03/PE-IGA/s{s}" for s in (4096, 4097)}
    assert not rows.duplicated(["task", "item", "metric", "architecture", "method", "seed"]).any()


COMMITTED_COST = [
    p.name
    for p in sorted((ROOT / "results").iterdir())
    if (p / "cells").is_dir() and (p / "tables" / "cost.csv").exists()
]


@pytest.mark.parametrize("preset", COMMITTED_COST)
def test_committed_cost_table_is_what_the_code_builds_from_the_committed_records(preset, tmp_path):
    """A fix to the cost code reruns nothing by itself: this catches a committed cost table it would change."""
    res = ROOT / "results" / preset
    rows = list(csv.DictReader(open(res / "tables" / "cost.csv")))
    datasets = {r["task"]: r["dataset"] for r in rows}
    write_cost(
        sorted(res.glob("cells/**/metrics.json")),
        datasets,
        tmp_path / "c.csv",
        tmp_path / "c.md",
        None,
        rows[0]["scale"],
    )
    assert (tmp_path / "c.csv").read_text() == (res / "tables" / "cost.csv").read_text()
    assert (tmp_path / "c.md").read_text() == (res / "tables" / "cost.md").read_text()
