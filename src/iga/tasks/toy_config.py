"""Settings of the toy studies (paper section 5, appendix C) and their validation.

Kept free of torch so that ``iga.workflow_config.validate_config`` (run by Snakemake before any job) can
check every toy cell cheaply. The task itself lives in :mod:`iga.tasks.toy`.

Conventions (see config.yaml, ``tasks.toy``):

* ``task.experiment`` — ``exp1`` (2-layer ReLU on the circle, SGD, exact NTK vs eNTK vs IGA) or
  ``exp2`` (ReLU/SIREN coordinate MLP on [-1, 1], Adam, IGA group sizes).
* ``adjuster.end`` is 0-based and exclusive (iga.ntk.transformation_matrix). The paper's ``end`` is
  the number of balanced eigenvalues: with ``target: start`` (Exp. 1) it equals ``adjuster.end``;
  with ``target: end`` (Exp. 2, λ_end itself is one of the balanced values) it is ``adjuster.end + 1``
  (official code: ``--xuhao 3 --replace_end 3`` is the paper's end 4).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from ..configs import AdjusterConfig, CellSettings, ModelConfig, Strict, TaskSection, register_task, validate


class ToyTaskConfig(Strict):
    experiment: Literal["exp1", "exp2"] = "exp1"
    # exp1: θ = linspace(0, 2π, n) (official, endpoint included); exp2: x = linspace(-1, 1, n)
    n_points: int = Field(1024, ge=1)
    # components sin(2π·k·t) of the target; exp1 k ∈ {0.2, 0.4, 0.8, 1.6} (= sin(0.4πθ) … sin(3.2πθ))
    freqs: list[Annotated[float, Field(gt=0)]] = Field([0.2, 0.4, 0.8, 1.6], min_length=1)
    # consecutive points per IGA group; 1 = full eNTK (and the exact NTK)
    group_size: int = Field(1, ge=1)
    # Δ_k, MSE (and for exp1 the kernel distances) are evaluated every `eval_every` steps and at step 0
    eval_every: int = Field(100, ge=1)
    # keep the full residual vector at every evaluation (exp1: NTK-vs-eNTK trajectory distance)
    save_residuals: bool = False
    # exp1: at every evaluation, ‖K̃−K‖_F/‖K‖_F and ‖S̃−S‖_F/‖S‖_F of the trained net (eNTK/IGA cells)
    kernel_monitor: bool = False
    # exp1 with kernel_monitor: the same distances at initialisation averaged over this many extra
    # random networks of the cell's width (a low-noise width trend without training more cells)
    init_samples: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _groups_divide(self):
        if self.n_points % self.group_size:
            raise ValueError(f"task.group_size={self.group_size} must divide task.n_points={self.n_points}")
        return self


class TwoLayerConfig(Strict):
    """f(x) = s · Σ_r a_r relu(w_rᵀx + b_r): w ~ N(0, I), b = 0 (both trained), a = ±1 fixed.

    ``scale: "2m"`` — s = (2m)^-1/2, the official code (ReLU(z/√2)/√m) and exactly the kernel of
    iga.ntk.analytic_relu_ntk; ``"m"`` — s = m^-1/2, whose eNTK is twice that kernel (S unchanged).
    """

    architecture: Literal["TwoLayer"] = "TwoLayer"
    in_features: Literal[2] = 2  # exp1 lives on the circle
    hidden_features: int = Field(1024, ge=1)
    scale: Literal["2m", "m"] = "2m"
    technique: Literal["none"] = "none"  # set by every method's defaults (iga.cells.METHOD_DEFAULTS)


class ToyCellSettings(CellSettings):
    task: ToyTaskConfig = ToyTaskConfig()
    model: Annotated[TwoLayerConfig | ModelConfig, Field(discriminator="architecture")] = TwoLayerConfig()

    @model_validator(mode="after")
    def _experiment_rules(self):
        adj, task, model = self.adjuster, self.task, self.model
        if (task.experiment == "exp1") != isinstance(model, TwoLayerConfig):
            raise ValueError(
                f"{task.experiment} needs architecture "
                f"{'TwoLayer' if task.experiment == 'exp1' else 'ReLU, PE or SIREN'}, "
                f"not {model.architecture}"
            )
        if task.experiment == "exp2":
            if model.in_features != 1 or model.out_features != 1:
                raise ValueError("exp2 regresses a 1D signal: model.in_features and model.out_features must be 1")
            if adj.kind == "ntk":
                raise ValueError("adjuster.kind='ntk' needs the analytic kernel of the 2-layer net: exp1 only")
        if adj.kind in ("ntk", "entk") and task.group_size != 1:
            raise ValueError(
                f"adjuster.kind={adj.kind!r} adjusts with the kernel of every point: "
                f"task.group_size must be 1, not {task.group_size}"
            )
        adj.check_groups(task.n_points // task.group_size, f"n_points={task.n_points}, group_size={task.group_size}")
        return self


def validate_cell(settings: dict) -> ToyCellSettings:
    return validate(ToyCellSettings, settings)


class ToyFigures(Strict):
    fig1_widths: list[int] = []
    fig1_end: int = Field(15, ge=1)
    fig2_group_size: int = Field(8, ge=1)
    fig3_component: int = Field(4, ge=1)


class ToySection(TaskSection):
    TABLE_GRIDS: ClassVar[tuple[str, ...]] = ("exp1", "exp2")  # the experiments are its grids
    dataset: Literal["synthetic"] = "synthetic"  # the signals are generated (eqs. 8, 9)
    figures: ToyFigures = ToyFigures()

    def check_cells(self, cells: dict) -> None:
        """The figure knobs name values the experiments' cells have (the figures would pick others)."""
        f, exp1, exp2 = self.figures, cells.get("exp1", []), cells.get("exp2", [])
        iga1 = [c for c in exp1 if c.adjuster.kind != "vanilla"]
        iga2 = [c for c in exp2 if c.adjuster.kind == "iga"]
        checks = [
            ("fig1_widths", f.fig1_widths, sorted({c.model.hidden_features for c in exp1}), bool(exp1)),
            (
                "fig1_end",
                [f.fig1_end],
                sorted({balanced_eigenvalues(c.adjuster.model_dump()) for c in iga1}),
                "fig1_end" in f.model_fields_set and bool(iga1),
            ),
            (
                "fig2_group_size",
                [f.fig2_group_size],
                sorted({c.task.group_size for c in iga2}),
                "fig2_group_size" in f.model_fields_set and bool(iga2),
            ),
        ]
        for key, given, allowed, applies in checks:
            bad = [v for v in given if v not in allowed]
            if applies and bad:
                raise ValueError(f"figures.{key}={getattr(f, key)}: {bad} not among the cells' values {allowed}")
        n_freqs = min((len(c.task.freqs) for c in exp2), default=None)
        if n_freqs is not None and f.fig3_component > n_freqs:
            raise ValueError(
                f"figures.fig3_component={f.fig3_component}: the signal has {n_freqs} components (1..{n_freqs})"
            )

    def known_items(self) -> list[str]:
        # items are exp1_w{width}_s{seed} / exp2_s{seed}: the paper's (config.yaml) and this run's
        seeds = {16, 32} | {
            int(i.rsplit("_s", 1)[1])
            for g in self.grids.values()
            for i in (g.items or [])
            if i.rsplit("_s", 1)[-1].isdigit()
        }
        widths = [2**k for k in range(4, 16)]
        return sorted(
            {f"exp1_w{w}_s{s}" for w in widths for s in seeds}
            | {f"exp2_s{s}" for s in seeds}
            | {i for g in self.grids.values() for i in (g.items or [])}
        )


register_task("toy", ToySection, ToyCellSettings)


def balanced_eigenvalues(adj: dict) -> int:
    """The paper's ``end``: how many of the largest eigenvalues the adjustment makes equal."""
    end = int(adj.get("end", AdjusterConfig.model_fields["end"].default))
    start = int(adj.get("start", 0))
    return end - start + (1 if adj.get("target", AdjusterConfig.model_fields["target"].default) == "end" else 0)
