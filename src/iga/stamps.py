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
    """Keep the stamp at ``path`` holding ``text``, dated so that Snakemake rebuilds the outputs it feeds
    exactly when they were not built from ``text``. ``committed``: the outputs on disk (a kept copy, a
    cell's record) were built from this very text.

    - A stamp written fresh (new or changed text) is dated to the epoch when ``committed`` (a fresh clone:
      the outputs stand), otherwise now (they are rebuilt).
    - An unchanged stamp whose outputs were not built from it (a failed or interrupted run, or outputs
      replaced by a checkout) is dated now again, so they are rebuilt however old the stamp is."""
    path = Path(path)
    try:
        unchanged = path.read_text() == text
    except OSError:
        unchanged = False
    if unchanged:
        if not committed:
            os.utime(path, None)
        return
    with atomic_file(path) as f:
        f.write(text)
    if committed:
        os.utime(path, (0, 0))


# A task's config keys whose effect on this run is its cells' resolved settings (in the cells' digest):
# editing them for cells this run does not have (e.g. the paper's lucy under the smoke preset) changes
# no table. And the keys only tables and figures read, stamped only for the rules that read them.
SETTINGS_KEYS = ("settings", "settings_from", "overrides", "variants")
NOTE_KEYS = ("scale_note",)
FIGURE_KEYS = ("figures", "figure_item")


def aggregation_document(
    config: dict, tasks: list[str], cells_digest: str, results_version: str, reads: tuple[str, ...] = ()
) -> dict:
    """What one rule's tables or figures are built from besides its cells' records: the tasks' config
    sections (dataset, items, grids, …; their settings enter through ``cells_digest``, a digest of every
    cell's resolved settings, so a changed cell reruns the rule even after its retraining failed), plus
    what the rule ``reads`` of the first task (its owner): ``note``, its scale note (the preset's when it
    has none); ``preset_note``, the preset's; ``figures``, its figure choices."""
    sections = config.get("tasks", {})
    owner = sections.get(tasks[0]) or {} if tasks else {}
    doc = {
        "preset": config.get("preset"),
        "results_version": results_version,
        "cells": cells_digest,
        "tasks": {
            t: {k: v for k, v in (sections.get(t) or {}).items() if k not in SETTINGS_KEYS + NOTE_KEYS + FIGURE_KEYS}
            for t in sorted(tasks)
        },
    }
    if "note" in reads:
        doc["scale_note"] = owner.get("scale_note") or config.get("scale_note")
    if "preset_note" in reads:
        doc["preset_scale_note"] = config.get("scale_note")
    if "figures" in reads:
        doc["figures"] = {k: owner.get(k) for k in FIGURE_KEYS if k in owner}
    unknown = set(reads) - {"note", "preset_note", "figures"}
    if unknown:
        raise ValueError(f"reads {sorted(unknown)}; allowed: note, preset_note, figures")
    return doc


def sync_aggregation_stamp(path: Path, committed_copy: Path, doc: dict) -> None:
    """The stamp of one aggregation rule; ``committed_copy`` is the copy its job keeps with its outputs."""
    text = stamp_text(doc)
    try:
        committed = Path(committed_copy).read_text() == text
    except OSError:
        committed = False
    sync_stamp(path, text, committed)
