"""The nerf-pytorch NeRF MLP as a nerfstudio field.

nerfstudio's own ``NeRFField`` differs from nerf-pytorch (the codebase the paper uses): its
positional encoding is sin(2π·2^k·x) with 2^k spread over [1, 256], its colour branch has two
128-wide layers and no 256→256 "feature" layer, and density goes through softplus. This field is
nerf-pytorch's ``NeRF(D=8, W=256, skips=[4], use_viewdirs=True)``:

    γ(x) = [x, sin(2^k x), cos(2^k x)]_{k=0..L-1}   (L = 10 for positions, 4 for directions)
    h = ReLU(Linear(h)) × 8, with γ(x) concatenated to h after the 5th layer
    σ = ReLU(alpha_linear(h));  f = feature_linear(h)  (no activation)
    c = sigmoid(rgb_linear(ReLU(views_linear([f, γ(d)]))))

``feature_linear`` — the last feature layer — is a :class:`iga.models.FourierLinear` for NeRF+FR.
:meth:`NeRFPytorchField.raw` maps plain tensors (positions, unit directions) to the 4 raw
outputs; the IGA wrapper uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nerfstudio.cameras.rays import RaySamples
from nerfstudio.field_components.encodings import Encoding
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.base_field import Field
from torch import Tensor, nn

from ..configs import FRConfig
from ..models import FourierLinear


class NeRFPytorchEncoding(Encoding):
    """nerf-pytorch's embedder: [x, sin(2^0 x), cos(2^0 x), …, sin(2^{L-1} x), cos(2^{L-1} x)]."""

    def __init__(self, in_dim: int, num_frequencies: int, include_input: bool = True) -> None:
        super().__init__(in_dim)
        self.num_frequencies = num_frequencies
        self.include_input = include_input
        self.register_buffer("freqs", 2.0 ** torch.arange(num_frequencies, dtype=torch.float32), persistent=False)

    def get_out_dim(self) -> int:
        return self.in_dim * (2 * self.num_frequencies + int(self.include_input))

    def forward(self, in_tensor: Tensor) -> Tensor:
        parts = [in_tensor] if self.include_input else []
        freqs = self.freqs.to(in_tensor.dtype)
        for k in range(self.num_frequencies):
            parts += [torch.sin(in_tensor * freqs[k]), torch.cos(in_tensor * freqs[k])]
        return torch.cat(parts, dim=-1)


class NeRFPytorchField(Field):
    """nerf-pytorch's NeRF MLP (with view directions); optionally FR on ``feature_linear``."""

    def __init__(
        self,
        depth: int = 8,
        width: int = 256,
        skips: Sequence[int] = (4,),
        pos_frequencies: int = 10,
        dir_frequencies: int = 4,
        fr: FRConfig | None = None,
    ) -> None:
        super().__init__()
        self.position_encoding = NeRFPytorchEncoding(3, pos_frequencies)
        self.direction_encoding = NeRFPytorchEncoding(3, dir_frequencies)
        in_pts, in_views = self.position_encoding.get_out_dim(), self.direction_encoding.get_out_dim()
        self.skips = tuple(skips)
        self.pts_linears = nn.ModuleList(
            [nn.Linear(in_pts, width)]
            + [nn.Linear(width + in_pts if i in self.skips else width, width) for i in range(depth - 1)]
        )
        self.alpha_linear = nn.Linear(width, 1)
        self.feature_linear = FourierLinear(width, width, fr) if fr is not None else nn.Linear(width, width)
        self.views_linears = nn.ModuleList([nn.Linear(in_views + width, width // 2)])
        self.rgb_linear = nn.Linear(width // 2, 3)

    # -- plain-tensor interface -------------------------------------------------------------
    def trunk(self, positions: Tensor) -> Tensor:
        x = self.position_encoding(positions)
        h = x
        for i, layer in enumerate(self.pts_linears):
            h = torch.relu(layer(h))
            if i in self.skips:
                h = torch.cat([x, h], dim=-1)
        return h

    def colour_raw(self, h: Tensor, directions: Tensor) -> Tensor:
        f = self.feature_linear(h)
        v = torch.cat([f, self.direction_encoding(directions)], dim=-1)
        for layer in self.views_linears:
            v = torch.relu(layer(v))
        return self.rgb_linear(v)

    def raw(self, positions: Tensor, directions: Tensor) -> Tensor:
        """[..., 4] = (rgb logits, density logit) as nerf-pytorch's network output."""
        h = self.trunk(positions)
        return torch.cat([self.colour_raw(h, directions), self.alpha_linear(h)], dim=-1)

    # -- nerfstudio Field interface ------------------------------------------------------------
    def get_density(self, ray_samples: RaySamples) -> tuple[Tensor, Tensor]:
        h = self.trunk(ray_samples.frustums.get_positions())
        return torch.relu(self.alpha_linear(h)), h

    def get_outputs(
        self, ray_samples: RaySamples, density_embedding: Tensor | None = None
    ) -> dict[FieldHeadNames, Tensor]:
        assert density_embedding is not None
        rgb = torch.sigmoid(self.colour_raw(density_embedding, ray_samples.frustums.directions))
        return {FieldHeadNames.RGB: rgb}


class SampledPointOutputs(nn.Module):
    """The fine network as a map from sampled points to its 4 outputs, for the eNTK.

    Input [n, 6] = (position, unit view direction); output [n, 4] = sigmoid of nerf-pytorch's 4
    raw outputs (rgb logits and the density logit), as the official code's
    ``Sequential(model, Sigmoid(), Linear(4, 1))`` (``density="sigmoid"``); ``density="relu"``
    uses σ = ReLU(logit) for the 4th output instead. The sum of logits over the 4 outputs is done
    by :mod:`iga.ntk`. Every trainable parameter is in an ``nn.Linear``/``FourierLinear`` that runs
    once per forward, so :func:`iga.ntk.entk` takes its one-forward/one-backward path.
    """

    def __init__(self, field: NeRFPytorchField, density: str = "sigmoid") -> None:
        super().__init__()
        if density not in ("sigmoid", "relu"):
            raise ValueError(f"density={density!r}; allowed: 'sigmoid', 'relu'")
        self.field = field
        self.density = density

    def forward(self, x: Tensor) -> Tensor:
        raw = self.field.raw(x[..., :3], x[..., 3:6])
        if self.density == "sigmoid":
            return torch.sigmoid(raw)
        return torch.cat([torch.sigmoid(raw[..., :3]), torch.relu(raw[..., 3:])], dim=-1)
