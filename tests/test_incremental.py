"""Incremental reruns through the real workflow, on the tiny preset (tests/presets/tiny.yaml).

One full run in a temporary copy of the workflow (so nothing lands in the repository's results/),
then dry runs after edits:
  * nothing changed → nothing planned;
  * one cell's hyperparameter changed (a second --configfile) → exactly that cell + the aggregations;
  * a table/figure-only setting changed → no training;
  * a cosmetic code edit (src/iga and the rule's shell text) → nothing (the `code` trigger is off);
  * iga.__results_version__ bumped → every training cell + the aggregations.
The full run goes through `--profile profiles/local` with 2 fake GPUs, so it also checks that each
training job ran through `iga gpu-slot`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from snakemake_runner import ROOT, TINY, copy_workflow, local_env, run_local, snakemake_cmd

CELLS = ["astronaut/PE-vanilla/s4096", "astronaut/PE-IGA/s4096"]
TRAIN_RULES = re.compile(r"^train_")
AGGREGATIONS = {
    "collect_image",
    "tables_image",
    "figures_image",
    "cost_table",
    "claims_table",  # IGA against the best other method, from the tables (iga.report.claims)
    "findings",  # FINDINGS.md from its template and the results (iga.report.findings)
    "report_page_findings",
    "all",
    "figures_image_curves",  # training curves (iga.report.curve_figures)
    "report_page_tables",
    "report_page_figures",
    "keep_figure_file",  # the retrained cell's reconstruction, kept in its record for the figures
}  # the report's pages (workflow/rules/report.smk)

pytestmark = pytest.mark.timeout(600)


# --- helpers: the shared ones are in snakemake_runner.py -------------------------------------------
def smk_env(tmp: Path, **extra) -> dict:
    return local_env(tmp, gpus=2, **extra)


def snakemake(cwd: Path, *args, env=None, check=True, timeout=400) -> str:
    """The tiny preset through profiles/local in a copy of the workflow (2 fake GPUs)."""
    return run_local(cwd, "--configfile", str(TINY), *args, env=env or smk_env(cwd), check=check, timeout=timeout)


def planned(out: str) -> list:
    """(rule, wildcards) of every job a dry run plans."""
    jobs, rule, wildcards = [], None, ""
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            if rule is not None:
                jobs.append((rule, wildcards))
            rule, wildcards = m.group(1), ""
        elif rule is not None and line.strip().startswith("wildcards:"):
            wildcards = line.strip()[len("wildcards:") :].strip()
    if rule is not None:
        jobs.append((rule, wildcards))
    return jobs


def trained_cells(jobs) -> set:
    cells = set()
    for rule, wc in jobs:
        if TRAIN_RULES.match(rule):
            d = dict(kv.split("=", 1) for kv in wc.split(", "))
            cells.add(f"{d['item']}/{d['arch']}-{d['method']}/s{d['seed']}")
    return cells


def src_copy(tmp: Path, edit) -> dict:
    """A copy of src/iga with ``edit(package_dir)`` applied; returns env that imports it first."""
    dest = tmp / "src"
    shutil.copytree(ROOT / "src" / "iga", dest / "iga", ignore=shutil.ignore_patterns("__pycache__"))
    edit(dest / "iga")
    return {"PYTHONPATH": str(dest)}


# --- the finished tiny run ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("incremental") / "wf")
    t0 = time.monotonic()
    out = snakemake(wf)
    print(f"full tiny run: {time.monotonic() - t0:.1f}s")
    for cell in CELLS:
        assert (wf / f"results/tiny/cells/image/{cell}/metrics.json").exists(), out[-3000:]
    assert (wf / "results/tiny/tables/table1_image_average.csv").exists()
    return wf


@pytest.fixture
def finished_copy(finished, tmp_path):
    """A private copy of the finished run (mtimes and .snakemake metadata kept) for tests that edit it."""
    dest = tmp_path / "wf"
    shutil.copytree(finished, dest, symlinks=True)
    return dest


def test_training_jobs_ran_on_their_own_gpu_slot(finished):
    for cell in CELLS:
        log = (finished / f"logs/tiny/image/{cell}.log").read_text()
        m = re.search(r"gpu-slot: .*CUDA_VISIBLE_DEVICES=(\S*) - slot", log)
        assert m and m.group(1) in ("0", "1"), log[:500]


def test_unchanged_rerun_plans_nothing(finished):
    out = snakemake(finished, "-n")
    assert "Nothing to be done" in out, out[-3000:]
    assert planned(out) == []


def test_one_hyperparameter_reruns_exactly_that_cell_and_the_aggregations(finished, tmp_path):
    overlay = tmp_path / "lr.yaml"
    overlay.write_text('tasks:\n  image:\n    overrides:\n      "PE-IGA": {optim: {lr: 0.002}}\n')
    jobs = planned(snakemake(finished, "-n", "--configfile", str(TINY), str(overlay)))
    assert trained_cells(jobs) == {"astronaut/PE-IGA/s4096"}
    rules = {r for r, _ in jobs}
    assert {"collect_image", "tables_image", "figures_image"} <= rules
    assert rules - AGGREGATIONS == {"train_image"}, rules  # no data rule, no other training
    assert sum(r == "train_image" for r, _ in jobs) == 1


def test_a_report_only_setting_reruns_no_training(finished, tmp_path):
    overlay = tmp_path / "note.yaml"
    overlay.write_text('scale_note: "another note"\n')
    jobs = planned(snakemake(finished, "-n", "--configfile", str(TINY), str(overlay)))
    rules = {r for r, _ in jobs}
    assert "tables_image" in rules and not trained_cells(jobs), rules


def test_cosmetic_code_edits_rerun_nothing(finished_copy, tmp_path):
    def edit(pkg):
        with open(pkg / "tasks" / "image.py", "a") as f:
            f.write("\n# a cosmetic edit: no result changes\n")

    env = smk_env(finished_copy, **src_copy(tmp_path, edit))
    probe = subprocess.run(["python", "-c", "import iga; print(iga.__file__)"], env=env, capture_output=True, text=True)
    assert str(tmp_path / "src") in probe.stdout  # the edited copy is what the workflow imports
    rule_file = finished_copy / "workflow" / "rules" / "image.smk"
    text = rule_file.read_text()
    assert ") > {log} 2>&1" in text
    rule_file.write_text(text.replace(") > {log} 2>&1", ")  > {log} 2>&1"))

    out = snakemake(finished_copy, "-n", env=env)
    assert "Nothing to be done" in out, out[-3000:]
    # the shell edit is visible to snakemake: with the `code` trigger on, it would rerun every cell
    forced = planned(snakemake(finished_copy, "-n", "--rerun-triggers", "code", env=env))
    assert trained_cells(forced) == set(CELLS)


def _bump(pkg: Path) -> None:
    with open(pkg / "__init__.py", "a") as f:
        f.write('\n__results_version__ = "999"  # bumped by tests/test_incremental.py\n')


def test_results_version_bump_reruns_every_training_cell(finished_copy, tmp_path):
    env = smk_env(finished_copy, **src_copy(tmp_path, _bump))
    jobs = planned(snakemake(finished_copy, "-n", env=env))
    assert trained_cells(jobs) == set(CELLS)
    assert {r for r, _ in jobs} - AGGREGATIONS == {"train_image"}


def _first_progress(log: str):
    m = re.search(r"(\d+)/(\d+) \[", log)
    return (int(m.group(1)), int(m.group(2))) if m else None


def test_results_version_bump_retrains_instead_of_resuming(finished_copy, tmp_path):
    env = smk_env(finished_copy, **src_copy(tmp_path, _bump))
    cell = "astronaut/PE-vanilla/s4096"
    snakemake(finished_copy, "--", f"results/tiny/cells/image/{cell}/metrics.json", env=env)
    first = _first_progress((finished_copy / f"logs/tiny/image/{cell}.log").read_text())
    assert first is not None and first[0] == 0, f"training started at step {first}: an old checkpoint was resumed"


# --- a failed retrain never leaves a stale table (issue #15, item 1) ------------------------------
def _trainer_pids(cell_id: str, workflow: Path) -> list:
    """The trainers of ``cell_id`` running in ``workflow`` (not those of another test run on the machine)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        if "train-image" in cmd and f"--cell {cell_id}" in cmd and "gpu-slot" not in cmd and cwd == workflow.resolve():
            pids.append(int(proc.name))
    return pids


def _table_value(wf: Path, method: str) -> float:
    import pandas as pd

    t = pd.read_csv(wf / "results/tiny/tables/table1_image_average.csv")
    row = t[(t.metric == "psnr") & (t.architecture == "PE") & (t.method == method)]
    assert len(row) == 1, t.to_string()
    return float(row.value.iloc[0])


def test_a_killed_retrain_is_planned_again_and_the_table_gets_the_new_number(finished_copy, tmp_path):
    import json
    import signal

    cell = "image/astronaut/PE-IGA/s4096"
    old = _table_value(finished_copy, "IGA")
    overlay = tmp_path / "end.yaml"  # the scenario: one cell's hyperparameter changes
    overlay.write_text(
        'tasks:\n  image:\n    overrides:\n      "astronaut/PE-IGA": {adjuster: {end: 4}, train: {iterations: 4000}}\n'
    )
    args = snakemake_cmd("--configfile", str(TINY), str(overlay), profile="profiles/local")
    proc = subprocess.Popen(
        args, cwd=finished_copy, env=smk_env(finished_copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 120
        pids = []
        while not pids and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            pids = _trainer_pids(cell, finished_copy)
        assert pids, "the retraining of the changed cell never started"
        time.sleep(1.0)
        for pid in pids:  # the job dies as under an OOM kill or a SLURM time limit
            os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out[-3000:]
    assert not (finished_copy / f"results/tiny/cells/{cell}/metrics.json").exists()  # the killed job left no result

    # the same command again: the cell is planned (not "Nothing to be done"), then the table has its number
    again = args[4:]  # the same config files
    jobs = planned(snakemake(finished_copy, "-n", "--configfile", *again))
    assert trained_cells(jobs) == {"astronaut/PE-IGA/s4096"}, jobs
    assert {"collect_image", "tables_image"} <= {r for r, _ in jobs}
    snakemake(finished_copy, "--configfile", *again)
    new = json.loads((finished_copy / f"results/tiny/cells/{cell}/metrics.json").read_text())
    assert _table_value(finished_copy, "IGA") == pytest.approx(round(new["psnr"], 2), abs=0.006)
    assert _table_value(finished_copy, "IGA") != old


# --- committed records: a fresh clone rebuilds everything without work/ (issue #17, item 1) ---------
def fresh_clone_of(finished: Path, dest: Path) -> Path:
    """What a clone of a repository that committed this run holds: the workflow and results/ (the cells'
    records, tables, figures); no work/, logs/, data/ or Snakemake metadata."""
    copy_workflow(dest)
    shutil.copytree(finished / "results", dest / "results")
    return dest


def test_a_fresh_clone_plans_no_training(finished, tmp_path):
    clone = fresh_clone_of(finished, tmp_path / "clone")
    jobs = planned(snakemake(clone, "-n"))
    assert trained_cells(jobs) == set(), jobs
    assert not [r for r, _ in jobs if r.startswith("train_")], jobs


def test_a_lost_figure_file_retrains_its_cell_with_its_data_on_a_fresh_clone(finished, tmp_path):
    """The figure is rebuilt, and one cell it shows has lost its kept reconstruction (its work/ is absent):
    that cell must train again, and declares its data then, which a fresh clone lacks, so the data are made
    before it (not: the job runs without its input and fails on a missing file)."""
    clone = fresh_clone_of(finished, tmp_path / "clone")
    assert not (clone / "data").exists()
    lost = clone / "results/tiny/cells/image/astronaut/PE-IGA/s4096/recon.png"
    lost.unlink()
    (clone / "results/tiny/figures/fig10_image_visual.png").unlink()
    out = snakemake(clone, "-n")
    assert trained_cells(planned(out)) == {"astronaut/PE-IGA/s4096"}, out[-3000:]
    train = out[out.index("rule train_image:") :].split("\n\n")[0]
    inputs = next(line for line in train.splitlines() if line.strip().startswith("input:"))
    assert "astronaut" in inputs and "data/" in inputs, train  # its picture is an input: made before it
    snakemake(clone)
    assert lost.is_file()
    assert trained_cells(planned(snakemake(clone, "-n"))) == set()


def test_a_fresh_clone_rebuilds_what_a_report_only_setting_changes(finished, tmp_path):
    """Snakemake's params trigger needs metadata a clone lacks; the kept config stamp does not."""
    clone = fresh_clone_of(finished, tmp_path / "clone")
    assert (clone / "results/tiny/settings/tables_image.json").is_file()  # kept with the results
    overlay = tmp_path / "note.yaml"
    overlay.write_text('scale_note: "another note"\n')
    jobs = planned(snakemake(clone, "-n", "--configfile", str(TINY), str(overlay)))
    rules = {r for r, _ in jobs}
    assert {"tables_image", "figures_image", "figures_image_curves", "cost_table"} <= rules, rules
    assert not trained_cells(jobs), jobs
    snakemake(clone, "--configfile", str(TINY), str(overlay))
    assert "another note" in (clone / "results/tiny/tables/table1_image_average.md").read_text()
    assert "another note" in (clone / "results/tiny/settings/tables_image.json").read_text()
    out = snakemake(clone, "-n", "--configfile", str(TINY), str(overlay))
    assert "Nothing to be done" in out, out[-3000:]


def test_a_figure_choice_reruns_the_figure_alone_on_a_fresh_clone(finished, tmp_path):
    """Each rule is stamped with what it reads: a figure setting reruns the figure rule, not the tables."""
    clone = fresh_clone_of(finished, tmp_path / "clone")
    overlay = tmp_path / "figures.yaml"
    overlay.write_text("tasks:\n  image:\n    figures: {visual_items: null}\n")  # the default: same items
    jobs = planned(snakemake(clone, "-n", "--configfile", str(TINY), str(overlay)))
    rules = {r for r, _ in jobs}
    assert "figures_image" in rules and not rules & {"collect_image", "tables_image", "cost_table"}, rules
    assert not trained_cells(jobs)


def test_a_table_built_alone_under_an_edited_config_is_rebuilt_once_the_edit_is_undone(finished, tmp_path):
    """Each rule keeps the config it was built from in the job that builds it: a single target built under
    an overlay (or a run interrupted after it) can never leave a table that a later clone takes as current."""
    clone = fresh_clone_of(finished, tmp_path / "clone")
    overlay = tmp_path / "note.yaml"
    overlay.write_text('scale_note: "an edited note"\n')
    # (--cores ends the --configfile list, so the target is read as a target)
    snakemake(
        clone, "--configfile", str(TINY), str(overlay), "--cores", "1", "results/tiny/tables/table1_image_average.md"
    )
    assert "an edited note" in (clone / "results/tiny/tables/table1_image_average.md").read_text()
    later = fresh_clone_of(clone, tmp_path / "later")  # that state committed, cloned, the overlay gone
    rules = {r for r, _ in planned(snakemake(later, "-n"))}
    assert "tables_image" in rules and "figures_image" not in rules, rules


def test_a_fresh_clone_retrains_exactly_a_changed_cell_and_rebuilds_its_tables(finished, tmp_path):
    import json

    clone = fresh_clone_of(finished, tmp_path / "clone")
    overlay = tmp_path / "end.yaml"
    overlay.write_text('tasks:\n  image:\n    overrides:\n      "astronaut/PE-IGA": {adjuster: {end: 3}}\n')
    jobs = planned(snakemake(clone, "-n", "--configfile", str(TINY), str(overlay)))
    assert trained_cells(jobs) == {"astronaut/PE-IGA/s4096"}, jobs
    assert {"collect_image", "tables_image"} <= {r for r, _ in jobs}

    old_vanilla = (clone / "results/tiny/cells/image/astronaut/PE-vanilla/s4096/metrics.json").read_text()
    snakemake(clone, "--configfile", str(TINY), str(overlay))
    record = json.loads((clone / "results/tiny/cells/image/astronaut/PE-IGA/s4096/provenance.json").read_text())
    assert record["cell_settings"]["adjuster"]["end"] == 3
    assert (clone / "results/tiny/cells/image/astronaut/PE-vanilla/s4096/metrics.json").read_text() == old_vanilla
    assert not (clone / "work/tiny/image/astronaut/PE-vanilla/s4096").exists()  # never retrained
    new = json.loads((clone / "results/tiny/cells/image/astronaut/PE-IGA/s4096/metrics.json").read_text())
    assert _table_value(clone, "IGA") == pytest.approx(round(new["psnr"], 2), abs=0.006)
    # and with the change kept, nothing more to do; reverting it retrains the cell back
    assert trained_cells(planned(snakemake(clone, "-n", "--configfile", str(TINY), str(overlay)))) == set()
    assert trained_cells(planned(snakemake(clone, "-n"))) == {"astronaut/PE-IGA/s4096"}


def test_records_hold_the_thinned_curve_and_the_settings(finished):
    import json

    rec = finished / "results/tiny/cells/image/astronaut/PE-IGA/s4096"
    assert sorted(p.name for p in rec.iterdir()) == ["metrics.json", "provenance.json", "recon.png", "train_log.jsonl"]
    prov = json.loads((rec / "provenance.json").read_text())
    assert prov["cell_settings"]["adjuster"]["kind"] == "iga"
    rows = (rec / "train_log.jsonl").read_text().splitlines()
    assert 0 < len(rows) <= 500
    assert not list(rec.glob("checkpoint*"))  # checkpoints stay in work/
