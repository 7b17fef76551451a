"""Stamp files: small inputs of a rule whose age tells Snakemake whether what the rule was built from
has changed, also on a fresh clone.

Snakemake's own params trigger compares with its metadata (``.snakemake/``), which a fresh clone lacks,
so an edit to a setting whose outputs are committed would be dropped there ("Nothing to be done"). A
stamp holds the setting's document and is compared with what produced the committed outputs: a cell's
record (:mod:`iga.cell_records`), or the copy of an aggregation stamp kept beside the tables
(``results/{preset}/settings/``, :func:`aggregation_document`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .provenance import atomic_file


def stamp_text(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n"


def sync_stamp(path: Path, text: str, committed: bool) -> None:
    """Write ``text`` to the stamp at ``path`` unless it already holds it. A rewritten stamp is dated now,
    so the outputs it feeds are rebuilt, unless ``committed`` says the committed outputs were built from
    this very text (a fresh clone): then it is dated to the epoch and they stand. An unchanged stamp keeps
    its date, so outputs that a failed or interrupted run did not rebuild are still rebuilt next time."""
    path = Path(path)
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    with atomic_file(path) as f:
        f.write(text)
    if committed:
        os.utime(path, (0, 0))


def aggregation_document(config: dict, tasks: list[str], cells_digest: str, results_version: str) -> dict:
    """What a task's tables and figures are built from besides its cells' records: the tasks' config
    sections as written (items, figures, scale notes, …), the preset's scale note, and a digest of every
    cell's resolved settings (a changed cell reruns them even when its retraining failed)."""
    return {
        "preset": config.get("preset"),
        "scale_note": config.get("scale_note"),
        "tasks": {t: config.get("tasks", {}).get(t) for t in sorted(tasks)},
        "cells": cells_digest,
        "results_version": results_version,
    }


def sync_aggregation_stamp(path: Path, committed_copy: Path, doc: dict) -> None:
    """The stamp of a scope's aggregation rules; ``committed_copy`` is the copy kept with the results."""
    text = stamp_text(doc)
    try:
        committed = Path(committed_copy).read_text() == text
    except OSError:
        committed = False
    sync_stamp(path, text, committed)
