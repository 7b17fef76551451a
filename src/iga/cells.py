"""Cells — one training run each — and their resolved settings, computed in one place.

A cell is (task, item, architecture, method[-variant]); its id ``{task}/{item}/{arch}-{method}``
appears in paths and table rows. Settings resolve as::

    task.settings  ←  method defaults  ←  task.variants[variant]  ←  each task.overrides entry whose
    fnmatch pattern matches "{arch}-{method}" or "{item}/{arch}-{method}" (general before specific,
    see :func:`_specificity`)

and are handed to exactly one rule as ``params`` so that a change to one cell reruns only it.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from .configs import ConfigError

# base method -> what it changes; the variant suffix ("IGA-RSI") picks task.variants["RSI"]
METHOD_DEFAULTS: dict[str, dict] = {
    "vanilla": {"model": {"technique": "none"}, "adjuster": {"kind": "vanilla"}},
    "FR": {"model": {"technique": "fr"}, "adjuster": {"kind": "vanilla"}},
    "BN": {"model": {"technique": "bn"}, "adjuster": {"kind": "vanilla"}},
    "IGA": {"model": {"technique": "none"}, "adjuster": {"kind": "iga"}},
    "eNTK": {"model": {"technique": "none"}, "adjuster": {"kind": "entk"}},
    "NTK": {"model": {"technique": "none"}, "adjuster": {"kind": "ntk"}},
}


@dataclass(frozen=True, order=True)
class Cell:
    task: str
    item: str
    arch: str
    method: str  # "IGA" or "IGA-RSI"

    @property
    def base_method(self) -> str:
        return self.method.split("-", 1)[0]

    @property
    def variant(self) -> str | None:
        parts = self.method.split("-", 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.method}"

    @property
    def id(self) -> str:
        return f"{self.task}/{self.item}/{self.name}"

    def dir(self, root: str | Path) -> Path:
        """The cell's folder under a work or results root: ``{root}/{task}/{item}/{arch}-{method}``."""
        return Path(root) / self.task / self.item / self.name

    @classmethod
    def from_id(cls, cell_id: str) -> Cell:
        """Inverse of :attr:`id` ("image/kodim03/PE-IGA-RSI")."""
        parts = str(cell_id).strip("/").split("/")
        if len(parts) != 3:
            raise ConfigError(f"cell id {cell_id!r} must be TASK/ITEM/ARCH-METHOD")
        task, item, name = parts
        arch, sep, method = name.partition("-")
        if not sep or not arch or not method:
            raise ConfigError(f"cell id {cell_id!r}: the last part must be ARCH-METHOD")
        return cls(task, item, arch, method)

    @classmethod
    def from_path(cls, path: str | Path) -> Cell:
        """The cell of a file or folder ``…/{task}/{item}/{arch}-{method}[/file]``."""
        p = Path(path)
        if p.is_file() or "-" not in p.name:  # a file inside the cell folder
            p = p.parent
        if len(p.parts) < 3:
            raise ConfigError(f"{path}: not inside a cell folder …/TASK/ITEM/ARCH-METHOD")
        return cls.from_id("/".join(p.parts[-3:]))


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def task_section(config: dict, task: str) -> dict:
    try:
        return config["tasks"][task]
    except KeyError:
        raise ConfigError(f"task {task!r} is not configured; configured: {sorted(config.get('tasks', {}))}") from None


def enumerate_cells(config: dict, task: str, group: str | None = None) -> list[Cell]:
    """All cells of ``task`` (or of one of its named ``grids`` for ablations)."""
    sec = task_section(config, task)
    grid = sec if group is None else sec["grids"][group]
    cells = []
    for item in grid.get("items", sec.get("items", [])):
        for arch in grid.get("architectures", sec.get("architectures", [])):
            for method in grid.get("methods", sec.get("methods", [])):
                cells.append(Cell(task, str(item), str(arch), str(method)))
    return cells


def _specificity(pattern: str) -> tuple:
    """Order in which overrides apply: general before specific, so the most specific wins.

    Not file order: Snakemake's merge of a preset overlay may reorder keys. Item-specific
    patterns ("kodim03/PE-IGA") come after architecture-method ones ("PE-IGA"); within each kind
    patterns with wildcards come before exact ones, and among wildcard patterns the one with more
    literal characters ("exp2_*/SIREN-*" vs "exp2_*/*") is more specific; ties keep file order.
    """
    wild = any(ch in pattern for ch in "*?[")
    literal = sum(ch not in "*?[]" for ch in pattern)
    return ("/" in pattern, not wild, literal)


def task_settings(config: dict, task: str, _seen: tuple = ()) -> dict:
    """``tasks.<task>.settings`` on top of those of ``settings_from`` (image_ablation: the image task's)."""
    sec = task_section(config, task)
    src = sec.get("settings_from")
    if src in _seen + (task,):
        raise ConfigError(f"tasks.{task}.settings_from={src!r} makes a cycle")
    base = task_settings(config, src, _seen + (task,)) if src else {}
    return deep_merge(base, sec.get("settings") or {})


def resolve_settings(config: dict, cell: Cell) -> dict:
    """The cell's complete settings: {"model", "adjuster", "optim", "train", "task"} (JSON-able)."""
    sec = task_section(config, cell.task)
    if cell.base_method not in METHOD_DEFAULTS:
        raise ConfigError(f"method={cell.base_method!r} is not allowed; choose one of {sorted(METHOD_DEFAULTS)}")
    settings = deep_merge(task_settings(config, cell.task), METHOD_DEFAULTS[cell.base_method])
    settings.setdefault("model", {})["architecture"] = cell.arch
    if cell.variant is not None:
        variants = sec.get("variants", {})
        if cell.variant not in variants:
            raise ConfigError(
                f"variant {cell.variant!r} of method {cell.method!r} is not defined in "
                f"tasks.{cell.task}.variants; defined: {sorted(variants)}"
            )
        settings = deep_merge(settings, variants[cell.variant])
    for pattern, over in sorted((sec.get("overrides") or {}).items(), key=lambda kv: _specificity(kv[0])):
        if fnmatch.fnmatchcase(cell.name, pattern) or fnmatch.fnmatchcase(f"{cell.item}/{cell.name}", pattern):
            settings = deep_merge(settings, over)
    for key in ("model", "adjuster", "optim", "train", "task"):
        settings.setdefault(key, {})
    return settings
