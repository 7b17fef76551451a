"""A NeRF cell's training curve, read back from nerfstudio's own event files.

nerfstudio logs the training loss and the training-batch PSNR every ``logging.steps_per_log`` steps to
TensorBoard event files in the run folder (one file per job: a resumed cell has several). The record of
every task keeps its curve as ``train_log.jsonl`` (one JSON row per logged step), so NeRF's is written
from those files: ``{"step", "loss", "psnr"}``; a later job's value of a step replaces an earlier one's.
"""

from __future__ import annotations

import json
from pathlib import Path

TAGS = {"Train Loss": "loss", "Train Metrics Dict/psnr": "psnr"}


def read_curve(run_dir: Path) -> list[dict]:
    """The logged steps of every event file in ``run_dir``, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows: dict[int, dict] = {}
    # the file names start with their creation time: oldest first, so a resumed job's steps win
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        tags = set(events.Tags()["scalars"])
        for tag, key in TAGS.items():
            for e in events.Scalars(tag) if tag in tags else []:
                rows.setdefault(int(e.step), {"step": int(e.step)})[key] = float(e.value)
    return [rows[s] for s in sorted(rows)]


def write_train_log(run_dir: Path, out: Path) -> int:
    """``out`` (train_log.jsonl) from the run's event files; returns the number of rows."""
    rows = read_curve(run_dir)
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)
