"""A cell's tracked record: the small files behind every committed number, kept under
``results/{preset}/cells/{task}/{item}/{arch}-{method}/s{seed}/`` and committed with the tables.

A training job writes everything (checkpoints, reconstructions, full logs) into its untracked ``work/``
folder; :func:`keep` then copies the record into the results folder. Tables, metric-only figures, the
cost table and the report read only records, so a fresh clone rebuilds them without ``work/``.

A record knows the settings it was trained with (``cell_settings`` in its provenance). The workflow
hands each training job a settings file (:func:`sync_settings_file`) whose modification time says
whether the committed record still matches the config: Snakemake then retrains exactly the cells whose
settings changed, even on a fresh clone that has no Snakemake metadata.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .provenance import atomic_file, write_json
from .result_record import RECORD_FILE
from .stamps import stamp_text, sync_stamp

METRICS_FILE = "metrics.json"
TRAIN_LOG = "train_log.jsonl"
MAX_CURVE_ROWS = 500  # a training curve's resolution in the record; the full log stays in work/
# Files a task's trainer writes that its record keeps as they are (small, and read by its figures or tables).
KEPT_AS_IS = {
    "image": (),
    "image_ablation": (),
    "occupancy": ("epochs.jsonl",),
    "nerf": (),
    "toy": ("curve.npz",),
}


def canonical(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def thin_rows(rows: list[str], max_rows: int = MAX_CURVE_ROWS) -> list[str]:
    """At most ``max_rows`` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= max_rows:
        return rows
    last = len(rows) - 1
    picks = sorted({round(i * last / (max_rows - 1)) for i in range(max_rows)})
    return [rows[i] for i in picks]


DATA_MARK = "{data}"  # the data root, in the data paths of a cell document
LEGACY_DATA_ROOT = "data"  # records from before DATA_MARK hold paths under the default root


def data_relative(inputs: dict[str, str], root: str) -> dict[str, str]:
    """The data files a cell reads, named under the data root ("{data}/kodak/kodim03.png"): moving
    ``data.root`` elsewhere changes no cell's document, so it retrains nothing."""
    prefix = str(root).rstrip("/") + "/"
    return {k: f"{DATA_MARK}/{v[len(prefix) :]}" if str(v).startswith(prefix) else str(v) for k, v in inputs.items()}


def cell_document(settings: dict, inputs: dict[str, str], results_version: str) -> dict:
    """What a cell's result depends on, as the config says it: its resolved settings, the data files it
    reads and the results version. Written to its settings file and stored in its record."""
    return {"settings": settings, "inputs": dict(sorted(inputs.items())), "results_version": str(results_version)}


def keep(work_dir: Path, record_dir: Path, task: str, settings_file: Path) -> list[Path]:
    """Copy a finished cell's record from ``work_dir`` to ``record_dir``; returns the files written.

    The provenance gains ``cell`` document fields from the job's settings file (``cell_settings``,
    ``cell_inputs``) so that :func:`is_current` can tell a stale record from a current one.
    """
    work_dir, record_dir = Path(work_dir), Path(record_dir)
    if task not in KEPT_AS_IS:
        raise ValueError(f"task {task!r} is unknown; known: {sorted(KEPT_AS_IS)}")
    missing = [n for n in (METRICS_FILE, RECORD_FILE) if not (work_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{work_dir}: no {', '.join(missing)} (did the training job finish?)")
    doc = json.loads(Path(settings_file).read_text())
    written = []
    for name in KEPT_AS_IS[task]:
        src = work_dir / name
        if src.is_file():
            with atomic_file(record_dir / name, "wb") as f, open(src, "rb") as s:
                shutil.copyfileobj(s, f)
            written.append(record_dir / name)
    record = json.loads((work_dir / RECORD_FILE).read_text())
    log = work_dir / TRAIN_LOG
    if log.is_file():
        rows = [r for r in log.read_text().splitlines() if r.strip()]
        kept = thin_rows(rows)
        with atomic_file(record_dir / TRAIN_LOG) as f:
            f.write("".join(r + "\n" for r in kept))
        written.append(record_dir / TRAIN_LOG)
        record["train_log_rows_kept"] = f"{len(kept)} of {len(rows)}"
    record["cell_settings"] = doc["settings"]
    record["cell_inputs"] = doc["inputs"]
    record["results_version"] = doc["results_version"]
    write_json(record, record_dir / RECORD_FILE)
    written.append(record_dir / RECORD_FILE)
    # metrics last: like a trainer's metrics.json, its presence means the record is complete
    write_json(json.loads((work_dir / METRICS_FILE).read_text()), record_dir / METRICS_FILE)
    written.append(record_dir / METRICS_FILE)
    return written


# what names one training: the same job's times and settings (a retrained or re-evaluated cell has others)
SAME_TRAINING = ("cell", "started_at", "finished_at", "invocation", "settings")


def keep_figure_file(work_dir: Path, record_dir: Path, name: str) -> Path:
    """Copy a figure file (a reconstruction, a prediction, a render) of a finished cell from ``work_dir``
    into its record, but only when the work folder holds the training the committed record describes: a
    work folder of another training (an older local run, a collaborator's record pulled over it) would put
    its picture beside the record's numbers. Raises ValueError naming both otherwise."""
    work_dir, record_dir = Path(work_dir), Path(record_dir)
    ours, kept = work_dir / RECORD_FILE, record_dir / RECORD_FILE
    if not ours.is_file() or not kept.is_file():
        missing = ours if not ours.is_file() else kept
        raise ValueError(f"{missing} is missing: cannot tell which training {work_dir / name} comes from")
    a, b = json.loads(ours.read_text()), json.loads(kept.read_text())
    differ = [k for k in SAME_TRAINING if a.get(k) != b.get(k)]
    if differ:
        raise ValueError(
            f"{work_dir / name} is from another training than the record {record_dir} ({', '.join(differ)} "
            f"differ: {a.get('finished_at')} vs {b.get('finished_at')}); retrain the cell (snakemake --forcerun "
            f"on its train rule) or restore the work folder that goes with the record"
        )
    with atomic_file(record_dir / name, "wb") as f, open(work_dir / name, "rb") as src:
        shutil.copyfileobj(src, f)
    return record_dir / name


def orphan_records(cells_root: Path, wanted_metrics) -> list[str]:
    """Record folders under ``cells_root`` that belong to no cell of the run (``wanted_metrics``: the
    metrics.json of every cell it has): a cell dropped from the grid, a disabled task. No rule reads them,
    but they stay committed beside tables that no longer include them."""
    wanted = {str(Path(m).parent) for m in wanted_metrics}
    found = (str(m.parent) for m in Path(cells_root).rglob(METRICS_FILE))
    return sorted(f for f in found if f not in wanted)


def is_current(record_dir: Path, doc: dict) -> bool:
    """Whether the record in ``record_dir`` is complete and was trained from this cell document."""
    path = Path(record_dir) / RECORD_FILE
    if not (Path(record_dir) / METRICS_FILE).is_file() or not path.is_file():
        return False
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    inputs = data_relative(record.get("cell_inputs", {}), LEGACY_DATA_ROOT)  # a no-op on newer records
    kept = cell_document(record.get("cell_settings", {}), inputs, record.get("results_version"))
    return canonical(kept) == canonical(doc)


def sync_settings_file(path: Path, record_dir: Path, doc: dict) -> bool:
    """Write the cell's settings file, an input of its training job (a stamp, :mod:`iga.stamps`): its age
    tells Snakemake to retrain exactly when the committed record no longer matches the cell document.
    Returns whether the record is current."""
    current = is_current(record_dir, doc)
    sync_stamp(path, stamp_text(doc), current)
    return current
