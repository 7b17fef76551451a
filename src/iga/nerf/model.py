"""The original NeRF (nerf-pytorch defaults) in nerfstudio, with IGA or FR.

:class:`NeRFPytorchModel` subclasses nerfstudio's ``NeRFModel`` (vanilla-nerf): same coarse/fine
sampling (64 stratified + 128 importance samples, the fine network sees all 192), same renderers
and white background; it swaps in the nerf-pytorch MLP (:mod:`iga.nerf.field`) and adds

* ``adjuster.kind="iga"`` — IGA on the fine network only (paper App. F): one group per ray, the sampled
  point of a ray is the fine pass's maximum-weight sample, S = transformation_matrix(eNTK) of those
  points (:class:`iga.adjust.IGAAdjuster`), and the fine rgb loss becomes
  ``surrogate_loss(pred[:, None], gt[:, None], S)`` ([G, P=1, O=3]); the coarse loss stays MSE.
* ``technique="fr"`` — NeRF+FR: ``feature_linear`` of both networks is a ``FourierLinear``.
* ``lr_schedule`` — ``nerf-pytorch``: lr·0.1^(step/(lrate_decay·1000)) (Adam 5e-4, lrate_decay 500 as
  its Blender configs); ``official``: the constant 5e-5 the official IGA NeRF code sets for every run.
* LPIPS only with the real AlexNet weights on disk (never downloads; otherwise not computed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import AccumulationRenderer, DepthRenderer, RGBRenderer
from nerfstudio.models.base_model import Model
from nerfstudio.models.vanilla_nerf import NeRFModel, VanillaModelConfig
from nerfstudio.utils import colormaps, misc
from torch import Tensor

from ..adjust import IGAAdjuster, surrogate_loss
from ..configs import AdjusterConfig, ConfigError, FRConfig, Solver
from ..metrics import alexnet_weights_status
from .cell_settings import NeRFAdjuster, run_default
from .field import NeRFPytorchField, SampledPointOutputs

log = logging.getLogger(__name__)


@dataclass
class NeRFAdjusterConfig:
    """IGA's knobs in nerfstudio under the workflow's names: ``--pipeline.model.adjuster.end 30`` is a cell's
    ``adjuster.end``. Defaults come from the workflow's models (:class:`iga.nerf.cell_settings.NeRFAdjuster`,
    :class:`iga.configs.AdjusterConfig`), declared there once."""

    kind: Literal["vanilla", "iga"] = NeRFAdjuster.model_fields["kind"].default
    """'iga': adjust the fine network's gradient (paper App. F)."""
    end: int = NeRFAdjuster.model_fields["end"].default
    """Balanced eigenvalues: 25 for the Blender scenes, 30 for ficus (paper App. F); < rays per batch."""
    solver: Solver = NeRFAdjuster.model_fields["solver"].default
    """Eigenpairs of the 1024-ray eNTK: all (eigh) or only the top end+1 (topk); see iga.ntk."""
    start: int = AdjusterConfig.model_fields["start"].default
    variant: Literal["official", "paper"] = AdjusterConfig.model_fields["variant"].default
    density_output: Literal["sigmoid", "relu"] = "sigmoid"
    """4th eNTK output: sigmoid of the density logit (official code) or ReLU density."""

    def build(self) -> IGAAdjuster:
        return IGAAdjuster(
            AdjusterConfig(
                kind="iga", end=self.end, start=self.start, target="end", variant=self.variant, solver=self.solver
            )
        )


@dataclass
class NeRFPytorchModelConfig(VanillaModelConfig):
    """nerf-pytorch's NeRF (Blender defaults) with optional IGA / FR."""

    _target: type = field(default_factory=lambda: NeRFPytorchModel)
    num_coarse_samples: int = run_default("coarse_samples")
    num_importance_samples: int = run_default("fine_samples")
    background_color: Literal["random", "last_sample", "black", "white"] = "white"
    net_depth: int = run_default("net_depth")
    net_width: int = run_default("net_width")
    pos_frequencies: int = 10
    dir_frequencies: int = 4
    technique: Literal["none", "fr"] = "none"
    """'fr': Fourier-reparameterise feature_linear (the last feature layer) of both networks."""
    fr: FRConfig = field(default_factory=FRConfig)
    adjuster: NeRFAdjusterConfig = field(default_factory=NeRFAdjusterConfig)
    lr_schedule: Literal["nerf-pytorch", "official"] = run_default("lr_schedule")
    lr_init: float = 5e-4
    lrate_decay: int = 500
    """nerf-pytorch: lr = lr_init · 0.1^(step / (lrate_decay·1000)); its Blender configs use 500."""
    official_lr: float = 5e-5
    use_lpips: bool = True
    """Compute LPIPS in nerfstudio's eval when the real AlexNet weights are on disk (never downloads)."""


class NeRFPytorchModel(NeRFModel):
    config: NeRFPytorchModelConfig

    def populate_modules(self) -> None:
        # NeRFModel.populate_modules would build nerfstudio's own field and a torchmetrics LPIPS that
        # downloads AlexNet weights at construction; build the same parts here instead.
        Model.populate_modules(self)  # the near/far collider
        cfg = self.config
        fr = cfg.fr if cfg.technique == "fr" else None
        make = lambda: NeRFPytorchField(
            cfg.net_depth, cfg.net_width, (4,), cfg.pos_frequencies, cfg.dir_frequencies, fr
        )
        self.field_coarse = make()
        self.field_fine = make()
        self.sampler_uniform = UniformSampler(num_samples=cfg.num_coarse_samples)
        self.sampler_pdf = PDFSampler(num_samples=cfg.num_importance_samples)
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer()
        self.rgb_loss = MSELoss()

        from torchmetrics.functional import structural_similarity_index_measure
        from torchmetrics.image import PeakSignalNoiseRatio

        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = structural_similarity_index_measure
        # kept out of the module tree: checkpoints must not depend on whether LPIPS exists
        object.__setattr__(self, "_lpips", self._build_lpips() if cfg.use_lpips else None)
        self.temporal_distortion = None

        self.adjuster: IGAAdjuster | None = cfg.adjuster.build() if cfg.adjuster.kind == "iga" else None

    @staticmethod
    def _build_lpips():
        status = alexnet_weights_status()
        if not status.get("available"):
            log.info("LPIPS not computed in nerfstudio's eval: %s", status.get("reason"))
            return None
        try:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            return LearnedPerceptualImagePatchSimilarity(normalize=True)
        except Exception as exc:  # weights present but unusable: never fail training for a metric
            log.warning("LPIPS unavailable: %s", exc)
            return None

    # ------------------------------------------------------------------------------ training
    def learning_rate(self, step: int) -> float:
        cfg = self.config
        if cfg.lr_schedule == "official":
            return cfg.official_lr
        return cfg.lr_init * 0.1 ** (step / (cfg.lrate_decay * 1000))

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        optimizers = training_callback_attributes.optimizers

        def set_lr(step: int) -> None:
            lr = self.learning_rate(step)
            for group in optimizers.optimizers["fields"].param_groups:
                group["lr"] = lr

        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], update_every_num_iters=1, func=set_lr
            )
        ]

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor]:
        ray_samples_uniform = self.sampler_uniform(ray_bundle)
        out_c = self.field_coarse.forward(ray_samples_uniform)
        weights_coarse = ray_samples_uniform.get_weights(out_c[FieldHeadNames.DENSITY])
        rgb_coarse = self.renderer_rgb(rgb=out_c[FieldHeadNames.RGB], weights=weights_coarse)

        ray_samples_pdf = self.sampler_pdf(ray_bundle, ray_samples_uniform, weights_coarse)
        out_f = self.field_fine.forward(ray_samples_pdf)
        weights_fine = ray_samples_pdf.get_weights(out_f[FieldHeadNames.DENSITY])
        rgb_fine = self.renderer_rgb(rgb=out_f[FieldHeadNames.RGB], weights=weights_fine)

        outputs = {
            "rgb_coarse": rgb_coarse,
            "rgb_fine": rgb_fine,
            "accumulation_coarse": self.renderer_accumulation(weights_coarse),
            "accumulation_fine": self.renderer_accumulation(weights_fine),
            "depth_coarse": self.renderer_depth(weights_coarse, ray_samples_uniform),
            "depth_fine": self.renderer_depth(weights_fine, ray_samples_pdf),
        }
        if self.adjuster is not None and self.training:
            outputs["iga_inputs"] = self.sampled_points(ray_samples_pdf, weights_fine)
        return outputs

    @staticmethod
    def sampled_points(ray_samples, weights: Tensor) -> Tensor:
        """[n_rays, 6]: position and direction of each ray's maximum-weight fine sample."""
        idx = weights[..., 0].argmax(dim=-1)
        rows = torch.arange(idx.shape[0], device=idx.device)
        pos = ray_samples.frustums.get_positions()[rows, idx]
        dirs = ray_samples.frustums.directions[rows, idx]
        return torch.cat([pos, dirs], dim=-1).detach()

    def iga_network(self) -> SampledPointOutputs:
        return SampledPointOutputs(self.field_fine, self.config.adjuster.density_output)

    def adjuster_stats(self) -> dict:
        """The IGA adjuster's run statistics (eigensolver fallbacks) for the cell's metrics.json."""
        return self.adjuster.stats() if self.adjuster is not None else {}

    def iga_transformation(self, sampled: Tensor) -> Tensor:
        """S [n_rays, n_rays] from the fine network's eNTK at the sampled points."""
        assert self.adjuster is not None
        end = self.config.adjuster.end
        if end >= sampled.shape[0]:
            raise ConfigError(f"adjuster.end={end} must be smaller than the rays per batch ({sampled.shape[0]})")
        return self.adjuster.transformation(self.iga_network(), sampled)

    def fine_loss(self, fine_pred: Tensor, fine_gt: Tensor, outputs: dict[str, Tensor]) -> Tensor:
        if self.adjuster is None or not self.training or "iga_inputs" not in outputs:
            return self.rgb_loss(fine_gt, fine_pred)
        S = self.iga_transformation(outputs["iga_inputs"])
        return surrogate_loss(fine_pred[:, None, :], fine_gt[:, None, :], S)

    def get_metrics_dict(self, outputs, batch) -> dict[str, Tensor]:
        image = batch["image"].to(outputs["rgb_fine"].device)
        pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb_fine"], pred_accumulation=outputs["accumulation_fine"], gt_image=image
        )
        return {"psnr": self.psnr(pred.detach(), gt)}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:
        image = batch["image"].to(outputs["rgb_coarse"].device)
        coarse_pred, coarse_gt = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb_coarse"], pred_accumulation=outputs["accumulation_coarse"], gt_image=image
        )
        fine_pred, fine_gt = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb_fine"], pred_accumulation=outputs["accumulation_fine"], gt_image=image
        )
        loss_dict = {
            "rgb_loss_coarse": self.rgb_loss(coarse_gt, coarse_pred),
            "rgb_loss_fine": self.fine_loss(fine_pred, fine_gt, outputs),
        }
        return misc.scale_dict(loss_dict, self.config.loss_coefficients)

    # ------------------------------------------------------------------------------ evaluation
    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Tensor]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        image = self.renderer_rgb.blend_background(batch["image"].to(outputs["rgb_fine"].device))
        rgb_coarse, rgb_fine = outputs["rgb_coarse"], outputs["rgb_fine"]
        near, far = self.config.collider_params["near_plane"], self.config.collider_params["far_plane"]
        images = {
            "img": torch.cat([image, rgb_coarse, rgb_fine], dim=1),
            "accumulation": torch.cat(
                [
                    colormaps.apply_colormap(outputs["accumulation_coarse"]),
                    colormaps.apply_colormap(outputs["accumulation_fine"]),
                ],
                dim=1,
            ),
            "depth": torch.cat(
                [
                    colormaps.apply_depth_colormap(
                        outputs[f"depth_{k}"], accumulation=outputs[f"accumulation_{k}"], near_plane=near, far_plane=far
                    )
                    for k in ("coarse", "fine")
                ],
                dim=1,
            ),
        }
        chw = lambda x: torch.moveaxis(x, -1, 0)[None, ...]
        image, rgb_coarse, rgb_fine = chw(image), chw(rgb_coarse), chw(rgb_fine)
        fine_psnr = float(self.psnr(image, rgb_fine))
        metrics = {
            "psnr": fine_psnr,
            "coarse_psnr": float(self.psnr(image, rgb_coarse)),
            "fine_psnr": fine_psnr,
            "fine_ssim": float(self.ssim(image, rgb_fine)),
        }
        if self._lpips is not None:
            self._lpips.to(image.device)
            metrics["fine_lpips"] = float(self._lpips(image.clamp(0, 1), rgb_fine.clamp(0, 1)))
        return metrics, images
