"""Toy studies of paper section 5 / appendix C: spectral bias on 1D signals, Δ_k over iterations.

* Experiment 1 — a 2-layer ReLU net (fixed ±1 output layer) fits
  f(θ) = sin(0.4πθ) + sin(0.8πθ) + sin(1.6πθ) + sin(3.2πθ) on N points x = (cos θ, sin θ); SGD with
  S = I (vanilla), the exact NTK's S (FixedKernelAdjuster over iga.ntk.analytic_relu_ntk), the full
  eNTK's S̃ (group size 1) or IGA's S̃_e (groups of 8 consecutive θ, centre point), target λ_1.
* Experiment 2 — a ReLU or SIREN coordinate MLP fits Σ_k sin(2πkx) on [-1, 1] (ReLU: halved
  frequencies); Adam; IGA with group sizes 1/4/8, target λ_end.

Every ``eval_every`` steps (and at step 0) the task records the MSE over all points and Δ_k (eq. 7,
iga.metrics.relative_spectral_error) at the DFT bins of the target's components — chosen as the
official code does, the ``len(freqs)`` largest |rFFT| bins of the target. Exp. 1 cells can also record
the residual vector (for the distance between eNTK- and NTK-adjusted trajectories) and, for eNTK/IGA
cells, ‖K̃−K‖_F/‖K‖_F and ‖S̃−S‖_F/‖S‖_F of the network being trained.

Outputs per cell: ``curve.npz`` (the evaluations), ``train_log.jsonl``, ``provenance.json`` and, last,
``metrics.json``.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..adjust import build_adjuster
from ..configs import AdjusterConfig
from ..grouping import interval_groups
from ..metrics import relative_spectral_error
from ..models import build_model
from ..ntk import analytic_relu_ntk, entk, transformation_matrix
from ..provenance import settings_fingerprint, write_json
from ..result_record import take_job_start, write_record
from ..train import Batch, Trainer, resolve_device, seed_everything
from .toy_config import TwoLayerConfig, balanced_eigenvalues, validate_cell

log = logging.getLogger(__name__)


# --- model of Experiment 1 -----------------------------------------------------------------
class TwoLayerReLU(nn.Module):
    """f(x) = s · Σ_r a_r relu(w_rᵀx + b_r); w ~ N(0, I), b = 0 trained, a ~ U{−1, 1} frozen.

    Creation order (hidden layer, output layer, then the re-initialisation) follows the official code.
    """

    def __init__(self, cfg: TwoLayerConfig):
        super().__init__()
        m = cfg.hidden_features
        self.hidden = nn.Linear(cfg.in_features, m, bias=True)
        self.out = nn.Linear(m, 1, bias=False)
        with torch.no_grad():
            nn.init.normal_(self.hidden.weight, mean=0.0, std=1.0)
            nn.init.zeros_(self.hidden.bias)
            signs = torch.randint(0, 2, self.out.weight.shape)
            self.out.weight.copy_(signs.float() * 2.0 - 1.0)
        self.out.weight.requires_grad_(False)
        self.scale = 1.0 / math.sqrt(2 * m if cfg.scale == "2m" else m)
        # the expected eNTK is kernel_factor · analytic_relu_ntk
        self.kernel_factor = 1.0 if cfg.scale == "2m" else 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x))) * self.scale


# --- signals -------------------------------------------------------------------------------
def make_signal(experiment: str, n: int, freqs: list[float]):
    """(inputs [n, d] float32, target [n] float32, t [n]) as the official code samples them."""
    if experiment == "exp1":
        t = np.linspace(0.0, 2.0 * np.pi, n)  # θ; endpoint included, as the official code
        x = np.stack([np.cos(t), np.sin(t)], axis=1)
    else:
        t = np.linspace(-1.0, 1.0, n)
        x = t[:, None]
    y = np.zeros(n)
    for k in freqs:
        y += np.sin(k * 2.0 * math.pi * t)
    return torch.from_numpy(x).float(), torch.from_numpy(y).float(), t


def spectral_bins(target: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` largest |rFFT| bins of the target, ascending (the official selection)."""
    mag = np.abs(np.fft.rfft(np.asarray(target, dtype=np.float64)))
    return np.sort(np.argsort(mag)[-count:])


# --- kernel monitor (Exp. 1) ------------------------------------------------------------------
class KernelMonitor:
    """Distances of the trained net's eNTK (and its S̃) from the exact NTK (and its S)."""

    def __init__(self, x: torch.Tensor, K: torch.Tensor, adj: AdjusterConfig, groups: torch.Tensor):
        self.x = x
        self.K = K.double()
        self.adj = adj
        self.S = self._S(self.K)
        self.idx = None
        if groups.shape[1] > 1:  # IGA: the kernel of the sampled (centre) points
            self.idx = groups[:, groups.shape[1] // 2]
            self.K_e = self.K[self.idx][:, self.idx]
            self.S_e = self._S(self.K_e)

    def _S(self, K: torch.Tensor) -> torch.Tensor:
        # a diagnostic against the exact NTK's S: always the dense decomposition
        return transformation_matrix(
            K, self.adj.end, self.adj.target, self.adj.start, self.adj.variant, solver="eigh"
        ).double()

    @staticmethod
    def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))

    def __call__(self, model: nn.Module, kernel_factor: float) -> dict[str, float]:
        dev = next(model.parameters()).device
        Kt = entk(model, self.x.to(dev)).double().cpu() / kernel_factor
        out = {"k_rel": self._rel(Kt, self.K), "s_rel": self._rel(self._S(Kt), self.S)}
        if self.idx is not None:
            Kte = Kt[self.idx][:, self.idx]
            out["ke_rel"] = self._rel(Kte, self.K_e)
            out["se_rel"] = self._rel(self._S(Kte), self.S_e)
        return out


# --- the task --------------------------------------------------------------------------------
class ToyTask:
    """Full-batch regression of a 1D signal; evaluations of MSE and Δ_k every ``eval_every`` steps."""

    score_name = "neg_mse"

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        group_size: int,
        bins: np.ndarray,
        save_residuals: bool = False,
        monitor: KernelMonitor | None = None,
        kernel_factor: float = 1.0,
        name: str = "toy",
    ):
        self.name = name
        self.x, self.y = x, y
        self.y_np = y.double().numpy()
        self.groups = interval_groups(x.shape[0], group_size)
        self._batch = Batch(x[self.groups], y[self.groups].unsqueeze(-1))
        self.bins = bins
        self.save_residuals = save_residuals
        self.monitor = monitor
        self.kernel_factor = kernel_factor
        self.history: list[dict] = []

    def batch(self, step: int, generator: torch.Generator) -> Batch:
        return self._batch

    def step_metrics(self, step: int, batch_mse: float):
        return None  # evaluations happen every eval_every steps (evaluate)

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        dev = next(model.parameters()).device
        with torch.no_grad():
            pred = model(self.x.to(dev)).reshape(-1).double().cpu().numpy()
        r = pred - self.y_np
        mse = float(np.mean(r**2))
        delta = relative_spectral_error(pred, self.y_np, self.bins)
        rec = {"step": int(step), "mse": mse, "delta": [float(d) for d in delta]}
        if self.save_residuals:
            rec["residual"] = r.astype(np.float32)
        if self.monitor is not None:
            rec.update(self.monitor(model, self.kernel_factor))
        self.history.append(rec)
        out = {"neg_mse": -mse, "mse": mse}
        out.update({f"delta_f{i + 1}": float(d) for i, d in enumerate(delta)})
        out.update({k: v for k, v in rec.items() if k.endswith("_rel")})
        return out

    def curve(self) -> dict[str, np.ndarray]:
        h = sorted(self.history, key=lambda r: r["step"])
        out = {
            "steps": np.array([r["step"] for r in h], dtype=np.int64),
            "mse": np.array([r["mse"] for r in h]),
            "delta": np.array([r["delta"] for r in h]).reshape(len(h), len(self.bins)),
            "bins": np.asarray(self.bins, dtype=np.int64),
        }
        if self.save_residuals:
            out["residual"] = np.stack([r["residual"] for r in h]) if h else np.zeros((0, len(self.y_np)), np.float32)
            out["target"] = self.y_np.astype(np.float32)
        for key in ("k_rel", "s_rel", "ke_rel", "se_rel"):
            if h and key in h[0]:
                out[key] = np.array([r[key] for r in h])
        return out


# --- one cell ------------------------------------------------------------------------------------
def _save_npz_atomic(arrays: dict[str, np.ndarray], path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def _restore_history(out_dir: Path, fingerprint: str) -> list | None:
    """History matching the checkpoint, or None (and the checkpoint is dropped) if they disagree."""
    ckpt, state = out_dir / "checkpoint.pt", out_dir / "curve_state.pt"
    if not ckpt.exists():
        return None
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    if ck.get("fingerprint") != fingerprint:
        return None  # the Trainer starts afresh by itself
    st = torch.load(state, map_location="cpu", weights_only=False) if state.exists() else {}
    if st.get("fingerprint") == fingerprint and st.get("step") == ck.get("step"):
        return st["history"]
    log.warning("%s has no matching evaluation history; starting afresh", ckpt)
    ckpt.unlink()
    return None


def build_cell(settings: dict, device: str | None = None):
    """(model, task, adjuster, optim, train, info) of one toy cell, from its resolved settings."""
    cell = validate_cell(settings)
    tcfg, adj_cfg, optim_cfg, train_cfg, mcfg = cell.task, cell.adjuster, cell.optim, cell.train, cell.model
    if device:
        train_cfg.device = device
    seed_everything(train_cfg.seed)
    x, y, _ = make_signal(tcfg.experiment, tcfg.n_points, tcfg.freqs)
    bins = spectral_bins(y.numpy(), len(tcfg.freqs))
    dev = resolve_device(train_cfg.device)
    kernel = None
    monitor = None
    kernel_factor = 1.0
    if tcfg.experiment == "exp1":
        model = TwoLayerReLU(mcfg)
        kernel_factor = model.kernel_factor
        width = mcfg.hidden_features
        arch = mcfg.architecture
        K = analytic_relu_ntk(x.double())
        if adj_cfg.kind == "ntk":
            kernel = K.float().to(dev)
        if tcfg.kernel_monitor and adj_cfg.kind in ("entk", "iga"):
            monitor = KernelMonitor(x, K, adj_cfg, interval_groups(tcfg.n_points, tcfg.group_size))
    else:
        model = build_model(mcfg)
        width, arch = mcfg.hidden_features, mcfg.architecture
    generator = torch.Generator().manual_seed(train_cfg.seed)
    adjuster = build_adjuster(adj_cfg, generator, kernel=kernel)
    task = ToyTask(
        x, y, tcfg.group_size, bins, save_residuals=tcfg.save_residuals, monitor=monitor, kernel_factor=kernel_factor
    )
    task.model_cfg = mcfg
    info = {
        "experiment": tcfg.experiment,
        "architecture": arch,
        "width": width,
        "seed": train_cfg.seed,
        "adjuster": adj_cfg.kind,
        "group_size": tcfg.group_size,
        "n_points": tcfg.n_points,
        "balanced": None if adj_cfg.kind == "vanilla" else balanced_eigenvalues(settings.get("adjuster", {})),
        "end": adj_cfg.end,
        "target": adj_cfg.target,
        "freqs": tcfg.freqs,
        "bins": [int(b) for b in bins],
        "optimizer": optim_cfg.optimizer,
        "lr": optim_cfg.lr,
    }
    return model, task, adjuster, optim_cfg, train_cfg, tcfg, generator, info


def run_cell(settings: dict, out_dir: Path, cell_id: str, device: str | None = None, resume: bool = True) -> dict:
    """Train one toy cell; write curve.npz, provenance.json and (last) metrics.json."""
    job_start = take_job_start()
    model, task, adjuster, optim_cfg, train_cfg, tcfg, generator, info = build_cell(settings, device)
    task.name = cell_id
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = settings_fingerprint(settings)
    state_path = out_dir / "curve_state.pt"

    def save_history(step: int) -> None:
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({"step": step, "fingerprint": fingerprint, "history": task.history}, tmp)
        os.replace(tmp, state_path)

    trainer = Trainer(
        model,
        task,
        adjuster,
        optim_cfg,
        train_cfg,
        out_dir,
        evaluate_every=tcfg.eval_every,
        generator=generator,
        on_checkpoint=save_history,
        fingerprint=fingerprint,
    )
    restored = _restore_history(out_dir, fingerprint) if resume else None
    if restored is not None:
        task.history = restored
    else:
        model.eval()
        task.evaluate(trainer.model, 0)  # the state at initialisation
        model.train()
    init_stats = (
        _init_statistics(task, tcfg.init_samples, train_cfg.seed, trainer.device) if task.monitor is not None else {}
    )
    result = trainer.fit(resume=resume and restored is not None)
    curve = task.curve()
    _save_npz_atomic(curve, out_dir / "curve.npz")

    metrics = dict(info)
    metrics.update(
        {
            "iterations": result.steps,
            "mse_init": float(curve["mse"][0]),
            "mse_final": float(curve["mse"][-1]),
            "evaluations": int(len(curve["steps"])),
        }
    )
    span = max(float(curve["steps"][-1] - curve["steps"][0]), 1.0)
    for i in range(curve["delta"].shape[1]):
        d = curve["delta"][:, i]
        metrics[f"delta_f{i + 1}_init"] = float(d[0])
        metrics[f"delta_f{i + 1}_final"] = float(d[-1])
        # time-average of Δ over training (lower: the component was learned sooner)
        metrics[f"delta_f{i + 1}_mean"] = float(np.trapezoid(d, curve["steps"]) / span) if len(d) > 1 else float(d[0])
    for key in ("k_rel", "s_rel", "ke_rel", "se_rel"):
        if key in curve:
            metrics[f"{key}_init"] = float(curve[key][0])
            metrics[f"{key}_final"] = float(curve[key][-1])
            metrics[f"{key}_max"] = float(np.max(curve[key]))
    metrics.update(init_stats)
    metrics.update(adjuster.stats())  # eigensolver steps and fallbacks (iga.ntk.TopkEigensolver)
    training = result.training()
    metrics["time_per_iteration_s"] = training.time_per_iteration_s  # the toy tables show it (one definition)
    write_record(out_dir, cell_id, settings, train_cfg.seed, result.device, job_start, training)
    write_json(metrics, out_dir / "metrics.json")  # last: its presence marks a finished cell
    return metrics


def _init_statistics(task: ToyTask, samples: int, seed: int, device) -> dict[str, float]:
    """Mean and std of the monitor's distances over ``samples`` fresh random nets (Exp. 1 width study)."""
    if samples < 1:
        return {}
    recs = []
    with torch.random.fork_rng(devices=[]):
        for i in range(samples):
            torch.manual_seed(10_000 * seed + 7919 * (i + 1))
            net = TwoLayerReLU(task.model_cfg).to(device)
            recs.append(task.monitor(net, net.kernel_factor))
    out = {"init_samples": samples}
    for key in recs[0]:
        v = np.array([r[key] for r in recs])
        out[f"{key}_init_mc"] = float(v.mean())
        out[f"{key}_init_mc_std"] = float(v.std(ddof=1)) if samples > 1 else 0.0
    return out
