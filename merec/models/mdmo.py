"""MDMO + linear SVM: the classical baseline (Liu et al., 2016, main directional mean optical flow).

Per ROI and frame, the flow vectors of the ROI's pixels are binned by direction into ``bins``
sectors; the sector holding the most pixels is the main direction and the mean (u, v) of its
pixels the ROI's main directional mean flow for that frame. The feature of a ROI is that vector
averaged over the frames; its length is divided by the largest ROI's length of the clip (the
normalisation of the MDMO paper, which makes the feature independent of the motion's overall
size), and each ROI contributes (rho * cos theta, rho * sin theta), a form a linear classifier can
use (the angle alone wraps around). With ``stabilise`` (default, as for aurel and c3d) each frame's
mean u, v over every ROI pixel is subtracted first.

The classifier is scikit-learn's ``LinearSVC`` (one-vs-rest, ``c`` its regularisation, classes
weighted by ``train.class_weighting``) on features standardised with the training rows' mean and
sd. Training is closed-form (:meth:`MDMOSVM.fit`, no epochs); the fitted scaler and hyperplanes
live in the module's buffers, so the model is saved and loaded like the networks. Its outputs are
SVM decision values: their softmax fills the probability columns but is not a calibrated
probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.svm import LinearSVC
from torch import nn

from merec.models.aurel import stabilised


def mdmo_features(rois: torch.Tensor, bins: int, stabilise: bool) -> torch.Tensor:
    """(B, R, T, 3, S, S) ROI flow -> (B, 2R) normalised MDMO vectors."""
    if stabilise:
        rois = stabilised(rois)
    u, v = rois[:, :, :, 0], rois[:, :, :, 1]  # (B, R, T, S, S)
    sector = torch.floor((torch.atan2(v, u) + math.pi) / (2 * math.pi / bins)).long().clamp_(0, bins - 1)
    counts = torch.stack([(sector == k).sum(dim=(3, 4)) for k in range(bins)], dim=-1)  # (B, R, T, bins)
    in_main = (sector == counts.argmax(dim=-1)[..., None, None]).float()  # pixels of the main sector
    n = in_main.sum(dim=(3, 4)).clamp_min(1.0)
    mean = torch.stack([(u * in_main).sum(dim=(3, 4)) / n, (v * in_main).sum(dim=(3, 4)) / n], dim=-1)
    vector = mean.mean(dim=2)  # (B, R, 2): over frames
    length = vector.norm(dim=-1)
    scale = length.amax(dim=1, keepdim=True).clamp_min(1e-8)  # the clip's largest ROI
    return (vector / scale[..., None]).flatten(1)


class MDMOSVM(nn.Module):
    """MDMO features of ``rois`` and a linear SVM fitted in closed form (:meth:`fit`)."""

    inputs = ("rois",)
    closed_form = True

    def __init__(
        self, n_classes: int, input_shapes: Mapping[str, tuple[int, ...]], *, bins: int, c: float, stabilise: bool
    ) -> None:
        super().__init__()
        n_rois = input_shapes["rois"][0]
        self.n_classes, self.bins, self.c, self.stabilise = n_classes, bins, c, stabilise
        self.register_buffer("mean", torch.zeros(2 * n_rois))
        self.register_buffer("scale", torch.ones(2 * n_rois))
        self.register_buffer("weight", torch.zeros(n_classes, 2 * n_rois))
        self.register_buffer("bias", torch.zeros(n_classes))

    def features(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Standardised MDMO features of a batch."""
        raw = mdmo_features(batch["rois"], self.bins, self.stabilise)
        return (raw - self.mean) / self.scale

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.features(batch) @ self.weight.T + self.bias

    def fit(
        self, batch: Mapping[str, torch.Tensor], labels: torch.Tensor, class_weight: torch.Tensor, seed: int
    ) -> float:
        """Fit the scaler and the SVM on the training rows; their training accuracy."""
        with torch.no_grad():
            raw = mdmo_features(batch["rois"], self.bins, self.stabilise)
        x = raw.cpu().double().numpy()
        y = labels.cpu().numpy()
        mean, sd = x.mean(axis=0), x.std(axis=0)
        sd[sd < 1e-8] = 1.0
        weights = {k: float(w) for k, w in enumerate(class_weight.cpu().tolist()) if k in set(y.tolist())}
        svm = LinearSVC(C=self.c, class_weight=weights, random_state=seed, max_iter=20000)
        svm.fit((x - mean) / sd, y)
        weight = np.zeros((self.n_classes, x.shape[1]))
        bias = np.full(self.n_classes, -1e6)  # a class absent from training is never predicted
        present = svm.classes_
        if len(present) == 2:  # LinearSVC keeps one hyperplane for two classes
            weight[present[1]], bias[present[1]] = svm.coef_[0], svm.intercept_[0]
            weight[present[0]], bias[present[0]] = -svm.coef_[0], -svm.intercept_[0]
        else:
            weight[present], bias[present] = svm.coef_, svm.intercept_
        device = self.mean.device
        for name, value in (("mean", mean), ("scale", sd), ("weight", weight), ("bias", bias)):
            getattr(self, name).copy_(torch.from_numpy(value).float().to(device))
        return float(svm.score((x - mean) / sd, y))
