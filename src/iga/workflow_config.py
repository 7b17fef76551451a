"""The workflow's config (config.yaml + preset overlays) as one typed model, checked before any job.

:func:`validate_config` checks the structure (every key at every level, strict types), then resolves
and validates every cell with its task's registered settings model (iga.configs.register_task), and
rejects override patterns that can match no cell. ``workflow/schemas/config.schema.yaml`` is
generated from the same models (:func:`json_schema`, ``iga config-schema``), so the two never drift.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml
from pydantic import Field, create_model, field_validator

from .cells import METHOD_DEFAULTS, deep_merge, enumerate_cells, matching_overrides, resolve_settings, task_section
from .configs import ARCHITECTURES, TASKS, ConfigError, Strict, validate
from .data import archives, download

# the tasks register their models on import (all torch-free)
from .tasks import image_config, occupancy_config, toy_config  # noqa: F401,E402  isort: skip
from .nerf import cell_settings  # noqa: F401,E402  isort: skip


class Resource(Strict):
    gpu: int = Field(0, ge=0)
    mem_mb: int = Field(4000, ge=1)
    runtime: int = Field(60, ge=1, description="minutes")
    threads: int = Field(1, ge=1)


_LIMITS = archives.ExtractLimits()  # the defaults, declared once with the extractor


class ExtractLimits(Strict):
    """Archives beyond these are refused (bombs, wrong files); defaults far above the real archives."""

    max_total_bytes: int = Field(_LIMITS.max_total_bytes, ge=1)
    max_member_bytes: int = Field(_LIMITS.max_member_bytes, ge=1)
    max_ratio: float = Field(_LIMITS.max_ratio, gt=0)  # unpacked/packed size of a large member; .mat: 338
    max_members: int = Field(_LIMITS.max_members, ge=1)
    max_link_bytes: int = Field(_LIMITS.max_link_bytes, ge=1)


class DataConfig(Strict):
    # rules pass {input}/{output} under root unquoted: no spaces or shell characters
    root: str = Field("data", pattern=r"^[A-Za-z0-9_./-]+$", description="letters, digits and _ . / - only")
    mirror: str | None = None  # a local folder or URL prefix searched before the real URLs (spaces are fine)
    retries: int = Field(download.RETRIES, ge=0)
    timeout_s: float = Field(download.Pace.timeout, gt=0, description="deadline of one download attempt, in total")
    min_rate_bytes_per_s: float = Field(download.Pace.min_rate, ge=0, description="0: no minimum rate")
    rate_window_s: float = Field(download.Pace.rate_window, gt=0)
    extract_limits: ExtractLimits = ExtractLimits()


class LpipsConfig(Strict):
    enabled: bool = True  # AlexNet weights are fetched (checksummed); if they can't be, LPIPS is "missing"


Tasks = create_model("Tasks", __base__=Strict, **{name: (spec.section | None, None) for name, spec in TASKS.items()})


class WorkflowConfig(Strict):
    preset: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="results/{preset}, work/{preset}")
    scale_note: str = ""
    output_root: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_./-]*$",  # as data.root: every path under it reaches the rules' shell commands
        description="folder holding results/, work/ and logs/ ('' = the repository); make smoke points it at a "
        "scratch folder to rerun the smoke grid from scratch beside the committed results",
    )
    data: DataConfig = DataConfig()
    lpips: LpipsConfig = LpipsConfig()
    resources: dict[str, Resource] = {}
    tasks: Tasks = Tasks()

    @field_validator("resources")
    @classmethod
    def _known_rules(cls, v):
        allowed = sorted(f"train_{t}" for t in TASKS)
        bad = sorted(set(v) - set(allowed))
        if bad:
            raise ValueError(f"resources for unknown rule(s) {bad}; allowed: {allowed}")
        return v


def _possible_names(section, task: str) -> tuple:
    """Every item and ARCH-METHOD an override pattern of this task may name."""
    grids = list(section.grids.values())
    items = set(section.items) | set(section.known_items())
    archs = set(section.architectures) | set(ARCHITECTURES) | {"TwoLayer", "NeRF"}
    methods = set(section.methods) | set(METHOD_DEFAULTS)
    for g in grids:
        items |= set(g.items or [])
        archs |= set(g.architectures or [])
        methods |= set(g.methods or [])
    methods |= {f"{base}-{v}" for base in METHOD_DEFAULTS for v in section.variants}
    names = sorted(f"{a}-{m}" for a in archs for m in methods)
    return sorted(items), names


def _check_overrides(section, task: str, cells, inherited: set) -> list[str]:
    """Every override pattern must apply to some cell. One written for this run (an overlay, --config)
    must match one of its cells, or the edit would be dropped in silence; one inherited unchanged from
    config.yaml (``inherited``) may name the paper's cells (e.g. ficus's ``end`` under a preset without
    ficus), so it need only name a possible cell of the task."""
    items, names = _possible_names(section, task)
    ours = {(c.item, f"{c.arch}-{c.method}") for c in cells}
    errors = []
    for pattern, value in section.overrides.items():
        if value is None:  # an inherited override switched off
            continue
        if pattern not in inherited:
            if any(fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(f"{i}/{n}", pattern) for i, n in ours):
                continue
            examples = sorted(f"{i}/{n}" for i, n in ours)[:6]
            errors.append(
                f"tasks.{task}.overrides: pattern {pattern!r} matches no cell of this run; a pattern is "
                f"'ARCH-METHOD' or 'ITEM/ARCH-METHOD', and this run's cells are e.g. {examples}"
                f"{'…' if len(ours) > 6 else ''} (items {sorted({i for i, _ in ours})})"
            )
            continue
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            continue
        if any(fnmatch.fnmatchcase(f"{i}/{n}", pattern) for i in items for n in names):
            continue
        errors.append(
            f"tasks.{task}.overrides: pattern {pattern!r} matches no cell; a pattern is "
            f"'ARCH-METHOD' or 'ITEM/ARCH-METHOD' with items among {items} and "
            f"architectures/methods such as {names[:6]}…"
        )
    return errors


def _leaves(d: dict, prefix: tuple = ()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,), v


def _holds(d, keys) -> bool:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return False
        d = d[k]
    return True


def _later_layers(config: dict, cell, settings_task: str) -> list:
    """What the cell's settings take after ``tasks.<settings_task>.settings`` (iga.cells._configured): a
    dependent task's own settings, the method's defaults, the architecture, the variant, the overrides."""
    sec = task_section(config, cell.task)
    base_method, _, variant = cell.method.partition("-")
    layers = [sec.get("settings") or {}] if cell.task != settings_task else []
    layers += [METHOD_DEFAULTS.get(base_method, {}), {"model": {"architecture": cell.arch}}]
    layers.append((sec.get("variants") or {}).get(variant) or {})
    layers += [o or {} for _, o in matching_overrides(sec, cell.item, f"{cell.arch}-{cell.method}")]
    return layers


def _dead_settings(config: dict, task: str, cells: list, base: dict | None) -> list[str]:
    """Keys of tasks.<task>.settings that every cell reading them takes from a later layer instead (a
    method's defaults, a variant, an override): an edit there changes nothing. Those kept unchanged from
    ``base`` (config.yaml) are left alone."""
    own = task_section(config, task).get("settings") or {}
    base_own = (((base or {}).get("tasks") or {}).get(task) or {}).get("settings") or {}
    out = []
    for keys, value in _leaves(own):
        if base and _holds(base_own, keys) and _leaf(base_own, keys) == value:
            continue
        if cells and all(any(_holds(layer, keys) for layer in _later_layers(config, c, task)) for c in cells):
            out.append(
                f"tasks.{task}.settings.{'.'.join(keys)}={value!r} has no effect: every cell takes "
                "it from its method, variant, an override or (settings_from) its own task's settings; set it "
                "there (or remove it)"
            )
    return out


def _leaf(d: dict, keys):
    for k in keys:
        d = d[k]
    return d


def _unused_variants(config: dict, task: str, cells: list, base: dict | None) -> list[str]:
    """Variants that no cell's method names (METHOD-VARIANT): defining one changes nothing. config.yaml's
    own (no ``base``: it is the base, whose variants are also there for the presets, e.g. smoke's IGA-quirk)
    and those an overlay keeps unchanged are left alone."""
    if not base:
        return []
    used = {c.method.partition("-")[2] for c in cells}
    base_variants = (((base or {}).get("tasks") or {}).get(task) or {}).get("variants") or {}
    out = []
    for name, spec in (task_section(config, task).get("variants") or {}).items():
        if name in used or base_variants.get(name) == spec:
            continue
        out.append(
            f"tasks.{task}.variants.{name} is used by no cell: no method of the grid is METHOD-{name} "
            f"(e.g. IGA-{name}); add it to a grid's methods or remove it"
        )
    return out


def inherited_overrides(config: dict, base: dict | None) -> dict[str, set]:
    """{task: the override patterns ``config`` keeps unchanged from ``base`` (config.yaml)}."""
    if not base:
        return {}
    out = {}
    for task, sec in (base.get("tasks") or {}).items():
        ours = ((config.get("tasks") or {}).get(task) or {}).get("overrides") or {}
        out[task] = {p for p, v in (sec.get("overrides") or {}).items() if p in ours and ours[p] == v}
    return out


def _origin(config: dict, task: str, cell, error: str) -> str:
    """Where the config sets the key an error about ``cell`` names: " (set by tasks.image.overrides['PE-IGA'])",
    the last matching override, the variant or the settings (own, then settings_from) that hold it; "" when
    the error names no key or only a default holds it."""
    m = re.match(r"([A-Za-z_][\w.]*)=", error)
    if not m:
        return ""
    keys = m.group(1).split(".")

    sec = task_section(config, task)
    hits = [p for p, over in matching_overrides(sec, cell.item, f"{cell.arch}-{cell.method}") if _holds(over, keys)]
    variant = cell.method.partition("-")[2]
    if hits:
        where = f"tasks.{task}.overrides[{hits[-1]!r}]"
    elif variant and _holds((sec.get("variants") or {}).get(variant), keys):
        where = f"tasks.{task}.variants.{variant}"
    else:
        where, t = "", task
        while t and not where:
            where = f"tasks.{t}.settings" if _holds(task_section(config, t).get("settings"), keys) else ""
            t = task_section(config, t).get("settings_from")
    return f" (set by {where})" if where else ""


def typed_command_line(value):
    """``--config`` values read as a config file reads them.

    Snakemake parses a structured ``--config`` value with YAML's BaseLoader, so every scalar in it
    arrives as text ("100", "true"). Each such text is read again with the YAML loader of the config
    files; only scalars change (a text that reads as a mapping or list stays text), so a
    ``--config tasks='{image: {settings: {train: {iterations: 100}}}}'`` means what the same lines in a
    config file mean, strict checks and their hints included."""
    if isinstance(value, dict):
        return {k: typed_command_line(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed_command_line(v) for v in value]
    if isinstance(value, str):
        try:
            read = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return read if read is None or isinstance(read, (bool, int, float)) else value
    return value


def load_config(files) -> dict:
    """Config files merged as Snakemake merges config.yaml and --configfile overlays (dicts recursively)."""
    config: dict = {}
    for f in files:
        config = deep_merge(config, yaml.safe_load(Path(f).read_text()) or {})
    return config


def validate_config(config: dict, base: dict | None = None) -> WorkflowConfig:
    """The typed config; every problem raises ConfigError naming the key, the value and what is allowed.
    ``base``: the config the last layer (the last overlay, or --config) was merged onto; its override
    patterns, variants and settings may concern cells this run does not have (e.g. config.yaml's ficus
    override under the smoke preset, or a preset's kodim03 overrides under an overlay that keeps kodim01).
    Everything is checked before raising, so one message lists every problem
    (the cells' grouped by problem)."""
    cfg = validate(WorkflowConfig, config)
    inherited = inherited_overrides(config, base)
    errors: list[str] = []
    problems: dict[str, list[str]] = {}  # a cell's message -> the cells it applies to
    for task in TASKS:
        section = getattr(cfg.tasks, task)
        if section is None:
            continue
        # a disabled task's cells are still checked (keys, types, ranges), so a typo does not wait for the day
        # it is enabled; not against its data (image size, groups), which settings it inherits may not fit yet
        off = "" if section.enabled else f" (tasks.{task} is disabled; its settings are checked all the same)"
        if section.settings_from is not None and getattr(cfg.tasks, section.settings_from, None) is None:
            errors.append(
                f"tasks.{task}.settings_from={section.settings_from!r} is not a configured task; "
                f"configured: {[t for t in TASKS if getattr(cfg.tasks, t) is not None]}{off}"
            )
            continue
        model = TASKS[task].cell
        validated: dict = {}
        every_cell: list = []
        failed = unlisted = False  # unlisted: some grid's cells could not be listed
        for group in [None] + sorted(section.grids):
            try:
                cells = list(enumerate_cells(config, task, group))
            except ConfigError as exc:  # a method or variant the grid names that does not exist
                where = f"tasks.{task}{f'.grids.{group}' if group else ''}"
                errors.append((str(exc) if str(exc).startswith("tasks.") else f"{where}: {exc}") + off)
                failed = unlisted = True
                continue
            every_cell += cells
            for cell in cells:
                try:
                    context = None if off else section.cell_context(cell.item)
                    m = validate(model, resolve_settings(config, cell), context=context)
                except ConfigError as exc:
                    problems.setdefault(f"{exc}{_origin(config, task, cell, str(exc))}{off}", []).append(cell.id)
                    failed = True
                    continue
                validated.setdefault(group, []).append(m)
        if off:
            continue  # which cells overrides and settings reach only matters for a task that runs
        if not every_cell and not failed:
            errors.append(
                f"tasks.{task} has no cell: items={section.items}, architectures={section.architectures}, "
                f"methods={section.methods}{' and its grids give none' if section.grids else ''}; give at least "
                "one of each, or set enabled: false"
            )
            continue
        if not unlisted:
            errors += _check_overrides(section, task, every_cell, inherited.get(task, set()))
            readers = list(every_cell)
            for t in TASKS:  # cells of tasks whose settings start from this one's (settings_from)
                sec = getattr(cfg.tasks, t)
                if t == task or sec is None or not sec.enabled or sec.settings_from != task:
                    continue
                try:
                    readers += [c for g in [None] + sorted(sec.grids) for c in enumerate_cells(config, t, g)]
                except ConfigError:
                    readers = []  # that task's own check reports it; no verdict on these settings
                    break
            errors += _dead_settings(config, task, readers, base)
            errors += _unused_variants(config, task, every_cell, base)
        if failed:
            continue  # the task-wide rules below assume valid cells
        try:
            section.check_cells(validated)
        except ValueError as exc:
            errors.append(f"tasks.{task}.{exc}")
    if errors or problems:
        raise ConfigError("\n".join(errors + ([_cell_problems(problems)] if problems else [])))
    return cfg


def _cell_problems(problems: dict[str, list[str]], shown: int = 3) -> str:
    """One line per distinct problem: 'cell A: …', or 'cell A (and 2 more: B, C): …' when it recurs."""
    lines = []
    for message, cells in problems.items():
        first, rest = cells[0], list(dict.fromkeys(cells[1:]))
        more = ""
        if rest:
            listed = ", ".join(rest[:shown]) + (f", … {len(rest) - shown} more" if len(rest) > shown else "")
            more = f" (and {len(rest)} more: {listed})"
        lines.append(f"cell {first}{more}: {message}")
    return "\n".join(lines)


def json_schema() -> dict:
    schema = WorkflowConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "iga-repro configuration (config.yaml + preset overlays). GENERATED from "
        "iga.workflow_config.WorkflowConfig by `iga config-schema`: do not edit by hand. "
        "Each cell's resolved settings are further checked by its task's settings model."
    )
    return schema
