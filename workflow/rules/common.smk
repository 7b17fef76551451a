# Shared helpers: config slices, cell enumeration, paths. No computation happens in rules.
import functools
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

# Rules call `iga`; users run `.venv/bin/snakemake` (or `make`) without activating the venv, so every
# shell command puts the bin folder of the environment Snakemake runs in first on PATH (a SLURM job
# re-reads this file in its own snakemake process, so it gets the same prefix). Snakemake's own
# default prefix is bash's strict mode, kept here.
shell.prefix(f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')

from snakemake.utils import update_config

from iga.cell_records import cell_document, data_relative, sync_settings_file
from iga.cells import Cell, cell_seeds, enumerate_cells, resolve_settings
from iga.configs import ConfigError
from iga.stamps import aggregation_document, sync_aggregation_stamp
from iga.workflow_config import Resource, load_config, typed_command_line, validate_config

# `--config` scalars arrive as text (Snakemake's YAML BaseLoader): read them as the config files are read
update_config(config, typed_command_line(dict(workflow.config_settings.config)))
try:  # the whole config and every cell's settings are checked before any job starts
    # the last layer's (the last --configfile, with any --config) override patterns must match a cell;
    # earlier layers' (config.yaml, a preset under an overlay) may name cells this run drops
    _layers = [Path(workflow.basedir) / "config.yaml", *workflow.config_settings.configfiles]
    CONFIG = validate_config(config, base=load_config(_layers[:-1]))
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}")

PRESET = config["preset"]
DATA = config["data"]["root"]
_ROOT = f"{config['output_root'].rstrip('/')}/" if config.get("output_root") else ""
WORK = f"{_ROOT}work/{PRESET}"  # untracked: checkpoints, reconstructions, full logs
RESULTS = f"{_ROOT}results/{PRESET}"  # committed: tables, figures, report and the cells' records
RECORDS = f"{RESULTS}/cells"  # one folder per cell (iga.cell_records): what every table is built from
LOGS = f"{_ROOT}logs/{PRESET}"
SCALE_NOTE = CONFIG.scale_note or PRESET
# Config values reach shell commands quoted (a mirror folder may hold spaces or shell characters).
MIRROR_FLAG = f"--mirror {shlex.quote(str(config['data']['mirror']))}" if config["data"].get("mirror") else ""
# Download retries/deadlines and extraction limits go into the shell strings ({DOWNLOAD_FLAGS},
# {EXTRACT_FLAGS}), not params: they never change the verified bytes, so editing them must not rerun
# finished downloads. Values from the validated config (defaults: iga.data.download, iga.data.archives).
DOWNLOAD_FLAGS = " ".join(
    f"--{flag} {getattr(CONFIG.data, key)}"
    for flag, key in (
        ("retries", "retries"),
        ("timeout", "timeout_s"),
        ("min-rate", "min_rate_bytes_per_s"),
        ("rate-window", "rate_window_s"),
    )
)
EXTRACT_FLAGS = " ".join(
    f"--{k.replace('_', '-')} {v}" for k, v in sorted(CONFIG.data.extract_limits.model_dump().items())
)
LPIPS_STATUS = f"{DATA}/weights/alexnet.status.json"
# --- cluster/incremental (docs/CLUSTER.md) ---
# Code changes: an edit to src/iga reruns nothing by itself (the profiles leave out the `code` rerun
# trigger); a change that alters results bumps iga.__results_version__, a param of every training rule.
import iga as _iga

RESULTS_VERSION = str(getattr(_iga, "__results_version__", "1"))
# --- end cluster/incremental ---


wildcard_constraints:
    item=r"[A-Za-z0-9_.]+",
    arch=r"[A-Za-z0-9]+",
    method=r"[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)?",
    seed=r"\d+",
    w=r"\d+",
    h=r"\d+",
    size=r"\d+",
    views=r"\d+",


def enabled(task):
    section = getattr(CONFIG.tasks, task, None)
    return section is not None and section.enabled


@functools.lru_cache(maxsize=None)
def resolved(cell):
    """A cell's resolved settings (iga.cells.resolve_settings), computed once per cell: the params, the
    settings file, the digests and the ablation's reuse check all ask for them. Read-only."""
    return resolve_settings(config, cell)


def wildcard_cell(task, wildcards):
    return Cell(task, wildcards.item, wildcards.arch, wildcards.method, int(wildcards.seed))


def cell_settings(task):
    """params function: only this cell's resolved settings, so other edits don't rerun it."""

    def settings(wildcards):
        return json.dumps(resolved(wildcard_cell(task, wildcards)), sort_keys=True, separators=(",", ":"))

    return settings


def train_inputs(task, data=lambda wildcards: {}):
    """unpack() input function of a training rule: its settings file (iga.cell_records) and its data.

    The settings file's age retrains a cell whose record no longer matches the config, also on a fresh
    clone without Snakemake metadata. Data are declared only when they exist or the cell must train
    (and as ancient()), so that making or re-fetching data for one cell never retrains another; the
    shell reads them through params. `data(wildcards)` gives {name: path}."""

    def inputs(wildcards):
        cell = wildcard_cell(task, wildcards)
        files = {k: str(v) for k, v in data(wildcards).items() if v}
        path = Path(WORK) / "settings" / task / cell.item / cell.name / f"s{cell.seed}.json"
        doc = cell_document(resolved(cell), data_relative(files, DATA), RESULTS_VERSION)  # data.root may move
        current = sync_settings_file(path, cell.dir(RECORDS), doc)
        # a figure file kept neither beside the record nor in work/ retrains the cell: it needs its data then
        lost = [
            f
            for f in KEPT_FIGURE_FILES.get(cell.id, ())
            if not any((cell.dir(r) / f).exists() for r in (RECORDS, WORK))
        ]
        if current and not lost and not all(Path(f).exists() for f in files.values()):
            files = {}
        return {**{k: ancient(v) for k, v in files.items()}, "settings": str(path)}

    return inputs


def record_dir(task, cell):
    """The cell's tracked record folder (iga.cell_records)."""
    return str(cell.dir(RECORDS))


def cell_outputs(task, filename, group=None):
    """A file of every cell's record (what collect, tables and figures read)."""
    return [f"{record_dir(task, c)}/{filename}" for c in enumerate_cells(config, task, group)]


KEPT_FIGURE_FILES = {}  # cell id -> the files its figures show, kept beside its record (records.smk)


def kept_figure_files(task, filename, shown):
    """``filename`` (a training output a figure shows) beside the record of each cell the figure shows:
    those ``shown(cell)`` accepts, one replicate each (the first seed), as the figures do; only these keep
    their large files (records.smk). Registered, so that train_inputs knows which cells must train again
    when it is kept neither there nor in work/."""
    cells = [
        c
        for c in enumerate_cells(config, task)
        if shown(c) and c.seed == cell_seeds(config, task, c.item, c.arch, c.method)[0]
    ]
    for c in cells:
        KEPT_FIGURE_FILES.setdefault(c.id, []).append(filename)
    return [f"{record_dir(task, c)}/{filename}" for c in cells]


def record_outputs(task):
    """The record files a training rule declares (its outputs that every table is built from)."""
    base = f"{RECORDS}/{task}/{{item}}/{{arch}}-{{method}}/s{{seed}}"
    return {"metrics": f"{base}/metrics.json", "record": f"{base}/provenance.json"}


def keep_record(task):
    """params function: the command that, after a training command, keeps the finished cell's record
    (work/ → results/{preset}/cells/, iga.cell_records)."""

    def command(wildcards, input, output):
        work = wildcard_cell(task, wildcards).dir(WORK)
        record = Path(output.metrics).parent
        return f"iga keep-record --task {task} --work {work} --record {record} --settings-file {input.settings}"

    return command


def job_resources(name):
    """A training rule's resources (`resources: **job_resources("train_<task>")`), from config.resources
    (defaults: iga.workflow_config.Resource)."""
    r = CONFIG.resources.get(name) or Resource()
    return {"gpu": r.gpu, "mem_mb": r.mem_mb, "runtime": r.runtime}


def job_threads(name):
    return (CONFIG.resources.get(name) or Resource()).threads


@functools.lru_cache(maxsize=None)
def _cells_digest(tasks):
    """A digest of every cell's resolved settings (and the results version) of these tasks."""
    h = hashlib.sha256(RESULTS_VERSION.encode())
    for task in sorted(tasks):
        if not enabled(task):
            continue
        for group in [None] + sorted(getattr(CONFIG.tasks, task).grids):
            for cell in enumerate_cells(config, task, group):
                h.update(cell.id.encode())
                h.update(json.dumps(resolved(cell), sort_keys=True).encode())
    return h.hexdigest()[:16]


CONFIG_STAMPS = {}  # rule -> its config stamp (report.smk checks that each such rule keeps it)


def config_stamp(rule, *tasks, reads=()):
    """Input `config` of every rule that builds tables or figures from these tasks' cells: the stamp
    (iga.stamps.aggregation_document) of what it builds them from besides the records: the tasks' config
    sections, their cells' settings (a digest) and what the rule `reads` of the first task: "note" (its
    scale note), "preset_note", "figures". The rule also declares the output `built_from=built_from(rule)`
    and ends its shell with KEEP_BUILT_FROM's text, so its outputs and the config they were built from are
    written by one job. A stamp that differs from that kept copy reruns the rule, also on a fresh clone
    without Snakemake metadata; so does a changed cell, pulling its retraining even after it failed in an
    earlier run (Snakemake does not rebuild a missing intermediate file for outputs it considers current)."""
    if rule not in CONFIG_STAMPS:
        path = f"{WORK}/stamps/{rule}.json"
        doc = aggregation_document(config, list(tasks), _cells_digest(tuple(sorted(tasks))), RESULTS_VERSION, reads)
        sync_aggregation_stamp(path, built_from(rule), doc)
        CONFIG_STAMPS[rule] = path
    return CONFIG_STAMPS[rule]


def built_from(rule):
    """The config a rule's tables or figures were built from, kept (committed) beside them."""
    return f"{RESULTS}/settings/{rule}.json"


KEEP_BUILT_FROM = " && cp {input.config:q} {output.built_from:q}"  # how a stamped rule's shell ends


def image_path(task, item):
    """The picture an image or image_ablation cell fits: a Kodak download or a generated embedded one."""
    section = getattr(CONFIG.tasks, task)
    if section.dataset == "kodak":
        return f"{DATA}/kodak/{item}.png"
    w, h = section.embedded_size
    return f"{DATA}/embedded/images/{item}_{w}x{h}.png"
