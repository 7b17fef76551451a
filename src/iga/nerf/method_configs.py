"""nerfstudio method specifications (entry point group ``nerfstudio.method_configs``).

=================  =====================================================================
``iga-nerf-vanilla``  the original NeRF with nerf-pytorch's Blender defaults
``iga-nerf-fr``       NeRF+FR: ``feature_linear`` Fourier-reparameterised (coarse and fine)
``iga-nerf``          NeRF+IGA: fine network's gradient adjusted, end = 25 (ficus: 30)
=================  =====================================================================

All three: 8×256 MLP with a skip at layer 5, PE 10/4 frequencies (nerf-pytorch's embedder), 64
coarse + 128 fine samples (the fine network sees all 192), 1024 rays per step drawn from one
random training image, white background, Blender at half resolution (``downscale 2``: 400×400),
test frames every 8th, Adam(5e-4) with nerf-pytorch's decay 0.1^(step/500k), 200k steps.

    ns-train iga-nerf --data data/nerf_synthetic/lego --vis tensorboard \\
        --viewer.quit-on-train-completion True
    # the official IGA runs' constant lr 5e-5 (all methods):
    ns-train iga-nerf --pipeline.model.lr-schedule official ...
    # ficus: --pipeline.model.iga-end 30 ; full resolution: --pipeline.datamanager.dataparser.downscale 1

NeRF+BN is not provided: the paper quotes Cai et al.'s numbers for it and no code exists.
"""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from . import DEFAULT_END
from .data import IGABlenderDataParserConfig, SingleImagePixelSamplerConfig
from .model import NeRFPytorchModelConfig

MAX_ITERATIONS = 200_000  # nerf-pytorch's N_iters for Blender (also the official IGA configs)


def trainer_config(method_name: str, **model_kwargs) -> TrainerConfig:
    return TrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=5000,
        steps_per_eval_all_images=MAX_ITERATIONS,
        steps_per_save=5000,
        max_num_iterations=MAX_ITERATIONS,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=IGABlenderDataParserConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
                pixel_sampler=SingleImagePixelSamplerConfig(),
            ),
            model=NeRFPytorchModelConfig(eval_num_rays_per_chunk=4096, **model_kwargs),
        ),
        optimizers={
            # lr is set every step by the model's lr_schedule callback (nerf-pytorch or official)
            "fields": {"optimizer": AdamOptimizerConfig(lr=5e-4, eps=1e-8), "scheduler": None},
        },
        viewer=ViewerConfig(quit_on_train_completion=True),
        vis="tensorboard",
    )


nerf_vanilla = MethodSpecification(
    config=trainer_config("iga-nerf-vanilla"),
    description="Original NeRF with nerf-pytorch's Blender defaults (IGA paper baseline).",
)

nerf_fr = MethodSpecification(
    config=trainer_config("iga-nerf-fr", technique="fr"),
    description="NeRF+FR: last feature layer Fourier-reparameterised (IGA paper baseline).",
)

iga_nerf = MethodSpecification(
    config=trainer_config("iga-nerf", adjust="iga", iga_end=DEFAULT_END),
    description="NeRF+IGA: inductive gradient adjustment of the fine network (IGA paper).",
)
