"""Cells — one training run each — and their resolved settings, computed in one place.

A cell is (task, item, architecture, method[-variant], seed); its id ``{task}/{item}/{arch}-{method}/s{seed}``
appears in paths and table rows, and its :attr:`Cell.key` (the id without the seed) groups the
replicates of one configuration in the tables. Settings resolve as::

    task.settings  ←  method defaults  ←  task.variants[variant]  ←  each task.overrides entry whose
    fnmatch pattern matches "{arch}-{method}" or "{item}/{arch}-{method}" (general before specific,
    see :func:`override_specificity`)

and are handed to exactly one rule as ``params`` so that a change to one cell reruns only it.
A list ``train.seeds`` (NeRF: ``run.seeds``) expands one configuration into one cell per seed; each
replicate's settings hold its own ``seed`` and no list, so adding a seed reruns nothing else.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from .configs import ConfigError, TrainConfig, check_seeds

# base method -> what it changes; the variant suffix ("IGA-RSI") picks task.variants["RSI"]
METHOD_DEFAULTS: dict[str, dict] = {
    "vanilla": {"model": {"technique": "none"}, "adjuster": {"kind": "vanilla"}},
    "FR": {"model": {"technique": "fr"}, "adjuster": {"kind": "vanilla"}},
    "BN": {"model": {"technique": "bn"}, "adjuster": {"kind": "vanilla"}},
    "IGA": {"model": {"technique": "none"}, "adjuster": {"kind": "iga"}},
    "eNTK": {"model": {"technique": "none"}, "adjuster": {"kind": "entk"}},
    "NTK": {"model": {"technique": "none"}, "adjuster": {"kind": "ntk"}},
}
# the settings section holding a task's seed (``seed``, ``seeds``); others: "train"
SEED_SECTION: dict[str, str] = {"nerf": "run"}
DEFAULT_SEED: int = TrainConfig.model_fields["seed"].default  # NeRFRun's default is the same
_SEED_DIR = re.compile(r"^s(\d+)$")


@dataclass(frozen=True, order=True)
class Cell:
    task: str
    item: str
    arch: str
    method: str  # "IGA" or "IGA-RSI"
    seed: int

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
    def key(self) -> str:
        """The id without the seed: the configuration that the replicates (one per seed) share."""
        return f"{self.task}/{self.item}/{self.name}"

    @property
    def id(self) -> str:
        return f"{self.key}/s{self.seed}"

    def dir(self, root: str | Path) -> Path:
        """The cell's folder under a work or results root: ``{root}/{task}/{item}/{arch}-{method}/s{seed}``."""
        return Path(root) / self.task / self.item / self.name / f"s{self.seed}"

    @classmethod
    def from_id(cls, cell_id: str) -> Cell:
        """Inverse of :attr:`id` ("image/kodim03/PE-IGA-RSI/s4096")."""
        parts = str(cell_id).strip("/").split("/")
        if len(parts) != 4:
            raise ConfigError(f"cell id {cell_id!r} must be TASK/ITEM/ARCH-METHOD/sSEED")
        task, item, name, seed = parts
        arch, sep, method = name.partition("-")
        if not sep or not arch or not method:
            raise ConfigError(f"cell id {cell_id!r}: the third part must be ARCH-METHOD")
        m = _SEED_DIR.match(seed)
        if not m:
            raise ConfigError(f"cell id {cell_id!r}: the last part must be s<seed>, e.g. s4096")
        return cls(task, item, arch, method, int(m.group(1)))

    @classmethod
    def from_path(cls, path: str | Path) -> Cell:
        """The cell of a file or folder ``…/{task}/{item}/{arch}-{method}/s{seed}[/file]``."""
        p = Path(path)
        if not _SEED_DIR.match(p.name):  # a file inside the cell folder
            p = p.parent
        if len(p.parts) < 4 or not _SEED_DIR.match(p.name):
            raise ConfigError(f"{path}: not inside a cell folder …/TASK/ITEM/ARCH-METHOD/sSEED")
        return cls.from_id("/".join(p.parts[-4:]))


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


def grid_configs(config: dict, task: str, group: str | None = None) -> list[tuple[str, str, str]]:
    """(item, arch, method) of every configuration of ``task`` (or of one of its named ``grids``)."""
    sec = task_section(config, task)
    grid = sec if group is None else sec["grids"][group]
    return [
        (str(item), str(arch), str(method))
        for item in grid.get("items", sec.get("items", []))
        for arch in grid.get("architectures", sec.get("architectures", []))
        for method in grid.get("methods", sec.get("methods", []))
    ]


def enumerate_cells(config: dict, task: str, group: str | None = None) -> list[Cell]:
    """All cells of ``task`` (or of one of its named ``grids`` for ablations), one per seed."""
    return [
        Cell(task, item, arch, method, seed)
        for item, arch, method in grid_configs(config, task, group)
        for seed in cell_seeds(config, task, item, arch, method)
    ]


def cell_seeds(config: dict, task: str, item: str, arch: str, method: str, settings: dict | None = None) -> list[int]:
    """The seeds of one configuration: its ``seeds`` list, else its single ``seed`` (default 4096)."""
    if settings is None:
        settings = _configured(config, task, item, arch, method)
    where = SEED_SECTION.get(task, "train")
    section = settings.get(where) or {}
    key = f"tasks.{task} cell {item}/{arch}-{method}: {where}."
    if section.get("seeds") is not None:
        return check_seeds(section["seeds"], key + "seeds")
    return check_seeds([section.get("seed", DEFAULT_SEED)], key + "seed")


def override_specificity(pattern: str) -> tuple:
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


def _configured(config: dict, task: str, item: str, arch: str, method: str) -> dict:
    """A configuration's merged settings, before its seed is chosen (may hold a ``seeds`` list)."""
    sec = task_section(config, task)
    base, _, variant = method.partition("-")
    if base not in METHOD_DEFAULTS:
        raise ConfigError(f"method={base!r} is not allowed; choose one of {sorted(METHOD_DEFAULTS)}")
    settings = deep_merge(task_settings(config, task), METHOD_DEFAULTS[base])
    settings.setdefault("model", {})["architecture"] = arch
    if variant:
        variants = sec.get("variants", {})
        if variant not in variants:
            raise ConfigError(
                f"variant {variant!r} of method {method!r} is not defined in "
                f"tasks.{task}.variants; defined: {sorted(variants)}"
            )
        settings = deep_merge(settings, variants[variant])
    for _, over in matching_overrides(sec, item, f"{arch}-{method}"):
        settings = deep_merge(settings, over)
    return settings


def matching_overrides(section: dict, item: str, name: str) -> list[tuple[str, dict]]:
    """The overrides of a task section that apply to cell ``item``/``name`` (ARCH-METHOD), in the order
    they are applied (least specific first)."""
    overrides = sorted((section.get("overrides") or {}).items(), key=lambda kv: override_specificity(kv[0]))
    return [(p, o) for p, o in overrides if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(f"{item}/{name}", p)]


def resolve_settings(config: dict, cell: Cell) -> dict:
    """The cell's complete settings: {"model", "adjuster", "optim", "train", "task"} (JSON-able).

    One replicate: its seed section holds ``seed: cell.seed`` and no ``seeds`` list.
    """
    settings = _configured(config, cell.task, cell.item, cell.arch, cell.method)
    where = SEED_SECTION.get(cell.task, "train")
    seeds = cell_seeds(config, cell.task, cell.item, cell.arch, cell.method, settings)
    if cell.seed not in seeds:
        raise ConfigError(f"cell {cell.id}: seed {cell.seed} is not among its {where} seeds {seeds}")
    section = settings.setdefault(where, {})
    section.pop("seeds", None)
    section["seed"] = cell.seed
    for key in ("model", "adjuster", "optim", "train", "task"):
        settings.setdefault(key, {})
    return settings


def settings_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Where two resolved settings differ: ["optim.lr: 0.005 ≠ 0.004", ...] (a missing key reads "—")."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key, "—"), b.get(key, "—")
        if isinstance(x, dict) and isinstance(y, dict):
            out += settings_diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x} ≠ {y}")
    return out
