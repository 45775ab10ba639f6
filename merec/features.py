"""Features stage: optical flow from the onset to every later frame, optical strain, ROI tensors.

For a magnified clip of ``N`` frames (frame 0 the onset) the flow from frame 0 to frame ``k`` is
computed for ``k = 1..N-1`` on grey levels (TV-L1, Farneback or DIS). Channels are ``u``, ``v``
and the optical strain ``sqrt(u_x^2 + v_y^2 + 0.5 (u_y + v_x)^2)``. Output per sample
(``<sample>.npz``, float16):

* ``rois`` — (R, N-1, 3, S, S): square ``S``-px crops centred on the mean position of each ROI's
  landmark group (onset landmarks in crop coordinates), in the order of ``features.rois``;
* ``face`` — (N-1, 3, F, F): the whole-face flow averaged down to ``F`` px;
* ``frames`` — (N, 1, V, V): the clip itself, grey levels in [0, 1] averaged down to
  ``V = volume_size`` px (the frame-volume and apex-frame models read it);
* ``frontal`` — (1, V, V): the apex (last) frame re-rendered frontally from the onset landmarks
  (:func:`merec.frontalize.frontal_view`: the head pose estimated on the crop undone, the half turned
  away mirrored beyond ``frontal_mirror_yaw_deg``), grey as ``frames``; ``dsnca``'s second stream.
  A head turned too far to frontalize keeps the crop's own apex, with a warning naming the sample;
* ``roi_names`` (R,), ``roi_boxes`` (R, 4) as x0, y0, x1, y1 in crop pixels, ``landmarks`` (68, 2)
  of the onset in crop pixels and ``image_size``, the crop's side.

Flow is in pixels of the aligned crop; NaN or infinite flow is an error naming the sample.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from merec.config import Params
from merec.errors import MerecError
from merec.frontalize import frontal_view
from merec.io import PathLike
from merec.runtime import map_shard
from merec.shards import Shard

LOG = logging.getLogger("merec.features")
FLOW_METHODS = ("tvl1", "farneback", "dis")
CHANNELS = ("u", "v", "strain")


@dataclass(frozen=True)
class Tvl1Params(Params):
    """``features.tvl1``: OpenCV Dual TV-L1 (pyramid ``scales``, ``warps`` per scale, stopping
    ``epsilon``, ``inner_iterations``, ``outer_iterations``)."""

    section = "features.tvl1"
    scales: int
    warps: int
    epsilon: float
    inner_iterations: int
    outer_iterations: int


@dataclass(frozen=True)
class FeatureParams(Params):
    """The ``features`` section of params.yaml (defaults and constraints: the params schema)."""

    section = "features"
    flow: str
    tvl1: Tvl1Params
    roi_size: int
    face_size: int
    volume_size: int
    frontal_mirror_yaw_deg: float
    rois: Mapping[str, list[int]]


def make_flow(method: str, tvl1: Tvl1Params | None = None) -> Any:
    """A function ``(prev_gray, next_gray) -> (H, W, 2) float32`` flow (``tvl1``: TV-L1's settings)."""
    if method == "tvl1":
        options = tvl1 or Tvl1Params.from_mapping()
        solver = cv2.optflow.DualTVL1OpticalFlow_create()
        solver.setScalesNumber(options.scales)
        solver.setWarpingsNumber(options.warps)
        solver.setEpsilon(float(options.epsilon))
        solver.setInnerIterations(options.inner_iterations)
        solver.setOuterIterations(options.outer_iterations)
        return lambda prev, nxt: solver.calc(prev, nxt, None)
    if method == "farneback":
        return lambda prev, nxt: cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 9, 5, 5, 1.1, 0)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda prev, nxt: dis.calc(prev, nxt, None)
    raise MerecError(f"features.flow: unknown method {method!r}; choose one of {', '.join(FLOW_METHODS)}")


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of an (H, W, 2) flow field."""
    u_y, u_x = np.gradient(flow[..., 0])
    v_y, v_x = np.gradient(flow[..., 1])
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2)


def grey_volume(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, 1, size, size) grey levels in [0, 1] of (N, H, W, 3) RGB frames, area-averaged."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    small = [cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA) for g in grey]
    return (np.stack(small)[:, None] / 255.0).astype(np.float32)


def frontal_apex(frames: np.ndarray, landmarks: np.ndarray, sample: str, params: FeatureParams) -> np.ndarray:
    """(1, V, V) grey frontal view of the clip's last frame (the apex); the crop's own apex when the
    head is turned too far to frontalize (logged)."""
    apex = frames[-1]
    try:
        apex = frontal_view(apex, landmarks, params.frontal_mirror_yaw_deg)
    except MerecError as exc:
        LOG.warning("sample %s: frontal input left as the crop's apex: %s", sample, exc)
    return grey_volume(apex[None], params.volume_size)[0]


def onset_flows(frames: np.ndarray, flow: Any) -> np.ndarray:
    """(N-1, 3, H, W) u, v, strain from frame 0 to each later frame."""
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    out = []
    for later in gray[1:]:
        field_ = flow(gray[0], later)
        out.append(np.stack([field_[..., 0], field_[..., 1], optical_strain(field_)]))
    return np.stack(out).astype(np.float32)


def roi_boxes(landmarks: np.ndarray, rois: Mapping[str, list[int]], size: int, image_size: int) -> np.ndarray:
    """(R, 4) square boxes of ``size`` px centred on each landmark group, kept inside the image."""
    if size > image_size:
        raise MerecError(f"features.roi_size={size} exceeds the face crop size {image_size}")
    boxes = []
    for name, points in rois.items():
        if not points or max(points) > 67 or min(points) < 0:
            raise MerecError(f"features.rois.{name}: landmark indices must be in 0..67, got {points}")
        centre = landmarks[list(points)].mean(axis=0)
        x0 = int(np.clip(np.rint(centre[0] - size / 2), 0, image_size - size))
        y0 = int(np.clip(np.rint(centre[1] - size / 2), 0, image_size - size))
        boxes.append((x0, y0, x0 + size, y0 + size))
    return np.array(boxes, dtype=np.int64)


def sample_features(
    frames: np.ndarray, landmarks: np.ndarray, sample: str, params: FeatureParams
) -> dict[str, np.ndarray]:
    """Flow features of one magnified clip."""
    flows = onset_flows(frames, make_flow(params.flow, params.tvl1))
    if not np.isfinite(flows).all():
        raise MerecError(
            f"sample {sample}: optical flow contains NaN or infinite values; check the frames of this "
            "sample (blank or corrupt crops) or try another features.flow method"
        )
    boxes = roi_boxes(landmarks, params.rois, params.roi_size, frames.shape[1])
    rois = np.stack([flows[:, :, y0:y1, x0:x1] for x0, y0, x1, y1 in boxes])
    t, c, h, w = flows.shape
    face = cv2.resize(
        flows.reshape(t * c, h, w).transpose(1, 2, 0),
        (params.face_size, params.face_size),
        interpolation=cv2.INTER_AREA,
    )
    face = face.reshape(params.face_size, params.face_size, t * c).transpose(2, 0, 1).reshape(t, c, *face.shape[:2])
    return {
        "rois": rois.astype(np.float16),
        "face": face.astype(np.float16),
        "frames": grey_volume(frames, params.volume_size).astype(np.float16),
        "frontal": frontal_apex(frames, landmarks, sample, params).astype(np.float16),
        "roi_names": np.array(list(params.rois)),
        "roi_boxes": boxes,
        "landmarks": landmarks,
        "image_size": np.int64(frames.shape[1]),  # the crop's side, the landmarks' scale
    }


def run(input_manifest: PathLike, output_manifest: PathLike, params: FeatureParams) -> Shard:
    """Compute features for every magnified clip of a shard."""
    make_flow(params.flow, params.tvl1)  # fail early on a bad method

    def features_of(arrays: dict[str, np.ndarray], sample: str) -> dict[str, np.ndarray]:
        return sample_features(arrays["frames"], arrays["landmarks"], sample, params)

    return map_shard(input_manifest, output_manifest, features_of, "features", f"features ({params.flow})")
