"""Which views of a Blender-format scene train and which are evaluated.

The real split is the default: a scene with ``transforms_test.json`` is evaluated on its test views
(every ``testskip``-th, nerf-pytorch's convention). A scene without one (e.g. a mirror copy holding
only the train split of lego) holds out every ``holdout_every``-th train view (r_0, r_8, … for 8):
those views are evaluated and never trained on, and :func:`split_note` says so wherever the numbers
appear (metrics.json, the long form, the tables' notes, the figure title).

Only the standard library: the report side reads these notes without nerfstudio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TEST = "test"
HELD_OUT = "held_out_train"
HELD_OUT_WORDS = "held-out train views"  # start of every held-out note (the tables find them by it)


def ordinal(n: int) -> str:
    """1 → 1st, 2 → 2nd, 8 → 8th, 11 → 11th, 22 → 22nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def split_note(kind: str, holdout_every: int) -> str:
    """How the evaluated views were chosen, in words; empty for the real test split."""
    if kind == TEST:
        return ""
    return f"{HELD_OUT_WORDS} (every {ordinal(holdout_every)}), no test split"


@dataclass(frozen=True)
class SplitPlan:
    kind: Literal["test", "held_out_train"]
    holdout_every: int
    testskip: int

    @property
    def note(self) -> str:
        return split_note(self.kind, self.holdout_every)

    def frames(self, data: Path, split: str) -> tuple[dict, list[dict]]:
        """``transforms_<split>.json``'s metadata and the frames of ``split`` under this plan."""
        data = Path(data)
        if self.kind == TEST or split == "train":
            meta = _load(data / f"transforms_{split}.json")
            frames = meta["frames"]
            if split != "train":
                return meta, frames[:: self.testskip]
            if self.kind == TEST:
                return meta, frames
            return meta, [f for i, f in enumerate(frames) if i % self.holdout_every]
        # no test split: val and test are the held-out train views (testskip does not thin them)
        meta = _load(data / "transforms_train.json")
        return meta, meta["frames"][:: self.holdout_every]


def plan_split(data: Path, holdout_every: int, testskip: int) -> SplitPlan:
    """The real test split when the scene has one, else held-out train views."""
    if holdout_every < 2:
        raise ValueError(f"holdout_every={holdout_every}; allowed: >= 2 (1 would hold out every view)")
    kind = TEST if (Path(data) / "transforms_test.json").exists() else HELD_OUT
    return SplitPlan(kind, holdout_every, testskip)


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (a Blender-format scene needs transforms_train.json)")
    return json.loads(path.read_text())
