"""Aggregation stamps (iga.stamps): their age says whether the committed tables and figures were built
from the current config; the workflow side is in tests/test_incremental.py."""

from __future__ import annotations

from iga.stamps import aggregation_document, stamp_text, sync_aggregation_stamp

CONFIG = {
    "preset": "tiny",
    "scale_note": "TINY",
    "tasks": {"image": {"items": ["astronaut"], "figures": {"crops_arch": "PE"}}, "toy": {"items": []}},
}


def doc(config=CONFIG, cells="abc"):
    return aggregation_document(config, ["image"], cells, "1")


def test_the_document_holds_the_scope_tasks_the_note_and_the_cells():
    d = doc()
    assert d["tasks"] == {"image": CONFIG["tasks"]["image"]} and d["scale_note"] == "TINY" and d["cells"] == "abc"


def test_a_stamp_is_old_when_the_kept_copy_matches_and_new_when_it_differs(tmp_path):
    stamp, kept = tmp_path / "work" / "image.json", tmp_path / "results" / "image.json"
    kept.parent.mkdir()
    kept.write_text(stamp_text(doc()))
    sync_aggregation_stamp(stamp, kept, doc())  # a fresh clone built from this config: the outputs stand
    assert stamp.stat().st_mtime == 0

    figures = {**CONFIG["tasks"]["image"], "figures": {"crops_arch": "SIREN"}}
    edited = doc({**CONFIG, "tasks": {**CONFIG["tasks"], "image": figures}})
    sync_aggregation_stamp(stamp, kept, edited)  # a figure setting edited: rebuilt
    assert stamp.stat().st_mtime > 0 and "SIREN" in stamp.read_text()
    mtime = stamp.stat().st_mtime
    sync_aggregation_stamp(stamp, kept, edited)  # unchanged since: keeps its age (an interrupted run resumes)
    assert stamp.stat().st_mtime == mtime

    sync_aggregation_stamp(stamp, kept, doc(cells="def"))  # a cell changed: rebuilt too
    assert stamp.stat().st_mtime > 0
    sync_aggregation_stamp(stamp, kept, doc())  # back to what the results were built from
    assert stamp.stat().st_mtime == 0


def test_no_kept_copy_means_the_outputs_are_rebuilt(tmp_path):
    stamp = tmp_path / "image.json"
    sync_aggregation_stamp(stamp, tmp_path / "missing.json", doc())
    assert stamp.stat().st_mtime > 0
