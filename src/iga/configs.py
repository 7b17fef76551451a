"""Typed settings: the one declaration of every knob's name, type, default and allowed values.

Shared pieces of a cell's settings (model, adjuster, optimiser, training) are pydantic models here;
each task declares its own cell-settings model on top of :class:`CellSettings` and registers it with
:func:`register_task` (see ``iga/tasks/*_config.py``, ``iga/nerf/cell_settings.py``). Validation is
strict: unknown keys, strings where numbers belong and values outside the allowed ones raise
:class:`ConfigError` with the key path, the value and what is allowed. Torch-free, so that
``snakemake -n`` validates every cell of the paper grid quickly.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

ARCHITECTURES = ("ReLU", "PE", "SIREN")
SAMPLINGS = ("slr", "rsi", "ri", "centre")
# torch device strings a setting may name ("auto": CUDA when present, else CPU)
DEVICE_RE = r"^(auto|cpu|cuda|cuda:\d+|mps)$"


class ConfigError(ValueError):
    """A setting that cannot work; the message names the value and what is allowed."""


class Strict(BaseModel):
    """No unknown keys, no silent type coercion (a YAML string never becomes a number)."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


def _models_in(ann: Any) -> list[type]:
    return [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]


def _walk(cls: Any, loc: tuple) -> tuple:
    """(dotted key path, the model holding the last key) for a pydantic error location.

    Union members appear in locations by their tag ("model.TwoLayer.depth"); they are not keys the
    user wrote, so they are dropped from the path.
    """
    parts: list[str] = []
    here: Any = cls  # a model class, a list of union members, ("dict", value model) or None
    for part in loc:
        fields = getattr(here, "model_fields", None) if isinstance(here, type) else None
        if fields and part in fields:
            parts.append(str(part))
            ann = fields[part].annotation
            members = _models_in(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                here = ann
            elif get_origin(ann) is dict:
                here = ("dict", members[0] if members else None)
            else:
                here = members[0] if len(members) == 1 else (members or None)
        elif isinstance(here, list):  # a union: the member named by the location's tag
            here = next(
                (
                    m
                    for m in here
                    if part == m.model_fields.get("architecture", FieldInfo()).default or part == m.__name__
                ),
                None,
            )
        elif isinstance(here, tuple):  # a dict's key, then its value's model
            parts.append(str(part))
            here = here[1]
        else:
            parts.append(str(part))
            here = None
    return ".".join(parts), here


def _describe(cls: Any, err: dict, prefix: str) -> str:
    loc = tuple(err["loc"])
    path = prefix + _walk(cls, loc)[0]
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        parent = _walk(cls, loc[:-1])[1]
        allowed = sorted(parent.model_fields) if isinstance(parent, type) else []
        return f"unknown key {path!r}; allowed: {allowed}"
    msg = err["msg"].removeprefix("Value error, ")
    if not path:
        text = msg
    elif isinstance(value, (dict, list)) and err["type"] == "value_error":  # a rule over a whole section
        text = f"{path}: {msg}"
    else:
        text = f"{path}={value!r}: {msg}"
    if isinstance(value, str) and err["type"] in ("float_type", "int_type", "float_parsing", "int_parsing"):
        text += _number_as_text_hint(value)
    return text


def _number_as_text_hint(value: str) -> str:
    """Why a number arrived as text: YAML 1.1's float syntax (``1e-3``), or quotes around it."""
    try:
        float(value)
    except ValueError:
        return ""  # a word, not a number
    import yaml

    if isinstance(yaml.safe_load(value), str):
        return f" (YAML 1.1 reads {value} as text; write it with a dot and a signed exponent, e.g. 1.0e-3)"
    return f" (the number {value} is quoted: write it without quotes)"


def validate(cls: type[BaseModel], data: Any, prefix: str = "", context: dict | None = None):
    """``cls`` validated from ``data``; any problem raises one ConfigError naming every bad key."""
    try:
        return cls.model_validate({} if data is None else data, context=context)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(cls, e, prefix) for e in exc.errors())) from None


def _seed_list(v: list[int] | None) -> list[int] | None:
    if v is None:
        return v
    if not v:
        raise ValueError("must list at least one seed (or leave seeds out and set seed)")
    if any(s < 0 for s in v):
        raise ValueError("seeds must be >= 0 (a seed names the cell's folder s<seed>)")
    if len(set(v)) != len(v):
        raise ValueError(f"seeds must be unique; repeated: {sorted({s for s in v if v.count(s) > 1})}")
    return v


# replicates of one configuration: one cell per seed (iga.cells.enumerate_cells); None = just `seed`
Seeds = Annotated[list[int] | None, AfterValidator(_seed_list)]


class _SeedList(Strict):
    seeds: Seeds = None


def check_seeds(value: Any, path: str) -> list[int]:
    """``value`` as a list of seeds (unique, non-empty, integers >= 0); else a ConfigError naming ``path``."""
    try:
        return _SeedList.model_validate({"seeds": value}).seeds
    except ValidationError as exc:
        shown = value[0] if path.endswith(".seed") and isinstance(value, list) and len(value) == 1 else value
        raise ConfigError(f"{path}={shown!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


class FRConfig(Strict):
    """Fourier reparameterisation W = Λ·B of hidden layers (Shi et al. 2024)."""

    low_freqs: int = Field(128, ge=1)
    high_freqs: int = Field(128, ge=0)
    phases: int = Field(32, ge=1)
    alpha: float = Field(1e-3, gt=0)


class ModelConfig(Strict):
    architecture: Literal["ReLU", "PE", "SIREN"] = "ReLU"
    in_features: int = Field(2, ge=1)
    out_features: int = Field(3, ge=1)
    hidden_features: int = Field(256, ge=1)
    # hidden→hidden layers; the official code's 2 gives 4 linear layers in total
    hidden_layers: int = Field(2, ge=0)
    first_omega0: float = Field(30.0, gt=0)
    hidden_omega0: float = Field(30.0, gt=0)
    pe_frequencies: int = Field(6, ge=1)
    pe_include_input: bool = True
    # the training technique that changes the network
    technique: Literal["none", "fr", "bn"] = "none"
    fr: FRConfig = FRConfig()
    bn_placement: Literal["linear_act_bn", "linear_bn_act", "sine_bn"] | None = None

    @model_validator(mode="after")
    def _bn_placement_fits(self):
        if self.technique == "bn" and self.bn_placement is None:  # the official layouts
            self.bn_placement = {"SIREN": "sine_bn", "PE": "linear_bn_act"}.get(self.architecture, "linear_act_bn")
        if self.technique == "bn" and (self.bn_placement == "sine_bn") != (self.architecture == "SIREN"):
            raise ValueError(
                f"bn_placement {self.bn_placement!r} does not fit architecture {self.architecture}; "
                "SIREN uses 'sine_bn', ReLU/PE use 'linear_act_bn' or 'linear_bn_act'"
            )
        return self


Solver = Literal["eigh", "topk", "auto"]  # how IGA's eigenpairs are computed (iga.ntk); NeRF uses it too


class AdjusterConfig(Strict):
    """How gradients are adjusted. kind="vanilla" ignores everything else."""

    kind: Literal["vanilla", "iga", "entk", "ntk"] = "vanilla"
    # 0-based, exclusive: the top `end` eigenvalues are balanced (iga.ntk.transformation_matrix)
    end: int = Field(20, ge=1)
    start: int = Field(0, ge=0)
    # "end": Adam, pull the top `end` eigenvalues down to λ_end; "start": SGD, lift them to λ_start
    target: Literal["start", "end"] = "end"
    # "official": directions outside [start, end) weigh 1; "paper": weigh λ_i (eq. 5 as printed)
    variant: Literal["official", "paper"] = "official"
    sampling: Literal["slr", "rsi", "ri", "centre"] = "slr"
    # the official image code's indexing: every group's sample is the sum over all groups' argmax positions
    official_indexing_quirk: bool = False
    # eigenpairs of the eNTK: "eigh" all of them (dense), "topk" only the top end+1 (warm-started block
    # Lanczos, falls back to eigh per step if it does not converge), "auto": topk from
    # iga.ntk.AUTO_TOPK_MIN_GROUPS groups on. S agrees with eigh's within ~1e-5 (relative, S − I).
    solver: Solver = "auto"

    @model_validator(mode="after")
    def _start_below_end(self):
        if self.start >= self.end:
            raise ValueError(f"start={self.start} must satisfy 0 <= start < end={self.end}")
        return self

    def check_groups(self, groups: int, what: str) -> None:
        """``end`` must leave λ_end (Adam) or at least one direction (SGD) among ``groups`` eigenvalues."""
        if self.kind == "vanilla":
            return
        limit = groups - 1 if self.target == "end" else groups
        if not 1 <= self.end <= limit:
            allowed = f"1..{limit}" if limit >= 1 else "none: too few groups for IGA"
            raise ValueError(f"adjuster.end={self.end} does not fit {groups} groups ({what}); allowed: {allowed}")


class OptimConfig(Strict):
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    schedule: Literal["constant", "step", "exponential"] = "constant"
    # step: lr × gamma once at each multiple of step_size (official image code: once at 3000)
    step_size: int = Field(3000, ge=1)
    gamma: float = Field(0.1, gt=0)
    max_steps_of_schedule: int | None = Field(None, ge=1)  # official: the scheduler stops after 3100 steps
    # exponential: lr(t) = lr · final_factor^(t / total)
    final_factor: float = Field(0.1, gt=0)


class TrainConfig(Strict):
    iterations: int = Field(1000, ge=1)
    seed: int = Field(4096, ge=0)
    seeds: Seeds = None  # several seeds: one cell (replicate) each, seed = each in turn
    checkpoint_every: int = Field(500, ge=0)  # 0: never (tests)
    log_every: int = Field(1, ge=1)
    device: str = Field("auto", pattern=DEVICE_RE, description="auto | cpu | cuda | cuda:N | mps")
    dtype: Literal["float32", "float64"] = "float32"
    progress: bool = True


class CellSettings(Strict):
    """A cell's resolved settings; each task subclasses it (its own ``task`` model and rules)."""

    model: ModelConfig = ModelConfig()
    adjuster: AdjusterConfig = AdjusterConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()


class TaskSection(Strict):
    """A task's block of the workflow config (``tasks.<task>``); tasks subclass it for their extra keys."""

    NAME_PATTERN: ClassVar[str] = r"^[A-Za-z0-9_.]+$"  # items, architectures, variants: no path tricks
    # the named grids a task's tables read (ablations, toy), and those every config must give; any other
    # grid's cells would train and appear in no table
    TABLE_GRIDS: ClassVar[tuple[str, ...]] = ()
    REQUIRED_GRIDS: ClassVar[tuple[str, ...]] = ()

    enabled: bool = True  # a task section that is written is on unless it says otherwise
    dataset: str = ""
    scale_note: str | None = None
    items: list[str] = []
    architectures: list[str] = []
    methods: list[str] = []
    settings: dict[str, Any] = {}  # validated per cell by the task's CellSettings model
    settings_from: str | None = None  # another task whose settings these start from (one copy, no drift)
    variants: dict[str, dict[str, Any]] = {}
    overrides: dict[str, dict[str, Any] | None] = {}
    grids: dict[str, Grid] = {}

    @field_validator("items", "architectures")
    @classmethod
    def _names(cls, v):
        bad = [x for x in v if not re.match(cls.NAME_PATTERN, x)]
        if bad:
            raise ValueError(f"{bad} must match {cls.NAME_PATTERN} (letters, digits, _ and .)")
        return v

    @field_validator("grids")
    @classmethod
    def _grids_feed_tables(cls, v):
        if v and not cls.TABLE_GRIDS:
            raise ValueError(
                f"named grids {sorted(v)}: no table of this task reads them (its tables use items/"
                "architectures/methods); grids are for tasks.image_ablation and tasks.toy"
            )
        unknown = sorted(set(v) - set(cls.TABLE_GRIDS))
        if unknown:
            raise ValueError(f"grids {unknown}: no table reads them; allowed: {list(cls.TABLE_GRIDS)}")
        missing = [g for g in cls.REQUIRED_GRIDS if g not in v]
        if missing:
            raise ValueError(
                f"grids lacks {missing} (needs {list(cls.REQUIRED_GRIDS)}; each {{items?, architectures?, methods}}; "
                "an empty one, methods: [], writes no table)"
            )
        return v

    @field_validator("methods")
    @classmethod
    def _method_names(cls, v):
        bad = [x for x in v if not re.match(r"^[A-Za-z]+(-[A-Za-z0-9_.]+)?$", x)]
        if bad:
            raise ValueError(f"{bad} must be METHOD or METHOD-VARIANT (e.g. IGA, IGA-RSI)")
        return v

    def cell_context(self, item: str) -> dict:
        """What a cell's cross-field rules need to know about its item (image size, …)."""
        return {}

    def check_cells(self, cells: dict) -> None:
        """Rules over the task's validated cells ({grid name or None: [cell settings model]}), e.g. a
        figure knob that must name a value some cell has; raise ValueError (tasks.<task> is prefixed)."""

    def all_items(self) -> list[str]:
        """The items of the task and of its named grids: each is checked against the dataset."""
        return list(dict.fromkeys(self.items + [i for g in self.grids.values() for i in g.items or []]))

    def all_architectures(self) -> list[str]:
        return list(dict.fromkeys(self.architectures + [a for g in self.grids.values() for a in g.architectures or []]))

    def known_items(self) -> list[str]:
        """Items an override pattern may name (beyond those in this run's grid)."""
        return []


class Grid(Strict):
    """A named sub-grid (ablations, toy experiments); a missing list falls back to the task's."""

    items: list[str] | None = None
    architectures: list[str] | None = None
    methods: list[str] | None = None

    @field_validator("items", "architectures")
    @classmethod
    def _names(cls, v):
        return v if v is None else TaskSection._names(v)

    @field_validator("methods")
    @classmethod
    def _method_names(cls, v):
        return v if v is None else TaskSection._method_names(v)


TaskSection.model_rebuild()


class TaskSpec:
    """What a task registers: its section model and its cells' settings model."""

    def __init__(self, name: str, section: type[TaskSection], cell: type[BaseModel]):
        self.name, self.section, self.cell = name, section, cell


TASKS: dict[str, TaskSpec] = {}


def register_task(name: str, section: type[TaskSection], cell: type[BaseModel]) -> None:
    TASKS[name] = TaskSpec(name, section, cell)
