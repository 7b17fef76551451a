"""Replicates of one configuration (one cell per seed): mean ± sample std (n), and when a gap is noise.

Every table reads its seed statistics here, so the wording and the rule are the same everywhere:

* a value over K > 1 seeds prints as ``mean ± std (n=K)`` (sample standard deviation, ddof = 1);
  over one seed it prints as the plain value, as before seeds existed;
* IGA's gap to the best other method is *within noise* when ``|mean_IGA − mean_other|`` is smaller
  than the larger of the two standard deviations (only those over n > 1 seeds count); such an entry
  carries :data:`NOISE_MARK` and the table's notes state :data:`NOISE_RULE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .labels import fmt, number

NOISE_MARK = "†"
NOISE_RULE = (
    f"{NOISE_MARK} within noise: the gap between IGA and the best other method is smaller than the larger of "
    "their seed standard deviations (sample std over the seeds, only where n > 1)"
)
SPREAD_INTRO = "mean ± std (n=K): mean and sample standard deviation over K seeds (one cell per seed)."


def summary(values: Sequence[float]) -> tuple[float, float | None, int]:
    """(mean, sample std or None for one value, n) of the seeds' values."""
    n = len(values)
    if not n:
        raise ValueError("no values to summarise")
    mean = sum(values) / n
    if n == 1:
        return mean, None, 1
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)), n


def count(n) -> int:
    """A row's ``n`` (text or number; empty: one value)."""
    return 1 if n in ("", None) else int(float(n))


def text(value, std="", n="", metric: str = "", digits: int | None = None, scale: float = 1.0) -> str:
    """``mean ± std (n=K)`` for K > 1, else the plain value; "—" for no value. ``scale`` multiplies (s → ms)."""
    if value in ("", None):
        return fmt(value)
    head = fmt(float(value) * scale, metric, digits)
    if count(n) > 1 and std not in ("", None):
        return f"{head} ± {fmt(float(std) * scale, metric, digits)} (n={count(n)})"
    return head


def within_noise(a: Mapping, b: Mapping) -> bool:
    """Whether rows ``a`` and ``b`` ({value, std, n}) differ by less than the larger seed spread."""
    va, vb = number(a.get("value")), number(b.get("value"))
    if va is None or vb is None:
        return False
    stds = [number(r.get("std")) for r in (a, b) if count(r.get("n")) > 1 and number(r.get("std")) is not None]
    return bool(stds) and abs(va - vb) < max(stds)


MIXED_SEEDS = "mean of each member's mean over its seeds (their seeds differ: no spread)"


def per_seed_means(members: Sequence[Mapping[int | str, float | None]]) -> dict | None:
    """{seed: mean over the members} when every member has the same seeds and all values; else None."""
    if not members or any(not m or any(v is None for v in m.values()) for m in members):
        return None
    seeds = [tuple(sorted(m, key=str)) for m in members]
    if len(set(seeds)) != 1:
        return None
    return {s: sum(m[s] for m in members) / len(members) for s in seeds[0]}


def average_over(members: Sequence[Mapping[int | str, float | None]]) -> tuple[float | None, float | None, int, str]:
    """(mean, std, n, note) over ``members`` (each: its values per seed), with a spread where one exists.

    When every member has the same seeds, the mean is taken per seed and the result is the mean ± std
    of those per-seed means (n = the number of seeds). When the seeds differ, it is the mean of the
    members' means with no spread (n = 1 and the note says why). A missing value gives (None, None, 0, "").
    """
    if not members or any(not m or any(v is None for v in m.values()) for m in members):
        return None, None, 0, ""
    per_seed = per_seed_means(members)
    if per_seed is not None:
        mean, std, n = summary(list(per_seed.values()))
        return mean, std, n, ""
    means = [sum(m.values()) / len(m) for m in members]
    return sum(means) / len(means), None, 1, MIXED_SEEDS


def average_of_averages(groups: Sequence[Sequence[Mapping]]) -> tuple[float | None, float | None, int, str]:
    """:func:`average_over` of each group's average (e.g. over the architectures of the item averages)."""
    inner = [per_seed_means(g) for g in groups]
    if inner and all(x is not None for x in inner):
        return average_over(inner)
    means = [average_over(g)[0] for g in groups]
    if not means or any(m is None for m in means):
        return None, None, 0, ""
    return sum(means) / len(means), None, 1, MIXED_SEEDS


def mark_noise(rows: list[dict], is_iga, lower_is_better=lambda metric: False) -> None:
    """Set ``within_noise`` on IGA's rows: 1 when the best other method of the same (architecture,
    item, metric) is within the seeds' spread, 0 when not, empty when neither has a spread (n = 1)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["architecture"], r["item"], r["metric"]), []).append(r)
    for (_, _, metric), g in groups.items():
        sign = -1 if lower_is_better(metric) else 1
        others = [r for r in g if not is_iga(r) and r["value"] not in ("", None)]
        for r in g:
            if not is_iga(r) or r["value"] in ("", None) or not others:
                continue
            best = max(others, key=lambda o: sign * float(o["value"]))
            spread = count(r.get("n")) > 1 or count(best.get("n")) > 1
            r["within_noise"] = int(within_noise(r, best)) if spread else ""
