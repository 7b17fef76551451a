"""Cells' records (iga.cell_records) and the reproducibility check behind `make smoke` (iga.reproduce)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iga.cell_records import TRAIN_LOG, cell_document, data_relative, is_current, keep, sync_settings_file, thin_rows
from iga.reproduce import compare_trees, summary

SETTINGS = {"adjuster": {"kind": "iga", "end": 8}, "train": {"seed": 1}}


def finished_work(tmp: Path, psnr: float = 20.0, rows: int = 1200) -> Path:
    work = tmp / "work" / "image" / "astro" / "PE-IGA"
    work.mkdir(parents=True)
    (work / "metrics.json").write_text(json.dumps({"psnr": psnr, "ssim": 0.5}))
    (work / "provenance.json").write_text(json.dumps({"cell": "image/astro/PE-IGA", "job_wall_time_s": 3.0}))
    (work / TRAIN_LOG).write_text("".join(json.dumps({"step": i}) + "\n" for i in range(rows)))
    (work / "checkpoint.pt").write_bytes(b"x" * 100)
    return work


def settings_file(tmp: Path, doc: dict) -> Path:
    p = tmp / "settings.json"
    p.write_text(json.dumps(doc))
    return p


def test_thin_rows_keeps_first_last_and_at_most_the_limit():
    rows = [str(i) for i in range(1001)]
    kept = thin_rows(rows, 500)
    assert len(kept) == 500 and kept[0] == "0" and kept[-1] == "1000"
    assert thin_rows(rows[:10], 500) == rows[:10]


def test_keep_copies_the_record_and_not_the_checkpoint(tmp_path):
    work = finished_work(tmp_path)
    data = lambda path, root="data": data_relative({"image": path}, root)  # noqa: E731  as the workflow names data
    doc = cell_document(SETTINGS, data("data/a.png"), "3")
    rec = tmp_path / "results" / "cells" / "image" / "astro" / "PE-IGA"
    keep(work, rec, "image", settings_file(tmp_path, doc))
    assert sorted(p.name for p in rec.iterdir()) == ["metrics.json", "provenance.json", TRAIN_LOG]
    prov = json.loads((rec / "provenance.json").read_text())
    assert prov["cell_settings"] == SETTINGS and prov["cell_inputs"] == {"image": "{data}/a.png"}
    assert prov["train_log_rows_kept"] == "500 of 1200"
    assert len((rec / TRAIN_LOG).read_text().splitlines()) == 500
    assert is_current(rec, doc)
    assert is_current(rec, cell_document(SETTINGS, data("/mnt/big disk/a.png", "/mnt/big disk"), "3"))  # root moved
    assert not is_current(rec, cell_document({**SETTINGS, "train": {"seed": 2}}, data("data/a.png"), "3"))
    assert not is_current(rec, cell_document(SETTINGS, data("data/b.png"), "3"))  # other data
    assert not is_current(rec, cell_document(SETTINGS, data("data/a.png"), "4"))  # results version bump


def test_a_record_from_before_the_data_mark_is_read_under_the_default_root(tmp_path):
    """Committed records name their data "data/…" (the default root): they stay current."""
    work = finished_work(tmp_path)
    rec = tmp_path / "rec"
    keep(work, rec, "image", settings_file(tmp_path, cell_document(SETTINGS, {"image": "data/a.png"}, "3")))
    assert is_current(rec, cell_document(SETTINGS, data_relative({"image": "data/a.png"}, "data"), "3"))
    assert is_current(rec, cell_document(SETTINGS, data_relative({"image": "/srv/d/a.png"}, "/srv/d"), "3"))


def test_keep_refuses_an_unfinished_cell(tmp_path):
    work = finished_work(tmp_path)
    (work / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        keep(work, tmp_path / "rec", "image", settings_file(tmp_path, cell_document({}, {}, "1")))


def test_settings_file_is_old_for_a_current_record_and_new_for_a_changed_one(tmp_path):
    work = finished_work(tmp_path)
    doc = cell_document(SETTINGS, {}, "1")
    rec = tmp_path / "rec"
    keep(work, rec, "image", settings_file(tmp_path, doc))
    path = tmp_path / "s" / "cell.json"
    assert sync_settings_file(path, rec, doc) is True  # a fresh clone: written, dated to the epoch
    assert path.stat().st_mtime == 0
    changed = cell_document({**SETTINGS, "adjuster": {"kind": "iga", "end": 3}}, {}, "1")
    assert sync_settings_file(path, rec, changed) is False
    assert path.stat().st_mtime > os.path.getmtime(rec / "metrics.json") - 1  # newer: the cell retrains
    assert json.loads(path.read_text())["settings"]["adjuster"]["end"] == 3
    os.utime(path, (1, 1))
    # unchanged, but the record is still not of it (a failed retrain, a checkout): dated now again
    assert sync_settings_file(path, rec, changed) is False and path.stat().st_mtime > 1
    assert sync_settings_file(path, rec, doc) is True and path.stat().st_mtime == 0  # reverted: no retrain


def _tree(root: Path, cells: dict) -> Path:
    for cell, metrics in cells.items():
        d = root / "cells" / cell
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_reproduce_check_ignores_measured_fields_and_names_a_difference(tmp_path):
    committed = _tree(
        tmp_path / "c",
        {"image/a/PE-IGA": {"psnr": 20.0, "train_seconds": 3.0}, "image/a/PE-BN": {"psnr": 18.0, "ssim": 0.5}},
    )
    same = _tree(
        tmp_path / "s",
        {"image/a/PE-IGA": {"psnr": 20.0, "train_seconds": 9.0}, "image/a/PE-BN": {"psnr": 18.0, "ssim": 0.5}},
    )
    text, code = summary(compare_trees(same, committed))
    assert code == 0 and "reproduced: 2/2 cells identical" in text

    other = _tree(tmp_path / "o", {"image/a/PE-IGA": {"psnr": 21.0}, "image/a/PE-BN": {"psnr": 18.0, "ssim": 0.5}})
    text, code = summary(compare_trees(other, committed))
    assert code == 1 and "reproduced: 1/2 cells identical" in text
    assert "image/a/PE-IGA" in text and "psnr: 20.0 → 21.0" in text

    close = _tree(
        tmp_path / "x", {"image/a/PE-IGA": {"psnr": 20.0000001}, "image/a/PE-BN": {"psnr": 18.0, "ssim": 0.5}}
    )
    text, code = summary(compare_trees(close, committed))
    assert code == 0 and "1/2 cells identical" in text and "close" in text

    missing = _tree(tmp_path / "m", {"image/a/PE-BN": {"psnr": 18.0, "ssim": 0.5}})
    assert summary(compare_trees(missing, committed))[1] == 1


def test_reproduce_check_cli_prints_the_summary(tmp_path):
    committed = _tree(tmp_path / "c", {"toy/x/ReLU-IGA": {"mse": 0.1}})
    ours = _tree(tmp_path / "o", {"toy/x/ReLU-IGA": {"mse": 0.1}})
    r = subprocess.run(
        [sys.executable, "-m", "iga.cli", "reproduce-check", "--ours", str(ours), "--committed", str(committed)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "reproduced: 1/1 cells identical" in r.stdout


def test_output_root_puts_every_result_beside_the_committed_ones(tmp_path):
    from snakemake_runner import ROOT, TINY, run_snakemake

    config = ["--configfile", str(ROOT / "config.yaml"), str(TINY)]
    r = run_snakemake(tmp_path, "-n", "-p", *config, "--config", "output_root=chk")
    assert r.returncode == 0, r.stderr[-3000:]
    outputs = [p for line in r.stdout.splitlines() if line.strip().startswith("output:") for p in line.split()[1:]]
    assert outputs
    stray = [p.rstrip(",") for p in outputs if not p.startswith(("chk/", "data/"))]
    assert stray == [], stray  # nothing lands in results/, work/ or logs/ of the repository
    assert any(p.startswith("chk/results/tiny/cells/image/") for p in outputs)


def test_a_figure_file_is_kept_only_from_the_training_its_record_describes(tmp_path):
    from iga.cell_records import keep_figure_file

    work, record = tmp_path / "work", tmp_path / "record"
    for d in (work, record):
        d.mkdir()
    prov = {"cell": "image/a/PE-IGA/s1", "started_at": "t0", "finished_at": "t1", "invocation": "j", "settings": {}}
    (work / "provenance.json").write_text(json.dumps(prov))
    (record / "provenance.json").write_text(json.dumps(prov | {"cell_settings": {}}))  # keep() adds fields
    (work / "recon.png").write_bytes(b"picture of this training")
    assert keep_figure_file(work, record, "recon.png").read_bytes() == b"picture of this training"
    # another training in work/ (a local rerun, or a record pulled over it): refused, both named
    (work / "provenance.json").write_text(json.dumps(prov | {"finished_at": "t2"}))
    with pytest.raises(ValueError, match="another training.*finished_at.*t2 vs t1"):
        keep_figure_file(work, record, "recon.png")
    (work / "provenance.json").unlink()
    with pytest.raises(ValueError, match="is missing"):
        keep_figure_file(work, record, "recon.png")


def test_records_of_cells_the_config_no_longer_has_are_found(tmp_path):
    from iga.cell_records import orphan_records

    cells = tmp_path / "cells"
    for c in ("image/a/PE-IGA/s1", "image/b/PE-IGA/s1", "toy/x/TwoLayer-vanilla/s16"):
        (cells / c).mkdir(parents=True)
        (cells / c / "metrics.json").write_text("{}")
    wanted = [cells / "image/a/PE-IGA/s1/metrics.json"]
    assert orphan_records(cells, wanted) == [
        str(cells / "image/b/PE-IGA/s1"),
        str(cells / "toy/x/TwoLayer-vanilla/s16"),
    ]
    assert orphan_records(tmp_path / "none", wanted) == []


def test_reproduce_check_says_when_nothing_was_trained_and_names_uncompared_cells(tmp_path):
    import time

    committed = _tree(tmp_path / "c", {"toy/x/ReLU-IGA": {"mse": 0.1}})
    ours = _tree(tmp_path / "o", {"toy/x/ReLU-IGA": {"mse": 0.1}, "toy/x/ReLU-vanilla": {"mse": 0.2}})
    cmd = [sys.executable, "-m", "iga.cli", "reproduce-check", "--ours", str(ours), "--committed", str(committed)]
    r = subprocess.run(cmd + ["--started", str(time.time())], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "NOTHING was trained in this run" in r.stdout
    assert "cells of this run with no committed record (not compared): 1: toy/x/ReLU-vanilla" in r.stdout


def test_keep_figure_file_cli_takes_a_file_in_a_subfolder(tmp_path):
    prov = {"cell": "nerf/a/NeRF-IGA/s1", "started_at": "t0", "finished_at": "t1", "invocation": "j", "settings": {}}
    work, record = tmp_path / "w" / "nerf" / "a", tmp_path / "r" / "nerf" / "a"
    for d in (work, record):
        d.mkdir(parents=True)
        (d / "provenance.json").write_text(json.dumps(prov))
    (work / "renders").mkdir()
    (work / "renders" / "test_000.png").write_bytes(b"render")
    name = "renders/test_000.png"
    cmd = [sys.executable, "-m", "iga.cli", "keep-figure-file", "--file", name]
    r = subprocess.run(
        cmd + ["--source", str(work / name), "--dest", str(record / name)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert (record / name).read_bytes() == b"render"
