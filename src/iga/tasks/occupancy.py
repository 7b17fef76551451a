"""3D occupancy fitting (paper section 6.2, appendix E): a voxel volume → IoU of an INR's fit.

Data path, as the official code (IGA-INR ``occupance_fitting``, after WIRE / FR-INR):

* the volume (R³, {0, 1}) is cropped to the bounding box of its occupied voxels. The official
  slice ``data[lo:hi]`` uses the last occupied index ``hi`` as an *exclusive* bound, so the last
  occupied slice of every axis is dropped; ``crop: official`` reproduces that (``inclusive``
  keeps it, ``none`` keeps the whole grid);
* coordinates are ``linspace(-1, 1)`` along each axis of the cropped grid (H, W, T); the voxels
  are flattened in C order and cut into consecutive groups of ``group_size`` (256) voxels
  (``iga.grouping.chunk_groups``); the < 256 voxels left over form one extra batch;
* an epoch visits every group once, in a fresh random order (official ``--random_index``), in
  batches of ``groups_per_step`` (512) groups, then takes one plain (vanilla) step on the leftover
  voxels — skipped when there is a single one (as the official code; BatchNorm cannot take it);
* lr decays as 0.1^(epoch / epochs), constant within an epoch (``lr_decay: per_epoch``, the
  official LambdaLR stepped per epoch) or smoothly per step (``per_step``);
* IGA takes the middle point of each group (``adjuster.sampling: centre``, official); an IGA batch
  with too few groups for ``end`` (possible only for the last batch of an epoch) is a vanilla step.

Reported: ``iou`` — the best over epochs of the IoU (> 0.5) of a clean evaluation of the whole
cropped grid after each epoch, ``iou_final`` — that of the last epoch, and ``iou_running`` (best)
/ ``iou_running_final`` — the official code's number, the IoU of the predictions recorded *during*
the epoch's forward passes (each voxel seen by the state before its batch's update, BatchNorm in
training mode).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from ..adjust import build_adjuster
from ..configs import ConfigError, validate
from ..grouping import chunk_groups
from ..metrics import iou
from ..models import build_model
from ..provenance import settings_fingerprint, write_json
from ..result_record import take_job_start, write_record
from ..train import Batch, Trainer, resolve_device, seed_everything
from .occupancy_config import CROPS, OccupancyCellSettings, OccupancyTaskConfig


def crop_box(occupancy: np.ndarray, mode: str = "official") -> tuple[tuple[int, int], ...]:
    """Per-axis [lo, hi) of the occupied voxels' bounding box.

    ``official``: hi = last occupied index (exclusive: that slice is dropped), as
    ``data[hidx.min():hidx.max(), ...]`` in the official code; ``inclusive``: hi = last + 1;
    ``none``: the whole grid.
    """
    if mode not in CROPS:
        raise ConfigError(f"crop={mode!r} is not allowed; choose one of {list(CROPS)}")
    occ = np.asarray(occupancy, dtype=bool)
    if mode == "none":
        return tuple((0, n) for n in occ.shape)
    box = []
    for a in range(occ.ndim):
        nz = np.flatnonzero(occ.any(axis=tuple(i for i in range(occ.ndim) if i != a)))
        if nz.size == 0:
            raise ValueError("the volume has no occupied voxel")
        box.append((int(nz[0]), int(nz[-1]) + (1 if mode == "inclusive" else 0)))
    if any(hi - lo < 2 for lo, hi in box):
        raise ValueError(f"cropped grid {[hi - lo for lo, hi in box]} is too thin (each axis needs >= 2 voxels)")
    return tuple(box)


def crop(occupancy: np.ndarray, mode: str = "official") -> tuple[np.ndarray, tuple]:
    box = crop_box(occupancy, mode)
    return occupancy[tuple(slice(lo, hi) for lo, hi in box)], box


class GridCoordinates:
    """Coordinates of flat voxel indices of an (H, W, T) grid, linspace(-1, 1) per axis, on demand."""

    def __init__(self, shape: tuple[int, int, int], order: str = "ij", device=None):
        self.shape = tuple(int(s) for s in shape)
        self.lin = [torch.linspace(-1, 1, n, device=device) for n in self.shape]
        self.perm = (0, 1, 2) if order == "ij" else (1, 0, 2)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        H, W, T = self.shape
        idx = (flat // (W * T), (flat // T) % W, flat % T)
        return torch.stack([self.lin[p][idx[p]] for p in self.perm], dim=-1)

    def dense(self, shape: tuple[int, int, int] | None = None) -> torch.Tensor:
        """All coordinates [N, 3] (of ``shape``, default the grid's own), C order."""
        shape = shape or self.shape
        lin = [torch.linspace(-1, 1, n, device=self.lin[0].device) for n in shape]
        g = torch.meshgrid(*lin, indexing="ij")
        return torch.stack([g[p].reshape(-1) for p in self.perm], dim=-1)


class OccupancyTask:
    score_name = "iou"

    def __init__(
        self,
        occupancy: np.ndarray,
        cfg: OccupancyTaskConfig,
        seed: int,
        device,
        min_adjust_groups: int = 0,
        name: str = "occupancy",
        epoch_log: Path | None = None,
        fingerprint: str = "",
    ):
        self.name, self.cfg, self.seed = name, cfg, int(seed)
        self.device = torch.device(device)
        self.shape = tuple(int(s) for s in occupancy.shape)
        self.n = int(np.prod(self.shape))
        self.target_np = np.ascontiguousarray(occupancy, dtype=np.uint8).reshape(-1)
        self.targets = torch.from_numpy(self.target_np).to(self.device)
        self.coords = GridCoordinates(self.shape, cfg.coordinate_order, self.device)
        groups, leftover = chunk_groups(self.n, cfg.group_size)
        if groups.shape[0] == 0:
            raise ConfigError(f"task.group_size={cfg.group_size} exceeds the {self.n} voxels of the cropped grid")
        self.groups, self.leftover = groups.to(self.device), leftover.to(self.device)
        self.n_groups = int(groups.shape[0])
        self.batches_per_epoch = math.ceil(self.n_groups / cfg.groups_per_step)
        self.has_leftover_step = bool(cfg.leftover_step and self.leftover.numel() >= 2)
        self.steps_per_epoch = self.batches_per_epoch + int(self.has_leftover_step)
        self.min_adjust_groups = int(min_adjust_groups)
        if self.min_adjust_groups and self.n_groups < self.min_adjust_groups:  # no step could be adjusted
            raise ConfigError(
                f"IGA needs at least {self.min_adjust_groups} groups per step (adjuster.end + 1), but the cropped "
                f"grid has {self.n_groups} groups of task.group_size={cfg.group_size}: every step would be vanilla; "
                "lower adjuster.end or task.group_size"
            )
        self._perm_epoch, self._perm = -1, None
        # official "running" prediction: each voxel's output in the forward pass of its batch
        self.running = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        self._armed: torch.Tensor | None = None
        self.epoch_log, self.fingerprint = epoch_log, fingerprint
        last = self.n_groups - (self.batches_per_epoch - 1) * cfg.groups_per_step
        # IGA needs more groups than `end`: a smaller last batch of an epoch takes a vanilla step
        self.small_last_batch = bool(self.min_adjust_groups and last < self.min_adjust_groups)

    # --- batches --------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:  # seeded by epoch: resuming mid-run gives the same order
            if self.cfg.shuffle_groups:
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self._perm = torch.randperm(self.n_groups, generator=g).to(self.device)
            else:
                self._perm = torch.arange(self.n_groups, device=self.device)
            self._perm_epoch = epoch
        return self._perm

    def batch(self, step: int, generator: torch.Generator) -> Batch:
        epoch, r = divmod(step, self.steps_per_epoch)
        if r < self.batches_per_epoch:
            gps = self.cfg.groups_per_step
            ids = self._permutation(epoch)[r * gps : (r + 1) * gps]
            flat = self.groups[ids]  # [b, p]
            adjust = ids.numel() >= self.min_adjust_groups
        else:
            flat = self.leftover[None, :]  # [1, L]
            adjust = False
        self._armed = flat.reshape(-1)
        inputs = self.coords(flat)
        targets = self.targets[flat].float().unsqueeze(-1)
        return Batch(inputs, targets, adjust=adjust)

    def forward_hook(self, module, args, output) -> None:
        """Records the training forward pass's predictions (the official IoU's input)."""
        flat = self._armed
        if flat is not None and output.shape[0] == flat.numel():
            self.running[flat] = output.detach().reshape(-1) > self.cfg.iou_threshold
            self._armed = None

    def step_metrics(self, step: int, batch_mse: float):
        return None

    # --- evaluation -------------------------------------------------------------------------
    def predict(
        self, model: torch.nn.Module, shape: tuple[int, int, int] | None = None, probabilities: bool = False
    ) -> np.ndarray:
        """Model output on the cropped grid (or a resampling of its box): bool, or float32."""
        shape = shape or self.shape
        coords = self.coords.dense(shape)
        out = []
        with torch.no_grad():
            for s in range(0, coords.shape[0], self.cfg.eval_chunk):
                y = model(coords[s : s + self.cfg.eval_chunk]).reshape(-1)
                out.append(y.float() if probabilities else y > self.cfg.iou_threshold)
        return torch.cat(out).reshape(shape).cpu().numpy()

    def evaluate(self, model, step):
        epoch = step // self.steps_per_epoch
        if step % self.steps_per_epoch or (epoch % self.cfg.eval_every_epochs and epoch != self.cfg.epochs):
            return None
        pred = self.predict(model).reshape(-1).view(np.uint8)
        metrics = {
            "iou": iou(pred, self.target_np),
            "epoch": float(epoch),
            "iou_running": iou(self.running.cpu().numpy().view(np.uint8), self.target_np),
        }
        if self.epoch_log is not None:
            with open(self.epoch_log, "a") as f:
                f.write(json.dumps({"epoch": epoch, "step": step, **metrics, "fingerprint": self.fingerprint}) + "\n")
        return metrics


def read_epoch_log(path: Path, last_epoch: int, fingerprint: str = "") -> list[dict]:
    """Per-epoch records of these settings, the last one written for each epoch (a resumed run
    rewrites the epochs after its checkpoint)."""
    if not Path(path).exists():
        return []
    by_epoch: dict[int, dict] = {}
    for ln in Path(path).read_text().splitlines():
        if ln.strip():
            rec = json.loads(ln)
            if rec["epoch"] <= last_epoch and rec.get("fingerprint", "") == fingerprint:
                by_epoch[int(rec["epoch"])] = rec
    return [by_epoch[e] for e in sorted(by_epoch)]


def _derived_schedule(optim_cfg, train_cfg, task_cfg: OccupancyTaskConfig, steps_per_epoch: int, raw_train: dict):
    for key in ("iterations", "checkpoint_every"):
        if key in raw_train:
            raise ConfigError(
                f"train.{key} is derived for occupancy cells (task.epochs × steps per epoch, "
                f"task.checkpoint_every_epochs); remove train.{key} and set those instead"
            )
    train_cfg.iterations = task_cfg.epochs * steps_per_epoch
    train_cfg.checkpoint_every = task_cfg.checkpoint_every_epochs * steps_per_epoch
    if optim_cfg.schedule == "exponential" and task_cfg.lr_decay == "per_epoch":
        # lr(step) = lr · f^(epoch / epochs): a staircase over epochs, exactly the official LambdaLR
        optim_cfg.schedule = "step"
        optim_cfg.step_size = steps_per_epoch
        optim_cfg.gamma = optim_cfg.final_factor ** (1.0 / task_cfg.epochs)
        optim_cfg.max_steps_of_schedule = None
    elif optim_cfg.schedule == "exponential":
        optim_cfg.final_factor = float(optim_cfg.final_factor)  # per step over train.iterations


def save_mesh(path: Path, volume: np.ndarray, threshold: float = 0.5) -> int:
    """Marching-cubes mesh of a probability volume in the [-1, 1] box coordinates; returns #faces."""
    from skimage.measure import marching_cubes

    from ..data.voxelize import write_ply

    vol = np.pad(np.asarray(volume, dtype=np.float32), 1)
    if not (vol.min() < threshold < vol.max()):
        write_ply(path, np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        return 0
    verts, faces, _, _ = marching_cubes(vol, threshold)
    verts = (verts - 1.0) * (2.0 / (np.asarray(volume.shape) - 1)) - 1.0
    write_ply(path, verts, faces)
    return int(len(faces))


def run_cell(
    settings: dict, volume_path: Path, out_dir: Path, cell_id: str, device: str | None = None, resume: bool = True
) -> dict:
    """Train one occupancy cell; writes metrics.json (last), provenance.json, train_log.jsonl,
    epochs.jsonl, pred_occupancy.npz (best state on the cropped grid) and mesh.ply."""
    job_start = take_job_start()
    from ..data.voxelize import load_volume, save_volume

    cell = validate(OccupancyCellSettings, settings)
    model_cfg, adj_cfg, optim_cfg, train_cfg, task_cfg = cell.model, cell.adjuster, cell.optim, cell.train, cell.task
    if device:
        train_cfg.device = device
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    volume, meta = load_volume(Path(volume_path))
    if volume.ndim != 3:
        raise ConfigError(f"{volume_path}: expected a 3D volume, got shape {volume.shape}")
    if max(volume.shape) != task_cfg.resolution:
        raise ConfigError(f"task.resolution={task_cfg.resolution} but {volume_path} is {list(volume.shape)}")
    cropped, box = crop(volume, task_cfg.crop)
    seed_everything(train_cfg.seed)
    dev = resolve_device(train_cfg.device)
    min_groups = adj_cfg.end + 1 if adj_cfg.kind in ("iga", "entk") else 0
    epoch_log = out_dir / "epochs.jsonl"
    fingerprint = settings_fingerprint(settings)
    task = OccupancyTask(
        cropped,
        task_cfg,
        train_cfg.seed,
        dev,
        min_adjust_groups=min_groups,
        name=cell_id,
        epoch_log=epoch_log,
        fingerprint=fingerprint,
    )
    _derived_schedule(optim_cfg, train_cfg, task_cfg, task.steps_per_epoch, settings.get("train", {}))
    model = build_model(model_cfg)
    model.register_forward_hook(task.forward_hook)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    adjuster = build_adjuster(adj_cfg, generator)
    trainer = Trainer(
        model,
        task,
        adjuster,
        optim_cfg,
        train_cfg,
        out_dir,
        evaluate_every=task.steps_per_epoch,
        generator=generator,
        fingerprint=fingerprint,
    )
    if not (resume and trainer.ckpt_path.exists()) and epoch_log.exists():
        epoch_log.unlink()
    result = trainer.fit(resume=resume)

    epochs = read_epoch_log(epoch_log, task_cfg.epochs, fingerprint)
    final = epochs[-1] if epochs else {}
    best_running = max(epochs, key=lambda r: r["iou_running"]) if epochs else {}
    model.load_state_dict(result.best_state)
    model.eval()
    pred = task.predict(model)
    best_iou_check = iou(pred.view(np.uint8), cropped.view(np.uint8))
    save_volume(out_dir / "pred_occupancy.npz", pred, crop_box=np.asarray(box), source=str(volume_path))
    scale = min(1.0, task_cfg.mesh_resolution / max(task.shape))
    mesh_shape = tuple(max(2, int(round(s * scale))) for s in task.shape)
    faces = save_mesh(out_dir / "mesh.ply", task.predict(model, mesh_shape, probabilities=True), task_cfg.iou_threshold)
    metrics = {
        "iou": result.best_score,
        "iou_final": final.get("iou"),
        "iou_running": best_running.get("iou_running"),
        "iou_running_final": final.get("iou_running"),
        "iou_best_state_recomputed": best_iou_check,
        "best_epoch": result.best_step // task.steps_per_epoch if result.best_step >= 0 else None,
        "best_running_epoch": best_running.get("epoch"),
        "epochs": task_cfg.epochs,
        "steps_per_epoch": task.steps_per_epoch,
        "iterations": result.steps,
        "groups": task.n_groups,
        "leftover_voxels": int(task.leftover.numel()),
        "vanilla_steps_for_small_iga_batches": task_cfg.epochs * int(task.small_last_batch),
        "volume_shape": list(volume.shape),
        "cropped_shape": list(task.shape),
        "crop_box": [list(b) for b in box],
        "occupied_fraction": float(cropped.mean()),
        "mesh_faces": faces,
        "mesh_grid": list(mesh_shape),
        "volume_source": {k: v for k, v in meta.items() if k in ("source", "method", "layout", "resolution")},
        **adjuster.stats(),  # eigensolver steps and fallbacks (iga.ntk.TopkEigensolver)
    }
    write_record(out_dir, cell_id, settings, train_cfg.seed, result.device, job_start, result.training())
    write_json(metrics, out_dir / "metrics.json")  # last: its presence marks a finished cell
    return metrics
