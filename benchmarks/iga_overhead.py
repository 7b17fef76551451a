"""Time per training iteration of IGA vs vanilla on image fitting; prints the ratio IGA/vanilla.

    python benchmarks/iga_overhead.py [--sizes 192x128:8,768x512:32] [--iters 30] [--archs ReLU,PE,SIREN]

Goal (issue "Core"): ratio <= 1.10 on CPU at 192x128 (8x8 patches, 384 groups) and 768x512 (32x32).
Each configuration runs the real trainer step (forward, adjuster loss, backward, Adam step) on a
synthetic image; the median over iterations after a warm-up is reported, with the device.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from iga.adjust import build_adjuster
from iga.configs import AdjusterConfig, ModelConfig
from iga.grouping import patch_groups
from iga.models import build_model
from iga.tasks.image import coordinate_grid


class Setup:
    """One model + optimiser + adjuster on a synthetic image; ``step()`` returns its seconds."""

    def __init__(self, arch: str, h: int, w: int, patch: int, adjuster: AdjusterConfig, device: torch.device):
        torch.manual_seed(0)
        self.device = device
        self.model = build_model(ModelConfig(architecture=arch)).to(device)
        groups = patch_groups(h, w, patch)
        self.coords = coordinate_grid(h, w).reshape(-1, 2)[groups].to(device)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        img = torch.stack([torch.sin(40 * xx * yy), torch.cos(25 * xx), torch.sin(30 * yy)], -1) * 0.5 + 0.5
        self.target = img.reshape(-1, 3)[groups].to(device)
        self.adj = build_adjuster(adjuster, torch.Generator().manual_seed(0))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.G, self.P = groups.shape

    def step(self) -> float:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        out = self.model(self.coords.reshape(self.G * self.P, 2)).reshape(self.G, self.P, 3)
        loss = self.adj.loss(self.model, self.coords, out, self.target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        sync()
        return time.perf_counter() - t0


def compare(setups: dict, iters: int, warmup: int = 3) -> dict:
    """Median s/it of each setup; steps are interleaved so background load hits all alike."""
    times = {k: [] for k in setups}
    for i in range(iters + warmup):
        for k, s in setups.items():
            t = s.step()
            if i >= warmup:
                times[k].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="192x128:8", help="WxH:patch,… (e.g. 192x128:8,768x512:32)")
    ap.add_argument("--archs", default="ReLU,PE,SIREN")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--end", type=int, default=20)
    ap.add_argument("--quirk", action="store_true", help="also time the official indexing quirk")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(
        f"{'size':>10} {'groups':>6} {'arch':>6} {'vanilla s/it':>13} {'IGA s/it':>9} {'ratio':>6}"
        + (f" {'quirk s/it':>10} {'ratio':>6}" if args.quirk else "")
    )
    for spec in args.sizes.split(","):
        size, patch = spec.split(":")
        w, h = map(int, size.split("x"))
        patch = int(patch)
        groups = (h // patch) * (w // patch)
        for arch in args.archs.split(","):
            setups = {
                "vanilla": Setup(arch, h, w, patch, AdjusterConfig(kind="vanilla"), device),
                "iga": Setup(arch, h, w, patch, AdjusterConfig(kind="iga", end=args.end), device),
            }
            t = compare(setups, args.iters)
            line = (
                f"{size:>10} {groups:>6} {arch:>6} {t['vanilla']:13.4f} {t['iga']:9.4f} {t['iga'] / t['vanilla']:6.2f}"
            )
            if args.quirk:
                setups = {
                    "vanilla": setups["vanilla"],
                    "quirk": Setup(
                        arch,
                        h,
                        w,
                        patch,
                        AdjusterConfig(kind="iga", end=args.end, official_indexing_quirk=True),
                        device,
                    ),
                }
                q = compare(setups, max(3, args.iters // 4), warmup=1)
                line += f" {q['quirk']:10.4f} {q['quirk'] / q['vanilla']:6.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
