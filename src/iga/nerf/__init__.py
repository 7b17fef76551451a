"""NeRF on Blender-format scenes through a nerfstudio method plugin (paper Sec. 6.3 / App. F).

* :mod:`iga.nerf.procedural_scene` — a small analytic Blender-format scene (numpy + Pillow only).
* :mod:`iga.nerf.field`, :mod:`iga.nerf.model`, :mod:`iga.nerf.data` — the nerf-pytorch NeRF in
  nerfstudio, its IGA and FR variants, the half-resolution Blender parser (need ``nerfstudio``).
* :mod:`iga.nerf.method_configs` — the ``MethodSpecification`` objects behind the
  ``nerfstudio.method_configs`` entry points (``iga-nerf``, ``iga-nerf-vanilla``, ``iga-nerf-fr``).
* :mod:`iga.nerf.run` — train in-process, render the test views, write metrics and provenance.

Only this package's nerfstudio-facing modules import nerfstudio; importing ``iga.nerf`` itself
does not.
"""

METHOD_NAMES = {"nerf": "iga-nerf-vanilla", "nerf-fr": "iga-nerf-fr", "iga-nerf": "iga-nerf"}

# IGA's `end` for NeRF (official code: 25; ficus 30 through the config): the one default, used by the
# cell settings, the run settings and the nerfstudio model config
DEFAULT_END = 25
