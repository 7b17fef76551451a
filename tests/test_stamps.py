"""Aggregation stamps (iga.stamps): their age says whether a rule's committed tables or figures were built
from the current config; the workflow side is in tests/test_incremental.py."""

from __future__ import annotations

import os

import pytest

from iga.stamps import aggregation_document, stamp_text, sync_aggregation_stamp

CONFIG = {
    "preset": "tiny",
    "scale_note": "TINY",
    "tasks": {
        "image": {
            "items": ["astronaut"],
            "figures": {"crops_arch": "PE"},
            "overrides": {"lucy/PE-IGA": {"adjuster": {"end": 3}}},
        },
        "toy": {"items": [], "scale_note": "TOY"},
    },
}


def doc(config=CONFIG, cells="abc", tasks=("image",), reads=("note",)):
    return aggregation_document(config, list(tasks), cells, "1", reads)


def edited(**image):
    return {**CONFIG, "tasks": {**CONFIG["tasks"], "image": {**CONFIG["tasks"]["image"], **image}}}


def test_a_rule_is_stamped_with_what_it_reads():
    d = doc()
    assert d["tasks"] == {"image": {"items": ["astronaut"]}} and d["cells"] == "abc"
    assert d["scale_note"] == "TINY"  # the task has none: the preset's
    assert doc(tasks=("toy",))["scale_note"] == "TOY"
    assert "figures" not in d and doc(reads=("note", "figures"))["figures"] == {"figures": {"crops_arch": "PE"}}
    # a figure choice reruns the figure rules only; an override reaches a rule through the cells' digest
    assert doc(edited(figures={"crops_arch": "SIREN"})) == d
    assert doc(edited(figures={"crops_arch": "SIREN"}), reads=("figures",)) != doc(reads=("figures",))
    assert doc(edited(overrides={})) == d
    with pytest.raises(ValueError, match="reads"):
        doc(reads=("colour",))


def test_a_stamp_is_old_when_the_kept_copy_matches_and_new_when_it_differs(tmp_path):
    stamp, kept = tmp_path / "work" / "image.json", tmp_path / "results" / "image.json"
    kept.parent.mkdir()
    kept.write_text(stamp_text(doc()))
    sync_aggregation_stamp(stamp, kept, doc())  # a fresh clone built from this config: the outputs stand
    assert stamp.stat().st_mtime == 0

    note = doc({**CONFIG, "scale_note": "another"})
    sync_aggregation_stamp(stamp, kept, note)  # the note edited: rebuilt
    assert stamp.stat().st_mtime > 0 and "another" in stamp.read_text()
    sync_aggregation_stamp(stamp, kept, doc(cells="def"))  # a cell changed: rebuilt too
    assert stamp.stat().st_mtime > 0
    sync_aggregation_stamp(stamp, kept, doc())  # back to what the results were built from
    assert stamp.stat().st_mtime == 0


def test_an_unchanged_stamp_is_dated_now_while_its_outputs_were_built_from_something_else(tmp_path):
    """E.g. a checkout replaced the outputs (and their kept copy) with ones built under another config."""
    stamp, kept = tmp_path / "image.json", tmp_path / "kept.json"
    stamp.write_text(stamp_text(doc()))
    os.utime(stamp, (0, 0))
    kept.write_text(stamp_text(doc({**CONFIG, "scale_note": "another"})))
    sync_aggregation_stamp(stamp, kept, doc())
    assert stamp.stat().st_mtime > 0


def test_no_kept_copy_means_the_outputs_are_rebuilt(tmp_path):
    stamp = tmp_path / "image.json"
    sync_aggregation_stamp(stamp, tmp_path / "missing.json", doc())
    assert stamp.stat().st_mtime > 0
