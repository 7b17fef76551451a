"""Blender scenes from a mirror: an extracted scene folder (checked against its SHA256SUMS) or the zip,
and the views evaluated: the real test split when there is one, else held-out train views."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from snakemake_runner import ROOT, copy_workflow, run_snakemake

from iga.cli import main
from iga.data.scene_folder import SceneFolderError, copy_scene, nerf_scene_source, read_sums
from iga.nerf.splits import HELD_OUT, TEST, ordinal, plan_split, split_note
from iga.report.tables import TABLES, build_table, collect, layout, with_averages, write_table


def write_scene(folder: Path, n_train: int = 10, n_test: int = 0, sums: bool = True, size: int = 4) -> Path:
    """A tiny Blender-format scene: RGBA PNGs, transforms_*.json and (optionally) SHA256SUMS."""
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = []
    for split, n in (("train", n_train), ("test", n_test)):
        if not n:
            continue
        frames = []
        for i in range(n):
            (folder / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 4), dtype=np.uint8)).save(folder / split / f"r_{i}.png")
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": np.eye(4).tolist()})
        (folder / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.69, "frames": frames}))
        lines += [f"transforms_{split}.json"] + [f"{split}/r_{i}.png" for i in range(n)]
    if sums:
        digest = lambda rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest()  # noqa: E731
        (folder / "SHA256SUMS").write_text("".join(f"{digest(rel)}  {rel}\n" for rel in lines))
    return folder


# ---------------------------------------------------------------------------------------------- mirror folder
def test_scene_folder_in_the_mirror_is_copied_and_verified(tmp_path):
    mirror = tmp_path / "mirror"
    write_scene(mirror / "nerf_synthetic" / "lego")
    (mirror / "nerf_synthetic" / "lego" / "unrelated.txt").write_text("not part of the scene")
    out = tmp_path / "data" / "lego"
    rc = main(["fetch-scene", "--scene", "lego", "--out", str(out), "--mirror", str(mirror)])
    assert rc == 0
    assert (out / "transforms_train.json").is_file() and len(list((out / "train").iterdir())) == 10
    assert not (out / "unrelated.txt").exists()  # only what the transforms name (and the sums)
    for rel, sha in read_sums(out / "SHA256SUMS").items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha
    assert not list(out.parent.glob(".lego.*"))  # no temporary folder left


def test_scene_folder_checksum_mismatch_names_the_file(tmp_path, capsys):
    src = write_scene(tmp_path / "mirror" / "nerf_synthetic" / "lego")
    (src / "train" / "r_3.png").write_bytes(b"corrupt")
    out = tmp_path / "data" / "lego"
    with pytest.raises(SceneFolderError, match=r"checksum mismatch for train/r_3\.png"):
        copy_scene(src, out)
    assert not out.exists() and not list(out.parent.glob(".lego.*"))  # nothing half-copied
    rc = main(["fetch-scene", "--scene", "lego", "--out", str(out), "--mirror", str(tmp_path / "mirror")])
    assert rc == 1 and "train/r_3.png" in capsys.readouterr().err


def test_scene_folder_problems_are_clear(tmp_path, capsys, monkeypatch):
    src = write_scene(tmp_path / "m" / "nerf_synthetic" / "lego")
    (src / "train" / "r_9.png").unlink()
    with pytest.raises(SceneFolderError, match=r"train/r_9\.png is missing"):
        copy_scene(src, tmp_path / "out")
    sums = (src / "SHA256SUMS").read_text().splitlines()
    (src / "SHA256SUMS").write_text("\n".join(line for line in sums if "r_2.png" not in line) + "\n")
    with pytest.raises(SceneFolderError, match=r"does not list train/r_2\.png"):
        copy_scene(src, tmp_path / "out")
    monkeypatch.setenv("IGA_DATA_MIRROR", str(tmp_path / "empty"))  # the CLI's default mirror
    assert main(["fetch-scene", "--scene", "lego", "--out", str(tmp_path / "out")]) == 1
    assert "nerf_synthetic/lego/transforms_train.json" in capsys.readouterr().err


def test_scene_folder_without_sums_is_copied(tmp_path):
    src = write_scene(tmp_path / "lego", n_train=3, n_test=2, sums=False)
    files = copy_scene(src, tmp_path / "out")
    assert "transforms_test.json" in files and (tmp_path / "out" / "test" / "r_1.png").is_file()


def test_scene_source_is_the_mirror_folder_else_the_zip(tmp_path):
    mirror = tmp_path / "mirror"
    assert nerf_scene_source(None, "lego") == "zip"  # no mirror: the download
    assert nerf_scene_source("https://example.org/mirror", "lego") == "zip"  # only local folders are searched
    assert nerf_scene_source(mirror, "lego") == "zip"
    write_scene(mirror / "nerf_synthetic" / "lego", n_train=4)
    assert nerf_scene_source(mirror, "lego") == "folder"
    assert nerf_scene_source(f"file://{mirror}", "lego") == "folder"
    assert nerf_scene_source(mirror, "chair") == "zip"
    (mirror / "nerf_synthetic" / "nerf_synthetic.zip").write_bytes(b"zip")
    assert nerf_scene_source(mirror, "lego") == "folder"  # only the train split is taken: no 4 GB archive


def test_train_split_is_the_same_files_from_either_copy(tmp_path, capsys):
    """The mirror's train-only folder and the zip's complete scene give identical train-split folders."""
    folder = write_scene(tmp_path / "mirror" / "nerf_synthetic" / "lego", n_train=5)
    extracted = write_scene(tmp_path / "extracted" / "lego", n_train=5, n_test=3, sums=False)
    a, b = tmp_path / "a", tmp_path / "b"
    assert (
        main(
            [
                "fetch-scene",
                "--scene",
                "lego",
                "--out",
                str(a),
                "--splits",
                "train",
                "--mirror",
                str(tmp_path / "mirror"),
            ]
        )
        == 0
    )
    assert main(["fetch-scene", "--scene", "lego", "--out", str(b), "--splits", "train", "--from", str(extracted)]) == 0
    assert "(train)" in capsys.readouterr().out
    files = lambda d: sorted(
        p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file() and p.name != "SHA256SUMS"
    )  # noqa: E731
    assert (
        files(a)
        == files(b)
        == [
            "train/r_0.png",
            "train/r_1.png",
            "train/r_2.png",
            "train/r_3.png",
            "train/r_4.png",
            "transforms_train.json",
        ]
    )
    assert all((a / f).read_bytes() == (folder / f).read_bytes() for f in files(a))
    assert (b / "train" / "r_0.png").stat().st_ino == (extracted / "train" / "r_0.png").stat().st_ino  # hard link
    assert not (
        b / "transforms_test.json"
    ).exists()  # the test split left out: held-out train views, as with the folder
    with pytest.raises(ValueError, match=r"allowed: train plus any of val, test"):
        copy_scene(extracted, tmp_path / "c", splits=("test",))


def test_sums_of_a_partial_copy_list_only_what_was_copied(tmp_path):
    src = write_scene(tmp_path / "lego", n_train=3, n_test=2)
    copy_scene(src, tmp_path / "out", splits=("train",))
    assert sorted(read_sums(tmp_path / "out" / "SHA256SUMS")) == [
        "train/r_0.png",
        "train/r_1.png",
        "train/r_2.png",
        "transforms_train.json",
    ]


def _nerf_plan(workdir: Path, mirror: Path) -> str:
    """A dry run of the mini preset's NeRF task alone (``train_only_scenes``) with ``mirror``."""
    (workdir / "only_nerf.yaml").write_text(
        "tasks: {image: {enabled: false}, image_ablation: {enabled: false}, occupancy: {enabled: false},"
        " toy: {enabled: false}}\nlpips: {enabled: false}\n"
    )
    res = run_snakemake(
        workdir,
        "-n",
        "--configfile",
        str(ROOT / "presets" / "mini.yaml"),
        str(workdir / "only_nerf.yaml"),
        "--config",
        f"data={{mirror: {mirror}}}",
        timeout=300,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return res.stdout


def test_a_train_only_preset_reads_the_same_scene_path_whichever_copy_the_mirror_has(tmp_path):
    """The cells' input (and so their record) does not depend on the machine's copy: only the data rules do."""
    workdir = copy_workflow(tmp_path / "wf")
    empty, with_folder = tmp_path / "empty", tmp_path / "mirror"
    empty.mkdir()
    write_scene(with_folder / "nerf_synthetic" / "lego", n_train=4)
    zip_plan, folder_plan = _nerf_plan(workdir, empty), _nerf_plan(workdir, with_folder)
    scene = "data/nerf_synthetic_scenes/lego/transforms_train.json"
    for plan in (zip_plan, folder_plan):
        train = re.split(r"\n\s*(?:local)?rule ", plan[plan.index("rule train_nerf:") :])[0]
        assert scene in train.split("output:")[0]
    block = lambda plan, rule: re.split(r"\n\s*(?:local)?rule ", plan[plan.index(f"rule {rule}:") :])[0]  # noqa: E731
    assert "data/nerf_synthetic/lego/transforms_train.json" in block(zip_plan, "fetch_nerf_scene")  # the zip's
    assert "rule download_nerf_synthetic:" in zip_plan and "rule extract_nerf_synthetic:" in zip_plan
    assert "input:" not in block(folder_plan, "fetch_nerf_scene")  # straight from the mirror's folder
    assert "rule download_nerf_synthetic:" not in folder_plan


# ---------------------------------------------------------------------------------------------- splits
def test_scene_without_test_split_holds_out_every_nth_train_view(tmp_path):
    scene = write_scene(tmp_path / "lego", n_train=20)
    plan = plan_split(scene, holdout_every=8, testskip=8)
    assert plan.kind == HELD_OUT
    _, test = plan.frames(scene, "test")
    _, train = plan.frames(scene, "train")
    assert [f["file_path"] for f in test] == ["./train/r_0", "./train/r_8", "./train/r_16"]
    assert plan.frames(scene, "val")[1] == test  # nerfstudio's eval split: the same views
    assert len(train) == 17 and not {f["file_path"] for f in train} & {f["file_path"] for f in test}
    assert plan.note == "held-out train views (every 8th), no test split"
    _, test5 = plan_split(scene, holdout_every=5, testskip=8).frames(scene, "test")
    assert [f["file_path"] for f in test5] == [f"./train/r_{i}" for i in (0, 5, 10, 15)]
    with pytest.raises(ValueError, match="holdout_every"):
        plan_split(scene, holdout_every=1, testskip=1)


def test_real_test_split_is_used_when_present(tmp_path):
    scene = write_scene(tmp_path / "lego", n_train=10, n_test=6)
    plan = plan_split(scene, holdout_every=8, testskip=2)
    assert plan.kind == TEST and plan.note == ""
    assert [f["file_path"] for f in plan.frames(scene, "test")[1]] == ["./test/r_0", "./test/r_2", "./test/r_4"]
    assert len(plan.frames(scene, "train")[1]) == 10  # every train view trains


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 8, 11, 12, 13, 21, 22, 112)] == [
        "1st", "2nd", "3rd", "4th", "8th", "11th", "12th", "13th", "21st", "22nd", "112th"
    ]  # fmt: skip
    assert split_note(TEST, 8) == "" and "every 4th" in split_note(HELD_OUT, 4)


# ---------------------------------------------------------------------------------------------- the report
def _cell(tmp_path, item, method, psnr, note):
    folder = tmp_path / "nerf" / item / f"NeRF-{method}" / "s4096"
    folder.mkdir(parents=True)
    evaluation = {"split": HELD_OUT if note else TEST, "note": note}
    missing = {"missing": True, "reason": "disabled in config"}
    metrics = {"psnr": psnr, "ssim": 0.5, "lpips": missing, "evaluation": evaluation}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return {"task": "nerf", "item": item, "arch": "NeRF", "method": method, "path": folder / "metrics.json"}


def test_held_out_views_are_stated_in_rows_averages_and_table_notes(tmp_path):
    note = split_note(HELD_OUT, 8)
    cells = [_cell(tmp_path, "lego", m, p, note) for m, p in (("vanilla", 20.0), ("IGA", 21.0))]
    rows = collect([dict(c, dataset="blender") for c in cells], "mini", ["psnr", "ssim", "lpips"])
    assert all(r["note"].startswith(note) for r in rows)
    assert [r["note"] for r in rows if r["metric"] == "lpips"][0] == f"{note}; missing: disabled in config"
    for name in ("table3_nerf_average", "table10_nerf_per_scene"):
        write_table(TABLES[name], rows, tmp_path / "t", "MINI scale")
        md = (tmp_path / "t" / f"{name}.md").read_text()
        assert f"- Evaluated on {note}: lego" in md, md
        assert "- missing for 1/1 items: disabled in config\n" in md  # the views note is not repeated
        table = list(csv.DictReader(open(tmp_path / "t" / f"{name}.csv")))
        assert table and all(note in r["note"] for r in table)  # every row of the CSV says so
    avg = with_averages(rows).set_index(["item", "metric", "method"]).loc[("average", "psnr", "IGA")]
    assert avg["note"] == f"mean over 1 items; {note}: lego"


def test_real_test_split_rows_carry_no_view_note(tmp_path):
    rows = collect([dict(_cell(tmp_path, "chair", "vanilla", 20.0, ""), dataset="blender")], "mini", ["psnr"])
    assert rows[0]["note"] == ""
    spec = TABLES["table10_nerf_per_scene"]
    assert not [n for n in layout(spec, build_table(spec, with_averages(rows)), "S").notes if "held-out" in n]


def test_mixed_splits_name_the_held_out_items(tmp_path):
    note = split_note(HELD_OUT, 8)
    cells = [_cell(tmp_path, "lego", "vanilla", 20.0, note), _cell(tmp_path, "chair", "vanilla", 30.0, "")]
    rows = collect([dict(c, dataset="blender") for c in cells], "mini", ["psnr"])
    spec = TABLES["table3_nerf_average"]
    notes = layout(spec, build_table(spec, with_averages(rows)), "S").notes
    assert f"Evaluated on {note}: lego" in notes


def test_figure12_of_held_out_views_names_the_view_and_reads_its_train_image(tmp_path):
    from PIL import Image

    from iga.report.nerf_figures import figure_nerf

    scene = write_scene(tmp_path / "lego", n_train=9, size=8)
    note = split_note(HELD_OUT, 8)
    files = []
    for method in ("vanilla", "IGA"):
        cell = tmp_path / "nerf" / "lego" / f"NeRF-{method}" / "s4096"
        (cell / "renders").mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(cell / "renders" / "test_000.png")
        view = {"view": 0, "file": "r_8.png", "source": "train/r_8.png", "psnr": 12.0}
        metrics = {"per_view": [view], "evaluation": {"split": HELD_OUT, "note": note}}
        (cell / "metrics.json").write_text(json.dumps(metrics))
        (cell / "provenance.json").write_text(json.dumps({"settings": {"data": str(scene)}}))
        files.append(cell / "metrics.json")
    title = figure_nerf(files, "lego", tmp_path / "fig12.png", "MINI scale")
    assert title.startswith(f"lego, view r_8 ({note})") and (tmp_path / "fig12.png").stat().st_size > 0
    (scene / "train" / "r_8.png").unlink()  # the ground truth is the held-out train image itself
    with pytest.raises(FileNotFoundError, match="r_8.png"):
        figure_nerf(files, "lego", tmp_path / "fig12b.png", "MINI scale")
