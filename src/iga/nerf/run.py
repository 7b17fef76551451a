"""Train a NeRF method in-process with nerfstudio's Trainer, then evaluate on the test views.

Layout of ``out``::

    out/nerfstudio/run/<method>/<settings fingerprint>/{config.yml, nerfstudio_models/step-*.ckpt, events.*}
    out/renders/test_000.png …     fine-network renders of the (testskip-ed) test views
    out/metrics.json               {"psnr", "ssim", "lpips", "per_view": [...], ...}
    out/provenance.json            the result record (iga.result_record): settings, seed, device, times, memory

Training resumes from the latest checkpoint under ``out`` (nerfstudio restores the model and the
optimizer; Python/torch RNG streams restart from the seed, so a resumed run is not bit-identical
to an uninterrupted one). No viewer is started (``vis=tensorboard``, quit on completion).

Views evaluated: the scene's test split, or held-out train views when it has none
(:mod:`iga.nerf.splits`); ``metrics.json`` records which under ``evaluation`` (with a note in words).

Metrics: PSNR from the float renders (nerf-pytorch's convention), SSIM (scikit-image) and LPIPS
(alex; :class:`iga.metrics.LPIPS`, real weights only, otherwise reported missing) from the uint8
renders; ground truth = the test image composited on white, at the training resolution.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..configs import ConfigError, validate
from ..metrics import LPIPS, Missing, metric_to_json, psnr, ssim, to_uint8
from ..provenance import write_json
from ..result_record import StepTimer, Training, take_job_start, write_record
from . import METHOD_NAMES
from .cell_settings import NeRFAdjuster, NeRFRun, run_default, validate_cell
from .curve import write_train_log

log = logging.getLogger(__name__)


@dataclass
class NeRFRunSettings:
    method: str = "iga-nerf"  # nerf | nerf-fr | iga-nerf
    data: str = ""
    out: str = ""
    iterations: int = run_default("iterations")
    adjuster: NeRFAdjuster = field(default_factory=NeRFAdjuster)  # IGA's end and eigensolver (the cell's)
    lr_schedule: str = run_default("lr_schedule")
    device: str = run_default("device")
    downscale: int = run_default("downscale")
    testskip: int = run_default("testskip")
    holdout_every: int = run_default("holdout_every")
    num_rays: int = run_default("num_rays")
    coarse_samples: int = run_default("coarse_samples")
    fine_samples: int = run_default("fine_samples")
    net_width: int = run_default("net_width")
    net_depth: int = run_default("net_depth")
    seed: int = run_default("seed")
    checkpoint_every: int = run_default("checkpoint_every")
    eval_chunk: int = run_default("eval_chunk")
    lpips_status_file: str | None = None
    lpips_disabled_reason: str | None = None  # LPIPS not computed, reported missing with this reason
    cell: str = ""
    extra: dict = field(default_factory=dict)

    # settings that do not change what is trained (a checkpoint made under others is still valid)
    _NOT_FINGERPRINTED = (
        "out",
        "iterations",
        "device",
        "checkpoint_every",
        "eval_chunk",
        "lpips_status_file",
        "lpips_disabled_reason",
        "cell",
    )

    def to_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "adjuster": self.adjuster.model_dump()}

    def fingerprint(self) -> str:
        from ..provenance import settings_fingerprint

        return settings_fingerprint({k: v for k, v in self.to_dict().items() if k not in self._NOT_FINGERPRINTED})

    def validate(self) -> None:
        # the run's knobs have one declaration, the cell-settings model (iga.nerf.cell_settings.NeRFRun)
        validate(NeRFRun, {name: getattr(self, name) for name in NeRFRun.model_fields})
        if self.method not in METHOD_NAMES:
            raise ConfigError(f"method={self.method!r}; allowed: {sorted(METHOD_NAMES)}")
        end = self.adjuster.end
        if self.method == "iga-nerf" and not 1 <= end < self.num_rays:
            raise ConfigError(
                f"adjuster.end={end} must satisfy 1 <= end < num_rays={self.num_rays} (one group per ray)"
            )
        if not (Path(self.data) / "transforms_train.json").exists():
            raise ConfigError(f"data={self.data!r} has no transforms_train.json (a Blender-format scene)")


def to_run_settings(
    settings: dict, data: str, out: str, cell: str, lpips_status: str | None, lpips_disabled: str | None = None
):
    s = validate_cell(settings)
    return NeRFRunSettings(
        method=s.method,
        data=data,
        out=out,
        cell=cell,
        adjuster=s.adjuster,
        lpips_status_file=lpips_status,
        lpips_disabled_reason=lpips_disabled,
        extra=dict(s.set),
        **s.run.model_dump(),
    )


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; use --device cpu or auto")
    return device


def build_config(s: NeRFRunSettings, device: str):
    """The method's TrainerConfig with this run's settings (no training state)."""
    from .method_configs import apply_run_knobs, iga_nerf, nerf_fr, nerf_vanilla

    spec = {"nerf": nerf_vanilla, "nerf-fr": nerf_fr, "iga-nerf": iga_nerf}[s.method]
    config = apply_run_knobs(copy.deepcopy(spec.config), s, s.adjuster)
    config.output_dir = Path(s.out) / "nerfstudio"
    config.experiment_name = "run"
    config.timestamp = s.fingerprint()  # checkpoints of other settings are never resumed
    config.data = Path(s.data)
    config.pipeline.datamanager.data = Path(s.data)
    config.machine.device_type = device
    config.save_only_latest_checkpoint = True
    # nerfstudio's periodic evals would render val images on the training clock; ours runs after
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 0
    config.vis = "tensorboard"
    config.viewer.quit_on_train_completion = True
    config.logging.steps_per_log = max(1, min(100, s.iterations // 100))  # the training curve: ~100 points
    config.pipeline.model.use_lpips = False  # nerfstudio's in-training eval is off; evaluation uses iga.metrics
    for key, value in s.extra.items():  # dotted overrides, e.g. {"pipeline.model.fr.alpha": 0.01}
        obj, *path, last = key.split(".")
        target = getattr(config, obj)
        for p in path:
            target = getattr(target, p)
        if not hasattr(target, last):
            raise ConfigError(f"unknown nerfstudio setting {key!r}")
        setattr(target, last, value)
    return config


_CKPT = re.compile(r"step-(\d+)\.ckpt$")


def latest_checkpoint(checkpoint_dir: Path) -> int | None:
    if not checkpoint_dir.is_dir():
        return None
    steps = [int(m.group(1)) for f in checkpoint_dir.iterdir() if (m := _CKPT.search(f.name))]
    return max(steps) if steps else None


def _gt_image(path: Path) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(path)).astype(np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:  # composite on white, as InputDataset does for training
        img = img[..., :3] * img[..., 3:] + (1.0 - img[..., 3:])
    return img[..., :3]


def evaluate(
    pipeline, config, out: Path, lpips_status_file: str | None = None, lpips_disabled: str | None = None
) -> dict:
    """Render the test views with the fine network; PSNR/SSIM/LPIPS per view and averaged."""
    import torch
    from PIL import Image

    model = pipeline.model
    model.eval()
    parser = config.pipeline.datamanager.dataparser.setup()
    outputs = parser.get_dataparser_outputs(split="test")
    cameras = outputs.cameras.to(model.device)
    lpips = LPIPS(status_file=Path(lpips_status_file) if lpips_status_file else None, disabled_reason=lpips_disabled)
    renders = out / "renders"
    renders.mkdir(parents=True, exist_ok=True)
    meta = outputs.metadata
    sources = meta["sources"]
    per_view = []
    for i, path in enumerate(outputs.image_filenames):
        with torch.no_grad():
            res = model.get_outputs_for_camera(cameras[i : i + 1])
        pred = res["rgb_fine"].float().cpu().numpy()
        gt = _gt_image(Path(path))
        if pred.shape != gt.shape:
            raise RuntimeError(f"render {pred.shape} and ground truth {gt.shape} differ for {path}")
        pred_u8, gt_u8 = to_uint8(pred), to_uint8(gt)
        Image.fromarray(pred_u8).save(renders / f"test_{i:03d}.png")
        lp = lpips(pred_u8.astype(np.float32) / 255.0, gt_u8.astype(np.float32) / 255.0)
        per_view.append(
            {
                "view": i,
                "file": str(Path(path).name),
                "source": sources[i],
                "psnr": psnr(np.clip(pred, 0, 1), gt),
                "ssim": ssim(pred_u8, gt_u8),
                "lpips": metric_to_json(lp),
            }
        )
    mean = lambda k: float(np.mean([v[k] for v in per_view]))
    lp_values = [v["lpips"] for v in per_view]
    if all(isinstance(v, float) for v in lp_values):
        lpips_mean = float(np.mean(lp_values))
    else:
        lpips_mean = Missing(lpips.status.get("reason", "LPIPS unavailable")).to_json()
    return {
        "psnr": mean("psnr"),
        "ssim": mean("ssim"),
        "lpips": lpips_mean,
        "n_views": len(per_view),
        # which views these are: the real test split, or held-out train views (the note says so)
        "evaluation": {
            "split": meta["eval_split"],
            "holdout_every": meta["holdout_every"] if meta["eval_split"] != "test" else None,
            "testskip": meta["testskip"] if meta["eval_split"] == "test" else None,
            "views": sources,
            "note": meta["split_note"],
        },
        "per_view": per_view,
        "conventions": {
            "psnr": "float render clipped to [0,1] vs float GT on white, mean over views",
            "ssim": "scikit-image on uint8, channel_axis=-1",
            "lpips": "alex on uint8/255",
        },
    }


def resumable_checkpoint(checkpoint_dir: Path, iterations: int) -> int | None:
    """Step of the checkpoint to resume, or None to train from scratch (as :mod:`iga.train` decides):
    a finished run's checkpoints are removed (the job was forced or its inputs changed), an unreadable
    one is moved aside to ``*.corrupt-<UTC time>`` and the next older one is tried."""
    import torch

    from ..train import load_problem, move_aside_corrupt

    while (last := latest_checkpoint(checkpoint_dir)) is not None:
        path = checkpoint_dir / f"step-{last:09d}.ckpt"
        if last + 1 >= iterations:
            for f in checkpoint_dir.glob("step-*.ckpt"):
                f.unlink()
            log.info("%s is of a finished run (%d iterations): retraining from scratch", path, iterations)
            return None
        try:
            st = torch.load(path, map_location="cpu", weights_only=False)
            problem = "" if isinstance(st, dict) and "pipeline" in st else "not a nerfstudio checkpoint"
        except Exception as exc:
            problem = load_problem(exc)
        if not problem:
            return last
        move_aside_corrupt(path, problem)
    return None


def run(s: NeRFRunSettings) -> dict:
    """Train and evaluate one run, holding the run folder's lock (one trainer per folder)."""
    job_start = take_job_start()
    s.validate()
    from ..cell_lock import cell_lock

    with cell_lock(Path(s.out), s.cell):
        return _run(s, job_start)


class _TrainingClock:
    """Times nerfstudio's optimisation steps (:class:`StepTimer`) and keeps the training-loop time at each
    checkpoint in ``train_time.json`` beside it, so a resumed run knows the time of the jobs before it."""

    def __init__(self, ckpt_dir: Path, every: int, resumed_from: int | None, synchronize: bool):
        self.timer = StepTimer(synchronize)
        self.path, self.every = ckpt_dir / "train_time.json", every
        seen = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.before = float(seen.get(str(resumed_from), 0.0)) if resumed_from is not None else 0.0
        self.unknown_before = resumed_from is not None and str(resumed_from) not in seen
        self.t0 = time.perf_counter()

    def attach(self, trainer) -> None:
        from nerfstudio.engine.callbacks import TrainingCallback
        from nerfstudio.engine.callbacks import TrainingCallbackLocation as At

        # first before and last after the step, so the step's own callbacks are inside the timed span
        trainer.callbacks.insert(0, TrainingCallback([At.BEFORE_TRAIN_ITERATION], lambda step: self.timer.start()))
        trainer.callbacks.append(TrainingCallback([At.AFTER_TRAIN_ITERATION], self._after))
        trainer.callbacks.append(TrainingCallback([At.AFTER_TRAIN], self._remember))  # the final checkpoint
        self.t0 = time.perf_counter()

    def _after(self, step: int) -> None:
        self.timer.stop()
        if step % self.every == 0:  # nerfstudio saves checkpoint `step` right after this
            self._remember(step)

    def _remember(self, step: int) -> None:
        seen = json.loads(self.path.read_text()) if self.path.exists() else {}
        seen[str(step)] = self.before + time.perf_counter() - self.t0
        write_json(seen, self.path)


def _run(s: NeRFRunSettings, job_start: float) -> dict:
    from nerfstudio.scripts.train import _set_random_seed

    device = resolve_device(s.device)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    config = build_config(s, device)
    ckpt_dir = config.get_checkpoint_dir()
    last = resumable_checkpoint(ckpt_dir, s.iterations)
    done = 0 if last is None else last + 1
    if last is not None:
        config.load_dir = ckpt_dir
        config.load_step = last
    config.max_num_iterations = max(0, s.iterations - done)
    config.save_config()
    _set_random_seed(s.seed + done)

    t0 = time.perf_counter()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    clock = _TrainingClock(ckpt_dir, s.checkpoint_every, last, synchronize=device == "cuda")
    clock.attach(trainer)
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    if config.max_num_iterations > 0:
        trainer.train()
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    metrics = evaluate(trainer.pipeline, config, out, s.lpips_status_file, s.lpips_disabled_reason)
    t_eval = time.perf_counter() - t2
    final = latest_checkpoint(ckpt_dir)

    metrics.update({"method": s.method, "nerfstudio_method": config.method_name, "iterations": s.iterations})
    metrics.update(trainer.pipeline.model.adjuster_stats())  # eigensolver fallbacks (iga.ntk)
    training = Training.from_timer(clock.timer, s.iterations, t_train, clock.before + t_train, last)
    if clock.unknown_before:
        training.extra["train_time_total_note"] = f"time of the jobs before step {last} not recorded: this job's only"
    write_record(
        out,
        s.cell or f"nerf/{Path(s.data).name}/{s.method}",
        s.to_dict(),
        s.seed,
        device,
        job_start,
        training,
        nerfstudio_method=config.method_name,
        nerfstudio_version=_dist_version("nerfstudio"),
        settings_fingerprint=s.fingerprint(),
        final_checkpoint_step=final,
        checkpoint_dir=str(ckpt_dir),
        wall_seconds={"setup": t_setup, "train": t_train, "eval": t_eval},
    )
    write_train_log(ckpt_dir.parent, out / "train_log.jsonl")  # the curve every record keeps (iga.nerf.curve)
    write_json(metrics, out / "metrics.json")  # last: its presence means the cell is complete
    return metrics


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
