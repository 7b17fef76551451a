"""IGA's per-iteration cost against the number of groups, dense ``eigh`` vs the top-k eigensolver.

    python benchmarks/iga_group_scaling.py                       # image 192x128 + toy cases
    python benchmarks/iga_group_scaling.py --image 768x512:32,768x512:16 --archs PE --iters 5
    python benchmarks/iga_group_scaling.py --solve-only          # eigh vs topk on the kernel alone

For each case the vanilla, IGA-eigh and IGA-topk steps (forward, adjuster loss, backward, optimiser
step) run interleaved in one process, so background load hits all three alike; the medians and the
ratios IGA/vanilla are printed, with the relative Frobenius error of S − I of topk against float64
eigh on the kernel of the last timed step. ``--solve-only`` times the decomposition alone on real
eNTKs across group counts (what ``iga.ntk.AUTO_TOPK_MIN_GROUPS`` is chosen from).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from iga_overhead import Setup, compare  # noqa: E402

from iga.cells import Cell, cell_seeds, resolve_settings  # noqa: E402
from iga.configs import AdjusterConfig, ModelConfig  # noqa: E402
from iga.models import build_model  # noqa: E402
from iga.ntk import TopkEigensolver, entk, transformation_matrix  # noqa: E402

END = {"ReLU": 25, "PE": 20, "SIREN": 20}  # config.yaml's image overrides


def s_error(K: torch.Tensor, end: int, es: TopkEigensolver, **kw) -> float:
    """‖S_topk − S_eigh64‖_F / ‖S_eigh64 − I‖_F on K, warm-started from the run's solver state."""
    ref = transformation_matrix(K.double(), end, solver="eigh", **kw)
    probe = TopkEigensolver()
    probe.basis = es.basis
    S = transformation_matrix(K, end, solver="topk", eigensolver=probe, **kw).double()
    eye = torch.eye(K.shape[0], dtype=torch.float64)
    return float(torch.linalg.norm(S - ref) / torch.linalg.norm(ref - eye))


def image_cases(args) -> None:
    print(
        f"{'size':>8} {'groups':>6} {'arch':>5} {'vanilla':>8} {'eigh':>8} {'topk':>8} "
        f"{'eigh/van':>8} {'topk/van':>8} {'S err':>8} {'topk its':>8} {'fallbk':>6}"
    )
    for spec in args.image.split(","):
        size, patch = spec.split(":")
        w, h = map(int, size.split("x"))
        patch = int(patch)
        groups = (h // patch) * (w // patch)
        for arch in args.archs.split(","):
            end = END[arch]
            setups = {
                k: Setup(arch, h, w, patch, cfg, args.device)
                for k, cfg in (
                    ("vanilla", AdjusterConfig(kind="vanilla")),
                    ("eigh", AdjusterConfig(kind="iga", end=end, solver="eigh")),
                    ("topk", AdjusterConfig(kind="iga", end=end, solver="topk")),
                )
            }
            t = compare(setups, args.iters)
            s = setups["topk"]
            out = s.model(s.coords.reshape(s.G * s.P, 2)).reshape(s.G, s.P, 3)
            K = entk(s.model, s.adj.sample(s.coords, out, s.target)).detach()
            st = s.adj.stats()
            err = s_error(K, end, s.adj.eigensolver)
            print(
                f"{size:>8} {groups:6d} {arch:>5} {t['vanilla']:8.4f} {t['eigh']:8.4f} {t['topk']:8.4f} "
                f"{t['eigh'] / t['vanilla']:8.2f} {t['topk'] / t['vanilla']:8.2f} {err:8.1e} "
                f"{st['eig_topk_mean_iterations']:8.1f} {st['eig_fallbacks']:6d}",
                flush=True,
            )


class ToyStep:
    """One toy cell (settings resolved from config.yaml as the workflow does) stepped by hand."""

    def __init__(self, item: str, arch: str, method: str, solver: str | None):
        from iga.tasks.toy import build_cell

        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        settings = copy.deepcopy(
            resolve_settings(config, Cell("toy", item, arch, method, cell_seeds(config, "toy", item, arch, method)[0]))
        )
        settings["task"].update(kernel_monitor=False, save_residuals=False)
        settings["train"].update(device="cpu")
        if solver:
            settings["adjuster"]["solver"] = solver
        self.model, task, self.adj, optim_cfg, *_ = build_cell(settings)
        self.batch = task.batch(0, torch.Generator().manual_seed(0))
        self.opt = (
            torch.optim.Adam(self.model.parameters(), lr=optim_cfg.lr)
            if optim_cfg.optimizer == "adam"
            else torch.optim.SGD(self.model.parameters(), lr=optim_cfg.lr)
        )

    def step(self) -> float:
        t0 = time.perf_counter()
        x, y = self.batch.inputs, self.batch.targets
        G, P = x.shape[:2]
        out = self.model(x.reshape(G * P, -1)).reshape(G, P, -1)
        loss = self.adj.loss(self.model, x, out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return time.perf_counter() - t0


TOY_CASES = [
    ("exp2_s16", "ReLU", "IGA-g1e8", "exp2_s16/ReLU-vanilla"),
    ("exp1_w1024_s16", "TwoLayer", "eNTK-e15", "exp1_w1024_s16/TwoLayer-vanilla"),
    ("exp1_w8192_s16", "TwoLayer", "eNTK-e15", "exp1_w8192_s16/TwoLayer-vanilla"),
]


def toy_cases(args) -> None:
    print(
        f"{'toy case':34s} {'n':>5} {'vanilla':>8} {'eigh':>8} {'topk':>8} {'eigh/topk':>9} {'S err':>8} "
        f"{'topk its':>8} {'fallbk':>6}"
    )
    for item, arch, method, vanilla in TOY_CASES:
        v_item, v_am = vanilla.split("/")
        v_arch, v_method = v_am.split("-", 1)
        steps = {
            "vanilla": ToyStep(v_item, v_arch, v_method, None),
            "eigh": ToyStep(item, arch, method, "eigh"),
            "topk": ToyStep(item, arch, method, "topk"),
        }
        t = compare(steps, args.toy_iters, warmup=2)
        s = steps["topk"]
        x = s.batch.inputs[:, 0]
        K = entk(s.model, x).detach()
        cfg = s.adj.cfg
        err = s_error(K, cfg.end, s.adj.eigensolver, target=cfg.target, start=cfg.start)
        st = s.adj.stats()
        print(
            f"{item + '/' + arch + '-' + method:34s} {x.shape[0]:5d} {t['vanilla']:8.4f} {t['eigh']:8.4f} "
            f"{t['topk']:8.4f} {t['eigh'] / t['topk']:9.1f} {err:8.1e} {st['eig_topk_mean_iterations']:8.1f} "
            f"{st['eig_fallbacks']:6d}",
            flush=True,
        )


def nerf_case(args) -> None:
    """The NeRF plugin's IGA at the paper's 1,024 rays (8x256 fine network): kernel + S per step, eigh vs topk.

    A NeRF step (ray marching, two networks) is not timed here; the adjustment alone is, on one
    maximum-weight point per ray (random points in the scene box, slightly moved each step), with the
    S error of topk against float64 eigh on the last step's kernel.
    """
    if importlib.util.find_spec("nerfstudio") is None:
        print("nerf: nerfstudio not installed, skipped")
        return
    from nerfstudio.data.scene_box import SceneBox

    from iga.nerf.model import NeRFAdjusterConfig, NeRFPytorchModelConfig

    print(
        f"{'nerf case':18s} {'rays':>5} {'kernel s':>8} {'eigh s':>8} {'topk s':>8} {'eigh/topk':>9} {'S err':>8} "
        f"{'topk its':>8} {'fallbk':>6}"
    )
    box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
    rays = 1024
    times: dict[str, list[float]] = {"kernel": [], "eigh": [], "topk": []}
    models = {}
    for solver in ("eigh", "topk"):
        torch.manual_seed(0)
        models[solver] = NeRFPytorchModelConfig(
            net_width=256,
            net_depth=8,
            num_coarse_samples=4,
            num_importance_samples=4,
            use_lpips=False,
            adjuster=NeRFAdjusterConfig(kind="iga", solver=solver),
        ).setup(scene_box=box, num_train_data=4)
    gen = torch.Generator().manual_seed(0)
    pts = torch.cat(
        [
            torch.rand(rays, 3, generator=gen) * 2 - 1,
            torch.nn.functional.normalize(torch.randn(rays, 3, generator=gen), dim=-1),
        ],
        1,
    )
    for i in range(args.iters + 2):
        pts = pts + 1e-3 * torch.randn(pts.shape, generator=gen)
        t0 = time.perf_counter()
        K = entk(models["topk"].iga_network(), pts).detach()
        tk = time.perf_counter() - t0
        for solver, model in models.items():
            t0 = time.perf_counter()
            model.iga_transformation(pts)
            if i >= 2:
                times[solver].append(time.perf_counter() - t0)
        if i >= 2:
            times["kernel"].append(tk)
    med = {k: statistics.median(v) for k, v in times.items()}
    es = models["topk"].adjuster.eigensolver
    err = s_error(K, models["topk"].config.adjuster.end, es)
    st = models["topk"].adjuster_stats()
    print(
        f"{'NeRF 8x256 fine':18s} {rays:5d} {med['kernel']:8.4f} {med['eigh']:8.4f} {med['topk']:8.4f} "
        f"{med['eigh'] / med['topk']:9.1f} {err:8.1e} {st['eig_topk_mean_iterations']:8.1f} "
        f"{st['eig_fallbacks']:6d}",
        flush=True,
    )


def solve_only(args) -> None:
    """The decomposition alone on real PE/SIREN eNTKs (one point per patch) across group counts."""
    print(f"{'arch':>5} {'groups':>6} {'eigh32 s':>9} {'topk cold s':>11} {'topk warm s':>11} {'warm its':>8}")
    for arch in args.archs.split(","):
        for n in (256, 384, 512, 768, 1024, 1536):
            torch.manual_seed(0)
            model = build_model(ModelConfig(architecture=arch))
            pts = torch.rand(n, 2) * 2 - 1
            K0 = entk(model, pts).detach()
            K1 = entk(model, pts + 1e-3 * torch.randn_like(pts)).detach()  # the next step's kernel, roughly
            end = END[arch]
            te, tc, tw, its = [], [], [], []
            for _ in range(args.iters // 4 + 2):
                t0 = time.perf_counter()
                transformation_matrix(K1, end, solver="eigh")
                te.append(time.perf_counter() - t0)
                es = TopkEigensolver()
                t0 = time.perf_counter()
                transformation_matrix(K0, end, solver="topk", eigensolver=es)
                tc.append(time.perf_counter() - t0)
                i0 = es.counts["iterations"]
                t0 = time.perf_counter()
                transformation_matrix(K1, end, solver="topk", eigensolver=es)
                tw.append(time.perf_counter() - t0)
                its.append(es.counts["iterations"] - i0)
            print(
                f"{arch:>5} {n:6d} {statistics.median(te):9.4f} {statistics.median(tc):11.4f} "
                f"{statistics.median(tw):11.4f} {statistics.median(its):8.1f}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="192x128:16,192x128:8,192x128:4", help="WxH:patch,… ('' to skip)")
    ap.add_argument("--archs", default="ReLU,PE,SIREN")
    ap.add_argument("--iters", type=int, default=12)
    ap.add_argument("--toy", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--toy-iters", type=int, default=6)
    ap.add_argument("--nerf", action=argparse.BooleanOptionalAction, default=True, help="NeRF plugin, 1,024 rays")
    ap.add_argument("--solve-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    args.device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"cpus={os.cpu_count()} loadavg_at_start={load}"
    )
    if args.solve_only:
        solve_only(args)
        return
    if args.image:
        image_cases(args)
    if args.toy:
        toy_cases(args)
    if args.nerf:
        nerf_case(args)
    print(f"loadavg_at_end={os.getloadavg() if hasattr(os, 'getloadavg') else None}")


if __name__ == "__main__":
    main()
