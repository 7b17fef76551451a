"""The workflow spine: config rejections, the image branch end to end, and the aggregation."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from snakemake_runner import run_snakemake

from iga.report.tables import LONG_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def overlay(workdir: Path, data: dict, name: str = "overlay.yaml") -> str:
    (workdir / name).write_text(yaml.safe_dump(data))
    return name


@pytest.mark.parametrize(
    "bad,expected",
    [
        (
            {"tasks": {"image": {"architectures": ["ReLU", "Tanh"]}}},
            ["tasks.image: architectures ['Tanh']", "ReLU", "SIREN"],
        ),
        ({"tasks": {"image": {"methods": ["vanilla", "SGD"]}}}, ["method='SGD'", "vanilla"]),
        ({"tasks": {"audio": {"enabled": True}}}, ["unknown key 'tasks.audio'", "image"]),
        ({"tasks": {"image": {"items": ["kodim01", "../etc/passwd"]}}}, ["tasks.image.items", "../etc/passwd"]),
        (
            {"tasks": {"image": {"overrides": {"PE-IGA": {"optim": {"lr": -0.001}}}}}},
            ["optim.lr=-0.001", "greater than 0"],
        ),
        # the group count is known from the dataset before any job: 768x512 in 32x32 patches = 384 groups
        ({"tasks": {"image": {"overrides": {"PE-IGA": {"adjuster": {"end": 999}}}}}}, ["adjuster.end=999", "1..383"]),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(workdir, bad, expected):
    res = run_snakemake(workdir, "-n", "--configfile", overlay(workdir, bad))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    for word in expected:
        assert word in out, (word, out[-3000:])


def test_typed_validation_names_the_cell_and_key(workdir):
    bad = {"tasks": {"image": {"overrides": {"SIREN-FR": {"model": {"fr": {"phase": 3}}}}}}}
    res = run_snakemake(workdir, "-n", "--configfile", overlay(workdir, bad))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "cell image/kodim01/SIREN-FR" in out and "model.fr.phase" in out and "phases" in out


def test_paper_dry_run_lists_all_96_image_cells(workdir):
    res = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert res.returncode == 0, res.stderr[-2000:]
    counts = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts.get("train_image") == 96
    assert counts.get("download_kodak") == 8


TINY = {
    "preset": "pytest_tiny",
    "scale_note": "TEST scale",
    "lpips": {"enabled": False},
    "resources": {"train_image": {"gpu": 0, "mem_mb": 1000, "runtime": 5, "threads": 1}},
    "tasks": {
        "image_ablation": {"enabled": False},
        "toy": {"enabled": False},
        "occupancy": {"enabled": False},
        "nerf": {"enabled": False},
        "image": {
            "dataset": "embedded",
            "items": ["astronaut"],
            "embedded_size": [24, 16],
            "architectures": ["ReLU", "SIREN"],
            "methods": ["vanilla", "IGA"],
            "figures": {"crops_item": "astronaut", "crops_arch": "SIREN", "visual_items": ["astronaut"]},
            "settings": {
                "task": {"patch_size": 8},
                "model": {"hidden_features": 16},
                "optim": {"step_size": 10},
                "train": {"iterations": 20, "checkpoint_every": 10, "device": "cpu"},
            },
            "overrides": {
                "ReLU-IGA": {"adjuster": {"end": 3}},
                "SIREN-IGA": {"adjuster": {"end": 3}},
            },
        },
    },
}


def test_rules_find_iga_without_an_activated_environment(workdir):
    # users run `.venv/bin/snakemake` / `make smoke` from a plain shell: PATH has no venv bin
    res = run_snakemake(
        workdir,
        "data/embedded/images/astronaut_16x16.png",
        "--configfile",
        overlay(workdir, {"preset": "pytest_path"}),
        env={"PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert (workdir / "data" / "embedded" / "images" / "astronaut_16x16.png").stat().st_size > 100


def test_image_branch_end_to_end(workdir):
    res = run_snakemake(workdir, "--configfile", overlay(workdir, TINY, "tiny.yaml"))
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    tables = workdir / "results" / "pytest_tiny" / "tables"
    rows = list(csv.DictReader(open(tables / "table1_image_average.csv")))
    assert list(rows[0].keys()) == LONG_COLUMNS
    got = {(r["architecture"], r["method"], r["metric"]): r for r in rows}
    assert set(got) == {
        (a, m, k) for a in ("ReLU", "SIREN") for m in ("vanilla", "IGA") for k in ("psnr", "ssim", "lpips")
    }
    for (_arch, _method, k), r in got.items():
        if k == "lpips":  # disabled: missing with the reason, never NaN
            assert r["value"] == "" and "disabled" in r["note"]
        else:
            assert float(r["value"]) == float(r["value"])  # a number, not NaN
        assert r["paper_value"] == ""  # embedded images have no paper counterpart
        assert "TEST scale" in r["scale"]  # every CSV row says its scale
    assert "TEST scale" in (tables / "table1_image_average.md").read_text()
    for fig in (
        "fig4_image_crops.png",
        "fig10_image_visual.png",
        "image_training_curves.png",
        "image_ours_vs_paper.png",
    ):
        assert (workdir / "results" / "pytest_tiny" / "figures" / fig).stat().st_size > 1000
    cell = workdir / "work" / "pytest_tiny" / "image" / "astronaut" / "SIREN-IGA" / "s4096"
    prov = json.loads((cell / "provenance.json").read_text())
    assert prov["settings"]["adjuster"]["end"] == 3 and prov["seed"] == 4096
    assert prov["device"].startswith("cpu") and prov["git"]["commit"]
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["iterations"] == 20 and metrics["groups"] == 6
    # a second run has nothing to do
    again = run_snakemake(workdir, "-n", "--configfile", "tiny.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_every_report_caption_exists():
    """`snakemake --report` (the second half of `make smoke`) fails on a missing caption file."""
    import re

    rules = ROOT / "workflow" / "rules"
    captions = {m for f in rules.glob("*.smk") for m in re.findall(r'caption="([^"]+)"', f.read_text())}
    assert captions
    missing = [c for c in captions if not (rules / c).resolve().exists()]
    assert not missing, missing
