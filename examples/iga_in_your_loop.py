"""Use IGA in your own training loop: a plain PyTorch MLP fitting a 1D signal with high frequencies.

Nothing here comes from the workflow: your model, your data, your optimiser. IGA needs three things
from you: the inputs and targets cut into groups of nearby points (``[groups, points, features]``), a
batch of outputs in the same shape, and an ``IGAAdjuster`` whose loss replaces the MSE. The adjuster
samples the largest-residual point of each group, builds the eNTK of those points, balances its top
``end`` eigenvalues and mixes the residuals with the resulting S (paper eqs. 4-5, official-code form).

    python examples/iga_in_your_loop.py            # prints the final MSE of plain Adam and of Adam + IGA
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from iga.adjust import IGAAdjuster, mse
from iga.configs import AdjusterConfig
from iga.grouping import interval_groups


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))


def fit(use_iga: bool, steps: int, seed: int = 0) -> float:
    x = torch.linspace(-1, 1, 512).unsqueeze(1)
    y = sum(torch.sin(2 * math.pi * k * x) for k in (1, 4, 12)) / 3
    groups = interval_groups(len(x), 8)  # 64 groups of 8 neighbouring points
    gx, gy = x[groups], y[groups]  # [64, 8, 1] each
    model = make_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Adam: pull the 8 largest eigenvalues down to λ_8 (target "end"); one adjuster per run
    adjuster = IGAAdjuster(AdjusterConfig(kind="iga", end=8, target="end", sampling="slr"))
    for _ in range(steps):
        out = model(gx.reshape(-1, 1)).reshape(gy.shape)
        loss = adjuster.loss(model, gx, out, gy) if use_iga else mse(out, gy)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(mse(model(x), y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="Adam steps for each of the two runs")
    args = parser.parse_args()
    vanilla, iga = fit(False, args.steps), fit(True, args.steps)
    print(f"final MSE after {args.steps} steps: Adam {vanilla:.3e}, Adam + IGA {iga:.3e}")


if __name__ == "__main__":
    main()
