"""Compare a fresh run's cell records with the committed ones: the check behind ``make smoke``.

Every metric of every committed cell must come back identical; only what a run measures about itself
(times, memory, the machine) may differ, and those fields are named in :data:`MEASURED`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cell_records import METRICS_FILE
from .result_record import RECORD_FILE

# metrics.json fields that are measurements of the run, not results (compared by nobody)
MEASURED = ("time", "seconds", "wall", "peak_", "rss", "_mb")


def _is_measured(key: str) -> bool:
    return any(m in key for m in MEASURED)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


@dataclass
class CellComparison:
    cell: str
    status: str  # identical | close | different | missing
    differences: list[str] = field(default_factory=list)


def compare_metrics(ours: dict, committed: dict, rel_tol: float) -> tuple[str, list[str]]:
    a, b = _flatten(ours), _flatten(committed)
    diffs, worst = [], "identical"
    for key in sorted(set(a) | set(b)):
        if _is_measured(key):
            continue
        x, y = a.get(key), b.get(key)
        if x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        if numeric and math.isclose(x, y, rel_tol=rel_tol, abs_tol=0.0):
            diffs.append(f"{key}: {y!r} → {x!r} (within {rel_tol:g} relative)")
            worst = "close" if worst == "identical" else worst
        else:
            diffs.append(f"{key}: {y!r} → {x!r}")
            worst = "different"
    return worst, diffs


def compare_trees(ours: Path, committed: Path, rel_tol: float = 1e-4) -> list[CellComparison]:
    """One comparison per committed cell record (``…/cells/**/metrics.json``)."""
    ours, committed = Path(ours), Path(committed)
    results = []
    for m in sorted((committed / "cells").rglob(METRICS_FILE)):
        rel = m.parent.relative_to(committed / "cells")
        mine = ours / "cells" / rel / METRICS_FILE
        if not mine.is_file():
            results.append(CellComparison(str(rel), "missing", [f"no {mine}"]))
            continue
        status, diffs = compare_metrics(json.loads(mine.read_text()), json.loads(m.read_text()), rel_tol)
        results.append(CellComparison(str(rel), status, diffs))
    return results


def not_committed(ours: Path, committed: Path) -> list[str]:
    """Cells of the fresh run with no committed record (not compared: the committed results lack them, or
    ``ours`` keeps cells of an earlier config)."""
    ours, committed = Path(ours), Path(committed)
    return sorted(
        str(m.parent.relative_to(ours / "cells"))
        for m in (ours / "cells").rglob(METRICS_FILE)
        if not (committed / "cells" / m.parent.relative_to(ours / "cells") / METRICS_FILE).is_file()
    )


def trained_since(ours: Path, since_epoch: float) -> int:
    """Cells of ``ours`` whose job trained in this run (started at or after ``since_epoch``)."""
    import datetime as _dt

    n = 0
    for p in Path(ours, "cells").rglob(RECORD_FILE):
        rec = json.loads(p.read_text())
        started = rec.get("started_at")
        if (
            rec.get("trained_this_run")
            and started
            and _dt.datetime.fromisoformat(started).timestamp() >= since_epoch - 1
        ):
            n += 1
    return n


def summary(results: list[CellComparison], max_listed: int = 12) -> tuple[str, int]:
    """The one-screen text and the exit code (0: every cell identical or close; 1 otherwise)."""
    n = len(results)
    counts = {s: sum(r.status == s for r in results) for s in ("identical", "close", "different", "missing")}
    lines = [f"reproduced: {counts['identical']}/{n} cells identical"]
    if counts["close"]:
        lines.append(f"  {counts['close']} cells differ only in the last digits (another CPU or BLAS):")
    bad = [r for r in results if r.status != "identical"]
    for r in bad[:max_listed]:
        lines.append(f"  {r.status:9s} {r.cell}: " + "; ".join(r.differences[:3]))
    if len(bad) > max_listed:
        lines.append(f"  … and {len(bad) - max_listed} more")
    if n == 0:
        lines.append("  no committed cell records to compare with")
    failed = counts["different"] + counts["missing"]
    return "\n".join(lines), (1 if failed or n == 0 else 0)
