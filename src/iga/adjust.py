"""Gradient adjusters: one interface for every task and for the nerfstudio plugin.

An adjuster turns a grouped batch into a loss whose gradient is the (adjusted) update
direction. It sees only the model, grouped inputs ``[G, P, in]`` and grouped outputs and
targets ``[G, P, O]``; it knows nothing about images, voxels or rays.

* :class:`VanillaAdjuster` — plain MSE (S = I).
* :class:`IGAAdjuster` — sample one point per group, eNTK of the samples, S from it,
  residuals mixed across groups (eq. 4). With group size 1 it is the full eNTK adjustment.
* :class:`FixedKernelAdjuster` — S from a given kernel, e.g. the exact NTK of toy Exp. 1.
"""

from __future__ import annotations

import torch
from torch import nn

from .configs import SAMPLINGS, AdjusterConfig, ConfigError
from .ntk import TopkEigensolver, entk, grouped_entk, transformation_matrix


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((outputs - targets) ** 2).mean()


def surrogate_loss(outputs: torch.Tensor, targets: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Loss whose gradient is (2/numel)·Σ_ij S_ij Jᵢᵀ r_j: residuals [G, P, O] mixed across groups.

    With S = I its gradient equals that of the MSE mean.
    """
    r = (outputs - targets).detach()
    mixed = torch.einsum("ij,jkl->ikl", S.to(r.dtype), r)
    return 2.0 * (outputs * mixed).sum() / mixed.numel()


class GroupSampler:
    """Which point of each group enters the eNTK.

    slr: largest |residual| summed over channels (official); centre: the middle point;
    rsi: random once, then fixed; ri: random at every step.
    """

    def __init__(self, strategy: str, generator: torch.Generator | None = None):
        if strategy not in SAMPLINGS:
            raise ConfigError(f"sampling={strategy!r} is not allowed; choose one of {list(SAMPLINGS)}")
        self.strategy = strategy
        self.generator = generator
        self.fixed: torch.Tensor | None = None

    def select(self, residual: torch.Tensor) -> torch.Tensor:
        G, P = residual.shape[:2]
        if self.strategy == "slr":
            return residual.abs().sum(dim=-1).argmax(dim=1)
        if self.strategy == "centre":
            return torch.full((G,), P // 2, dtype=torch.long, device=residual.device)
        if self.strategy == "rsi":
            if self.fixed is None or self.fixed.shape[0] != G:
                self.fixed = torch.randint(P, (G,), generator=self.generator).to(residual.device)
            return self.fixed
        return torch.randint(P, (G,), generator=self.generator).to(residual.device)

    def state_dict(self) -> dict:
        return {"fixed": self.fixed}

    def load_state_dict(self, state: dict) -> None:
        self.fixed = state.get("fixed")


class GradientAdjuster:
    name = "base"

    def loss(
        self, model: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def stats(self) -> dict:
        """Run statistics for the cell's record (e.g. eigensolver fallbacks); empty if none."""
        return {}


class VanillaAdjuster(GradientAdjuster):
    name = "vanilla"

    def loss(self, model, inputs, outputs, targets):
        return mse(outputs, targets)


class IGAAdjuster(GradientAdjuster):
    """Inductive gradient adjustment (paper eqs. 4-5; official-code defaults)."""

    name = "iga"

    def __init__(self, cfg: AdjusterConfig, generator: torch.Generator | None = None):
        self.cfg = cfg
        self.sampler = GroupSampler(cfg.sampling, generator)
        self.eigensolver = TopkEigensolver()  # warm start + counts across this run's steps

    def transformation(self, model: nn.Module, sampled_inputs: torch.Tensor) -> torch.Tensor:
        """S from the eNTK of one sampled input per group ([G, in]; [G, k, in] sums k points)."""
        K = grouped_entk(model, sampled_inputs) if sampled_inputs.dim() == 3 else entk(model, sampled_inputs)
        return transformation_matrix(
            K, self.cfg.end, self.cfg.target, self.cfg.start, self.cfg.variant, self.cfg.solver, self.eigensolver
        )

    def sample(self, inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        idx = self.sampler.select((outputs - targets).detach())
        if self.cfg.official_indexing_quirk:
            # official image code: inputs[:, idx] takes every group's argmax position in every group
            return inputs[:, idx, :]
        return inputs[torch.arange(inputs.shape[0], device=inputs.device), idx]

    def loss(self, model, inputs, outputs, targets):
        G = inputs.shape[0]
        if self.cfg.end >= G + (self.cfg.target != "end"):
            raise ConfigError(
                f"end={self.cfg.end} must be smaller than the number of groups G={G}"
                f" (allowed: 1..{G - 1 if self.cfg.target == 'end' else G})"
            )
        S = self.transformation(model, self.sample(inputs, outputs, targets))
        return surrogate_loss(outputs, targets, S)

    def state_dict(self):
        # the counts survive a resume; the warm-start basis need not (a cold start only costs iterations)
        return {"sampler": self.sampler.state_dict(), "eigensolver_counts": dict(self.eigensolver.counts)}

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state.get("sampler", {}))
        self.eigensolver.counts.update(state.get("eigensolver_counts", {}))

    def stats(self):
        return {"eigensolver": self.cfg.solver, **self.eigensolver.stats()}


class FixedKernelAdjuster(GradientAdjuster):
    """S computed once from a given kernel over all points (groups of size 1), e.g. the exact NTK."""

    name = "ntk"

    def __init__(self, cfg: AdjusterConfig, kernel: torch.Tensor):
        self.solver, self.eigensolver = cfg.solver, TopkEigensolver()
        self.S = transformation_matrix(
            kernel, cfg.end, cfg.target, cfg.start, cfg.variant, cfg.solver, self.eigensolver
        )

    def stats(self):
        return {"eigensolver": self.solver, **self.eigensolver.stats()}

    def loss(self, model, inputs, outputs, targets):
        if outputs.shape[0] != self.S.shape[0]:
            raise ConfigError(
                f"the fixed kernel covers {self.S.shape[0]} points but the batch has "
                f"{outputs.shape[0]} groups; use group_size=1 over all points"
            )
        return surrogate_loss(outputs, targets, self.S.to(outputs.device))


def build_adjuster(
    cfg: AdjusterConfig, generator: torch.Generator | None = None, kernel: torch.Tensor | None = None
) -> GradientAdjuster:
    if cfg.kind == "vanilla":
        return VanillaAdjuster()
    if cfg.kind in ("iga", "entk"):
        return IGAAdjuster(cfg, generator)
    if cfg.kind == "ntk":
        if kernel is None:
            raise ConfigError("adjuster kind 'ntk' needs an analytic kernel (iga.ntk.analytic_relu_ntk)")
        return FixedKernelAdjuster(cfg, kernel)
    raise ConfigError(f"adjuster kind={cfg.kind!r}; allowed: vanilla, iga, entk, ntk")
