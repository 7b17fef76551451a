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
These knobs are declared once, with their defaults, in :class:`iga.nerf.cell_settings.NeRFRun` (also
the workflow cells' ``run`` settings, seed 4096 included); :func:`apply_run_knobs` maps them here.

    ns-train iga-nerf --data data/nerf_synthetic/lego --vis tensorboard \\
        --viewer.quit-on-train-completion True
    # the official IGA runs' constant lr 5e-5 (all methods):
    ns-train iga-nerf --pipeline.model.lr-schedule official ...
    # ficus: --pipeline.model.adjuster.end 30 ; full resolution: --pipeline.datamanager.dataparser.downscale 1

NeRF+BN is not provided: the paper quotes Cai et al.'s numbers for it and no code exists.
"""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from .cell_settings import NeRFAdjuster, NeRFRun
from .data import IGABlenderDataParserConfig, SingleImagePixelSamplerConfig
from .model import NeRFAdjusterConfig, NeRFPytorchModelConfig


def apply_run_knobs(config: TrainerConfig, run, adjuster: NeRFAdjuster) -> TrainerConfig:
    """Set the knobs a cell may set (``run``: an :class:`iga.nerf.cell_settings.NeRFRun` or the workflow's
    NeRFRunSettings; ``adjuster``: IGA's end and eigensolver) on a nerfstudio config. The one mapping from
    knob to nerfstudio field, used by the workflow's runs and by these methods (with the knobs' defaults);
    whether IGA is on is the method's (its ``adjuster.kind``)."""
    config.machine.seed = run.seed
    config.max_num_iterations = run.iterations
    config.steps_per_save = run.checkpoint_every
    dm = config.pipeline.datamanager
    dm.train_num_rays_per_batch = dm.eval_num_rays_per_batch = run.num_rays
    dm.dataparser.downscale = run.downscale
    dm.dataparser.testskip = run.testskip
    dm.dataparser.holdout_every = run.holdout_every
    m = config.pipeline.model
    m.num_coarse_samples, m.num_importance_samples = run.coarse_samples, run.fine_samples
    m.net_width, m.net_depth = run.net_width, run.net_depth
    m.lr_schedule = run.lr_schedule
    m.adjuster.end, m.adjuster.solver = adjuster.end, adjuster.solver
    m.eval_num_rays_per_chunk = run.eval_chunk
    return config


def trainer_config(method_name: str, **model_kwargs) -> TrainerConfig:
    defaults = NeRFRun()  # nerf-pytorch's Blender settings, declared once with the cell settings
    config = TrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=5000,
        steps_per_eval_all_images=defaults.iterations,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=IGABlenderDataParserConfig(),
                pixel_sampler=SingleImagePixelSamplerConfig(),
            ),
            model=NeRFPytorchModelConfig(**model_kwargs),
        ),
        optimizers={
            # lr is set every step by the model's lr_schedule callback (nerf-pytorch or official)
            "fields": {"optimizer": AdamOptimizerConfig(lr=5e-4, eps=1e-8), "scheduler": None},
        },
        viewer=ViewerConfig(quit_on_train_completion=True),
        vis="tensorboard",
    )
    return apply_run_knobs(config, defaults, NeRFAdjuster())


nerf_vanilla = MethodSpecification(
    config=trainer_config("iga-nerf-vanilla"),
    description="Original NeRF with nerf-pytorch's Blender defaults (IGA paper baseline).",
)

nerf_fr = MethodSpecification(
    config=trainer_config("iga-nerf-fr", technique="fr"),
    description="NeRF+FR: last feature layer Fourier-reparameterised (IGA paper baseline).",
)

iga_nerf = MethodSpecification(
    config=trainer_config("iga-nerf", adjuster=NeRFAdjusterConfig(kind="iga")),
    description="NeRF+IGA: inductive gradient adjustment of the fine network (IGA paper).",
)
