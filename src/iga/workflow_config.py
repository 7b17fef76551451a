"""The workflow's config (config.yaml + preset overlays) as one typed model, checked before any job.

:func:`validate_config` checks the structure (every key at every level, strict types), then resolves
and validates every cell with its task's registered settings model (iga.configs.register_task), and
rejects override patterns that can match no cell. ``workflow/schemas/config.schema.yaml`` is
generated from the same models (:func:`json_schema`, ``iga config-schema``), so the two never drift.
"""

from __future__ import annotations

import fnmatch
import re

import yaml
from pydantic import Field, create_model, field_validator

from .cells import METHOD_DEFAULTS, enumerate_cells, matching_overrides, resolve_settings, task_section
from .configs import ARCHITECTURES, TASKS, ConfigError, Strict, validate

# the tasks register their models on import (all torch-free)
from .tasks import image_config, occupancy_config, toy_config  # noqa: F401,E402  isort: skip
from .nerf import cell_settings  # noqa: F401,E402  isort: skip


class Resource(Strict):
    gpu: int = Field(0, ge=0)
    mem_mb: int = Field(4000, ge=1)
    runtime: int = Field(60, ge=1, description="minutes")
    threads: int = Field(1, ge=1)


class ExtractLimits(Strict):
    """Archives beyond these are refused (bombs, wrong files); defaults far above the real archives."""

    max_total_bytes: int = Field(16 * 2**30, ge=1)
    max_member_bytes: int = Field(8 * 2**30, ge=1)
    max_ratio: float = Field(600, gt=0)  # unpacked/packed size of a large member; .mat volumes: 338
    max_members: int = Field(200_000, ge=1)
    max_link_bytes: int = Field(4096, ge=1)


class DataConfig(Strict):
    # rules pass {input}/{output} under root unquoted: no spaces or shell characters
    root: str = Field("data", pattern=r"^[A-Za-z0-9_./-]+$", description="letters, digits and _ . / - only")
    mirror: str | None = None  # a local folder or URL prefix searched before the real URLs (spaces are fine)
    retries: int = Field(4, ge=0)
    timeout_s: float = Field(7200, gt=0, description="deadline of one download attempt, in total")
    min_rate_bytes_per_s: float = Field(1024, ge=0, description="0: no minimum rate")
    rate_window_s: float = Field(60, gt=0)
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


def _check_overrides(section, task: str) -> None:
    items, names = _possible_names(section, task)
    for pattern in section.overrides:
        if any(fnmatch.fnmatchcase(n, pattern) for n in names):
            continue
        if any(fnmatch.fnmatchcase(f"{i}/{n}", pattern) for i in items for n in names):
            continue
        raise ConfigError(
            f"tasks.{task}.overrides: pattern {pattern!r} matches no cell; a pattern is "
            f"'ARCH-METHOD' or 'ITEM/ARCH-METHOD' with items among {items} and "
            f"architectures/methods such as {names[:6]}…"
        )


def _origin(config: dict, task: str, cell, error: str) -> str:
    """Where the config sets the key an error about ``cell`` names: " (set by tasks.image.overrides['PE-IGA'])",
    the last matching override, the variant or the settings (own, then settings_from) that hold it; "" when
    the error names no key or only a default holds it."""
    m = re.match(r"([A-Za-z_][\w.]*)=", error)
    if not m:
        return ""
    keys = m.group(1).split(".")

    def holds(d) -> bool:
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return False
            d = d[k]
        return True

    sec = task_section(config, task)
    hits = [p for p, over in matching_overrides(sec, cell.item, f"{cell.arch}-{cell.method}") if holds(over)]
    variant = cell.method.partition("-")[2]
    if hits:
        where = f"tasks.{task}.overrides[{hits[-1]!r}]"
    elif variant and holds((sec.get("variants") or {}).get(variant)):
        where = f"tasks.{task}.variants.{variant}"
    else:
        where, t = "", task
        while t and not where:
            where = f"tasks.{t}.settings" if holds(task_section(config, t).get("settings")) else ""
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


def validate_config(config: dict) -> WorkflowConfig:
    """The typed config; every problem raises ConfigError naming the key, the value and what is allowed.
    Cells are all checked before raising, so one message lists every cell that is wrong (grouped by problem)."""
    cfg = validate(WorkflowConfig, config)
    problems: dict[str, list[str]] = {}  # message -> the cells it applies to
    for task in TASKS:
        section = getattr(cfg.tasks, task)
        if section is None or not section.enabled:
            continue
        if section.settings_from is not None and getattr(cfg.tasks, section.settings_from, None) is None:
            raise ConfigError(
                f"tasks.{task}.settings_from={section.settings_from!r} is not a configured task; "
                f"configured: {[t for t in TASKS if getattr(cfg.tasks, t) is not None]}"
            )
        _check_overrides(section, task)
        model = TASKS[task].cell
        validated: dict = {}
        failed = False
        for group in [None] + sorted(section.grids):
            try:
                cells = list(enumerate_cells(config, task, group))
            except ConfigError as exc:  # a method or variant the grid names that does not exist
                where = f"tasks.{task}{f'.grids.{group}' if group else ''}"
                raise ConfigError(str(exc) if str(exc).startswith("tasks.") else f"{where}: {exc}") from None
            for cell in cells:
                try:
                    m = validate(model, resolve_settings(config, cell), context=section.cell_context(cell.item))
                except ConfigError as exc:
                    problems.setdefault(f"{exc}{_origin(config, task, cell, str(exc))}", []).append(cell.id)
                    failed = True
                    continue
                validated.setdefault(group, []).append(m)
        if failed:
            continue  # the task-wide rules below assume valid cells
        try:
            section.check_cells(validated)
        except ValueError as exc:
            raise ConfigError(f"tasks.{task}.{exc}") from None
    if problems:
        raise ConfigError(_cell_problems(problems))
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
