"""Recognition models, chosen by ``train.model``; options in ``train.models.<model>``.

Every model takes a batch dict of float tensors built from the features stage:

* ``apex`` (B, 3, F, F): whole-face u, v, strain from onset to apex (the last frame);
* ``face`` (B, T, 3, F, F): whole-face flow for every interpolated frame;
* ``rois`` (B, R, T, 3, S, S): ROI flow tensors;
* ``frames`` (B, N, 1, V, V): the clip's grey frames, onset to apex;
* ``frontal`` (B, 1, V, V): the grey apex frame re-rendered frontally;
* ``landmarks`` (B, 68, 2): the onset landmarks, x and y as fractions of the crop's side;
* ``adjacency`` (K, K): the fold's AU graph (same for the whole batch);

and returns class logits (B, n_classes), or scores with the model's own ``criterion(weights)``
and ``probabilities(scores)`` (``capsule``, ``dsnca``: capsule lengths and the margin loss). A model's class
attribute ``inputs`` names the inputs it reads (training moves only those; default: all of
them). ``input_shapes`` gives the per-sample shapes of the flow and frame inputs (and
``adjacency``: (K, K) when an AU graph is given), so models can size their layers without lazy
modules. ``context`` may carry ``roi_names`` and ``aus`` (the AU numbers of the
graph's nodes) for models that use them to initialise weights.

* ``stst``: STSTNet, the shallow triple-stream 2D CNN on ``apex``, as published (:mod:`merec.models.stst`);
* ``offapex``: OFF-ApexNet, two CNN streams on the ``apex`` u and v (:mod:`merec.models.offapex`);
* ``aurel``: ROI encoder + ROI self-attention + AU graph convolution on ``rois`` and
  ``adjacency`` (:mod:`merec.models.aurel`);
* ``c3d``: compact 3D CNN with optional squeeze-excitation on ``face`` (:mod:`merec.models.c3d`);
* ``t3d``: SE-DenseNet3D on ``frames`` (:mod:`merec.models.t3d`);
* ``r3d``: torchvision's ``r3d_18`` / ``r2plus1d_18`` on ``frames``, from scratch or from
  user-given weights (:mod:`merec.models.r3d`);
* ``capsule``: CapsuleNet on the apex frame of ``frames`` (:mod:`merec.models.capsule`);
* ``dsnca``: two capsule streams, the apex of ``frames`` and ``frontal``, fused by channel
  attention (:mod:`merec.models.dsnca`);
* ``htnet``: HTNet, a hierarchical transformer on four facial regions of ``apex``, placed by
  ``landmarks`` (:mod:`merec.models.htnet`);
* ``mdmo``: the classical baseline, MDMO features of ``rois`` + a linear SVM fitted in closed form
  (:mod:`merec.models.mdmo`); a model with ``closed_form = True`` is trained by its ``fit``
  method instead of the epoch loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

from merec.config import checked_section
from merec.errors import MerecError

# train.model -> (module, class); imported on first use, so a model's dependencies load only when chosen
_CLASSES = {
    "stst": ("merec.models.stst", "STSTNet"),
    "offapex": ("merec.models.offapex", "OffApexNet"),
    "aurel": ("merec.models.aurel", "AURelNet"),
    "c3d": ("merec.models.c3d", "C3DNet"),
    "t3d": ("merec.models.t3d", "T3DNet"),
    "r3d": ("merec.models.r3d", "R3DNet"),
    "capsule": ("merec.models.capsule", "CapsuleNet"),
    "dsnca": ("merec.models.dsnca", "DSNCANet"),
    "htnet": ("merec.models.htnet", "HTNet"),
    "mdmo": ("merec.models.mdmo", "MDMOSVM"),
}
MODELS = tuple(_CLASSES)


def model_class(name: str) -> type[nn.Module]:
    """The class implementing ``train.model``."""
    if name not in _CLASSES:
        raise MerecError(f"train.model: unknown model {name!r}; choose one of {', '.join(MODELS)}")
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def model_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``options`` for ``train.models.<name>`` validated against the schema, its defaults filled in."""
    model_class(name)  # an unknown model is an error naming the choices
    return checked_section(f"train.models.{name}", options)


def build_model(
    name: str,
    n_classes: int,
    input_shapes: Mapping[str, tuple[int, ...]],
    options: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Instantiate ``train.model`` with its options (schema defaults for the ones not given).

    ``context`` may carry ``roi_names`` and ``aus`` for the models that take them.
    """
    cls = model_class(name)
    extra = {key: value for key, value in (context or {}).items() if key in getattr(cls, "context", ())}
    return cls(n_classes=n_classes, input_shapes=input_shapes, **extra, **model_options(name, options))
