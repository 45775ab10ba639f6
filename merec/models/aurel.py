"""AU-relation network on ROI flow sequences, in the spirit of layered-relations MER models.

Pipeline (one forward pass, one classifier):

0. **Stabilisation** (``stabilise``, default on): the mean u and v over every ROI pixel of a frame
   (mostly head motion: a smooth drift moves every ROI alike) is subtracted from the ROIs' u and v,
   so that the model sees motion *relative to the face*. Per sample and frame: nothing is shared
   between samples.
   With ``frame_stride`` k > 1 only every k-th frame, counted back from the apex, is used.
1. **Frame encoder** (shared by every ROI and frame): two stride-2 3x3 convolutions with batch norm
   and ReLU over the (u, v, strain) crop of one frame, pooled to ``pool`` x ``pool`` and projected
   to ``width`` features.
2. **Temporal encoder** per ROI: a 1-D convolution over the ``T`` frame vectors, then mean and
   max over time, projected back to ``width``.
3. **ROI relations**: ROI tokens plus a learned ROI embedding go through ``heads``-head
   self-attention with a residual connection and layer norm (every ROI attends to every other).
4. **ROI -> AU nodes**: a learned (K, R) assignment, softmax-normalised over ROIs, turns the R
   ROI tokens into K AU-node vectors (plus a learned AU embedding). It is initialised from a
   facial-anatomy prior (AU1/2/4 on the brows, AU12/14/15/25 on the mouth, ...) when the ROI
   names and AU numbers are known, uniform otherwise.
5. **AU graph convolution**: ``gcn_layers`` residual layers ``H <- H + ReLU(LN(Â H W))`` with
   ``Â = D^-1/2 (S + I) D^-1/2``, ``S = (A + A^T) / 2`` the symmetrised AU co-occurrence matrix of
   the fold (``adjacency`` in the batch: P(AU_j | AU_i) over the training subjects) and ``D`` its
   row sums. The adjacency is read from the batch on every call, so a different graph changes the
   output.
6. **Fusion**: the flattened ROI-relation tokens and the flattened AU nodes are concatenated,
   dropped out and classified by ONE linear layer (logits; the training loss is a single
   cross-entropy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from merec.errors import MerecError
from merec.models.inputs import without_mean_motion

# Facial regions moved by each AU (FACS); ROI names are matched by substring.
AU_REGIONS: dict[int, tuple[str, ...]] = {
    1: ("brow",),
    2: ("brow",),
    4: ("brow",),
    5: ("eye",),
    6: ("eye",),
    7: ("eye",),
    9: ("nose",),
    10: ("nose", "mouth"),
    11: ("mouth",),
    12: ("mouth",),
    13: ("mouth",),
    14: ("mouth",),
    15: ("mouth",),
    16: ("mouth",),
    17: ("chin", "mouth"),
    18: ("mouth",),
    20: ("mouth",),
    22: ("mouth",),
    23: ("mouth",),
    24: ("mouth",),
    25: ("mouth",),
    26: ("chin", "mouth"),
    27: ("chin", "mouth"),
    43: ("eye",),
    45: ("eye",),
    46: ("eye",),
}


def normalised_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """``D^-1/2 (S + I) D^-1/2`` of the symmetrised, non-negative adjacency ``S = (A + A^T) / 2``."""
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise MerecError(f"the AU adjacency must be a square (K, K) matrix, got shape {tuple(adjacency.shape)}")
    symmetric = (adjacency.clamp(min=0) + adjacency.clamp(min=0).T) / 2
    with_self = symmetric + torch.eye(len(symmetric), dtype=symmetric.dtype, device=symmetric.device)
    inv_sqrt = with_self.sum(dim=1).rsqrt()
    return inv_sqrt[:, None] * with_self * inv_sqrt[None, :]


def stabilised(rois: torch.Tensor) -> torch.Tensor:
    """(B, R, T, 3, S, S) ROIs with each frame's mean u, v over all ROIs subtracted (strain kept)."""
    return without_mean_motion(rois, channel_dim=3, space_dims=(1, 4, 5))


def roi_au_prior(roi_names: Sequence[str], aus: Sequence[int], strength: float) -> torch.Tensor:
    """(K, R) initial assignment logits: ``strength`` where an AU acts on a ROI's region, else 0."""
    prior = torch.zeros(len(aus), len(roi_names))
    for k, au in enumerate(aus):
        regions = AU_REGIONS.get(int(au), ())
        for r, name in enumerate(roi_names):
            if any(region in name for region in regions):
                prior[k, r] = strength
    return prior


class AURelNet(nn.Module):
    """ROI sequences -> ROI relations -> AU graph convolution -> one classifier."""

    inputs = ("rois",)
    context = ("roi_names", "aus")  # what build_model passes from the data, besides the options

    def __init__(
        self,
        n_classes: int,
        input_shapes: Mapping[str, tuple[int, ...]],
        roi_names: Sequence[str] | None = None,
        aus: Sequence[int] | None = None,
        *,
        channels: Sequence[int],
        pool: int,
        width: int,
        heads: int,
        gcn_layers: int,
        dropout: float,
        prior: float,
        stabilise: bool,
        frame_stride: int,
    ) -> None:
        super().__init__()
        if "adjacency" not in input_shapes:
            raise MerecError("model aurel needs the fold's AU graph: pass --au-graph (the au_graph stage's output)")
        n_rois, _, in_channels, _, _ = input_shapes["rois"]
        n_aus = input_shapes["adjacency"][0]
        if width % heads:
            raise MerecError(f"train.models.aurel: width ({width}) must be a multiple of heads ({heads})")
        layers: list[nn.Module] = []
        previous = in_channels
        for c in channels:
            layers += [nn.Conv2d(previous, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            previous = c
        layers += [nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(previous * pool * pool, width), nn.ReLU()]
        self.frame_encoder = nn.Sequential(*layers)
        self.temporal = nn.Sequential(nn.Conv1d(width, width, 3, padding=1), nn.ReLU())
        self.temporal_out = nn.Linear(2 * width, width)
        self.roi_embedding = nn.Parameter(torch.zeros(n_rois, width))
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(width)
        if roi_names is not None and aus is not None and len(roi_names) == n_rois and len(aus) == n_aus:
            initial = roi_au_prior(roi_names, aus, prior)
        else:
            initial = torch.zeros(n_aus, n_rois)
        self.roi_to_au = nn.Parameter(initial)
        self.au_embedding = nn.Parameter(torch.zeros(n_aus, width))
        self.gcn = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(gcn_layers))
        self.gcn_norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(gcn_layers))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear((n_rois + n_aus) * width, n_classes)
        self.stabilise = stabilise
        self.frame_stride = frame_stride
        nn.init.normal_(self.roi_embedding, std=0.02)
        nn.init.normal_(self.au_embedding, std=0.02)

    def roi_tokens(self, rois: torch.Tensor) -> torch.Tensor:
        """(B, R, T, C, S, S) -> (B, R, width) ROI tokens after the frame and temporal encoders."""
        b, r, t = rois.shape[:3]
        frames = self.frame_encoder(rois.reshape(b * r * t, *rois.shape[3:]))  # (B*R*T, width)
        sequence = self.temporal(frames.reshape(b * r, t, -1).transpose(1, 2))  # (B*R, width, T)
        pooled = torch.cat([sequence.mean(dim=2), sequence.amax(dim=2)], dim=1)
        return self.temporal_out(pooled).reshape(b, r, -1)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if "adjacency" not in batch:
            raise MerecError("model aurel needs the fold's AU graph in the batch ('adjacency')")
        adjacency = normalised_adjacency(batch["adjacency"].to(batch["rois"].dtype))
        rois = batch["rois"]
        if self.frame_stride > 1:  # every k-th frame, counted back from the apex (the last one)
            rois = rois[:, :, (rois.shape[2] - 1) % self.frame_stride :: self.frame_stride]
        if self.stabilise:
            rois = stabilised(rois)
        tokens = self.roi_tokens(rois) + self.roi_embedding
        related, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        tokens = self.attention_norm(tokens + related)
        assignment = torch.softmax(self.roi_to_au, dim=1)  # (K, R)
        nodes = torch.einsum("kr,brd->bkd", assignment, tokens) + self.au_embedding
        for linear, norm in zip(self.gcn, self.gcn_norms, strict=True):
            nodes = nodes + torch.relu(norm(torch.einsum("kj,bjd->bkd", adjacency, linear(nodes))))
        fused = torch.cat([tokens.flatten(1), nodes.flatten(1)], dim=1)
        return self.classifier(self.dropout(fused))
