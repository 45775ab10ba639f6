"""Synthetic training pairs for MagNet, after Oh et al. (ECCV 2018), built offline.

A *scene* is a foreground layer (a patch of a natural image or a procedural texture, with a soft
random-shape alpha mask) over a background layer (another image or texture). Both layers move by
independent small translations: at time ``t`` the foreground is displaced by ``t * fg_motion``
and the background by ``t * bg_motion`` (pixels, (dx, dy)), on top of a random sub-pixel base
offset. Frames are rendered with exact sub-pixel shifts (Fourier phase ramps on a band-limited
canvas with a margin that absorbs the wrap-around), then composited, so

* ``frame_a`` = the scene at ``t = 0``, ``frame_b`` at ``t = 1`` (motion up to ~2 px),
* ``target`` = the scene at ``t = alpha``: the same motion ``alpha`` times larger (the MagNet
  manipulator adds ``alpha - 1`` times the a -> b shape difference to frame b).

Colour-perturbed copies ``frame_b_perturbed`` / ``target_perturbed`` (one random per-channel colour
transform applied to both) drive the texture/shape consistency losses. Inputs get Poisson (shot)
noise of random strength; every frame is quantised to 8 bits as a camera would. Everything is a
function of ``(seed, index)`` only, so batches are reproducible and independent of history.

Natural images come from :mod:`skimage.data` (the ones shipped with scikit-image); ``astronaut`` and
``lfw_subset`` (faces) are held out of training for the benchmark.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from merec.errors import MerecError

# skimage.data images shipped with scikit-image (no download needed); faces are held out
TRAIN_IMAGES = (
    "brick",
    "camera",
    "cat",
    "cell",
    "chelsea",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "stereo_motorcycle",
    "text",
)
HELD_OUT_IMAGES = ("astronaut", "lfw_subset")


@dataclass(frozen=True)
class PairConfig:
    """How training pairs are drawn (all motions in pixels at the output resolution)."""

    crop: int = 64
    min_motion: float = 0.05
    max_motion: float = 2.0
    max_magnified: float = 12.0
    alpha_range: tuple[float, float] = (1.0, 100.0)
    static_bg_prob: float = 0.3
    texture_prob: float = 0.35
    noise_prob: float = 0.5
    max_noise: float = 2.0
    perturb_prob: float = 0.5
    perturb_strength: float = 0.6

    def __post_init__(self) -> None:
        if self.crop < 16 or self.crop % 4:
            raise MerecError(f"magnet crop must be a multiple of 4 and >= 16, got {self.crop}")
        low, high = self.alpha_range
        if not 1.0 <= low <= high:
            raise MerecError(f"alpha_range must satisfy 1 <= low <= high, got {self.alpha_range}")
        if not 0 < self.min_motion <= self.max_motion:
            raise MerecError("min_motion/max_motion must satisfy 0 < min_motion <= max_motion")

    @property
    def margin(self) -> int:
        """Canvas border that absorbs the largest displacement plus the Fourier wrap-around."""
        return math.ceil(self.max_magnified + self.max_motion) + 8

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alpha_range"] = list(self.alpha_range)
        return data


@functools.cache
def image_pool(names: tuple[str, ...] = TRAIN_IMAGES) -> tuple[np.ndarray, ...]:
    """The named :mod:`skimage.data` images as float32 RGB in [0, 1] (grey ones replicated)."""
    import skimage.data

    images = []
    for name in names:
        try:
            raw = getattr(skimage.data, name)()
        except Exception as exc:  # pragma: no cover - depends on the scikit-image install
            raise MerecError(
                f"skimage.data.{name} is not available offline ({exc}); "
                "reinstall scikit-image or drop it from the image list"
            ) from exc
        if isinstance(raw, tuple):
            raw = raw[0]
        array = np.asarray(raw)
        if name == "lfw_subset":  # 200 grey 25x25 faces: tile a few into one mosaic
            rows = [np.concatenate(list(array[r * 8 : r * 8 + 8]), 1) for r in range(8)]
            array = np.concatenate(rows)
        array = array.astype(np.float32)
        if array.max() > 1.0:
            array /= 255.0
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(array[..., :3]))
    return tuple(images)


# ----------------------------------------------------------------------------- textures


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float, channels: int) -> np.ndarray:
    field = rng.standard_normal((size, size, channels)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if field.ndim == 2:
        field = field[..., None]
    field -= field.mean(axis=(0, 1), keepdims=True)
    return field / (field.std(axis=(0, 1), keepdims=True) + 1e-6)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, 3).astype(np.float32)


def procedural_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random (size, size, 3) texture in [0, 1]: noise, gratings, shapes or a near-flat field."""
    kind = rng.integers(4)
    if kind == 0:  # multi-scale coloured noise
        out = np.zeros((size, size, 3), np.float32)
        for sigma in rng.uniform(0.7, size / 6, rng.integers(1, 4)):
            out += _smooth_noise(rng, size, float(sigma), 3) * rng.uniform(0.05, 0.25)
        out += _random_colour(rng)
    elif kind == 1:  # sums of gratings
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        out = np.zeros((size, size, 3), np.float32) + _random_colour(rng) * 0.5 + 0.25
        for _ in range(rng.integers(1, 4)):
            theta = rng.uniform(0, np.pi)
            period = rng.uniform(3.0, size / 2)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
            out += wave[..., None] * (rng.uniform(-0.25, 0.25, 3).astype(np.float32))
    elif kind == 2:  # anti-aliased random ellipses and rectangles
        scale = 4
        big = np.empty((size * scale, size * scale, 3), np.float32)
        big[:] = _random_colour(rng)
        for _ in range(rng.integers(3, 15)):
            colour = tuple(float(c) for c in _random_colour(rng))
            centre = tuple(int(c) for c in rng.integers(0, size * scale, 2))
            axes = tuple(int(a) for a in rng.integers(scale * 2, size * scale // 3, 2))
            if rng.random() < 0.5:
                cv2.ellipse(big, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                corner = (centre[0] + axes[0], centre[1] + axes[1])
                cv2.rectangle(big, centre, corner, colour, -1)
        out = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    else:  # nearly flat, weak texture: the net must not invent motion there
        out = _smooth_noise(rng, size, float(rng.uniform(1.0, 4.0)), 3) * rng.uniform(0.0, 0.03)
        out += _random_colour(rng)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def natural_patch(rng: np.random.Generator, size: int, pool: Sequence[np.ndarray]) -> np.ndarray:
    """A random crop of a pool image, area-downscaled 1.25-4x (band-limited), flipped/rotated."""
    image = pool[int(rng.integers(len(pool)))]
    scale = float(np.exp(rng.uniform(np.log(1.25), np.log(4.0))))
    side = round(size * scale)
    height, width = image.shape[:2]
    if min(height, width) < side:  # small sources are enlarged first
        factor = side / min(height, width) + 1e-3
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        height, width = image.shape[:2]
    y0 = int(rng.integers(0, height - side + 1))
    x0 = int(rng.integers(0, width - side + 1))
    patch = image[y0 : y0 + side, x0 : x0 + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    patch = np.rot90(patch, int(rng.integers(4)))
    patch = cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=cv2.INTER_AREA)
    is_grey = np.abs(patch - patch.mean(axis=2, keepdims=True)).max() < 1e-3
    if is_grey or rng.random() < 0.3:  # tint grey patches (and some colour ones)
        grey = patch.mean(axis=2, keepdims=True)
        patch = grey * rng.uniform(0.4, 1.0, 3) + (1 - grey) * rng.uniform(0.0, 0.4, 3) * 0.5
    return np.clip(patch, 0.0, 1.0).astype(np.float32)


def random_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft (anti-aliased) random blob in [0, 1]: thresholded smooth noise, polygon or ellipse."""
    scale = 4
    big = size * scale
    if rng.random() < 0.5:
        field = _smooth_noise(rng, size, float(rng.uniform(size / 12, size / 5)), 1)[..., 0]
        yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
        field = field - 2.5 * (xx**2 + yy**2)  # favour one central blob
        threshold = np.quantile(field, rng.uniform(0.45, 0.85))
        field = cv2.resize(field.astype(np.float32), (big, big), interpolation=cv2.INTER_CUBIC)
        hard = (field > threshold).astype(np.float32)
    else:
        hard = np.zeros((big, big), np.float32)
        centre = rng.uniform(0.3, 0.7, 2) * big
        if rng.random() < 0.5:
            axes = rng.uniform(0.12, 0.35, 2) * big
            cv2.ellipse(
                hard,
                (int(centre[0]), int(centre[1])),
                (int(axes[0]), int(axes[1])),
                float(rng.uniform(0, 180)),
                0,
                360,
                1.0,
                -1,
            )
        else:
            count = int(rng.integers(3, 9))
            angles = np.sort(rng.uniform(0, 2 * np.pi, count))
            radii = rng.uniform(0.12, 0.35, count) * big
            points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(hard, [points.astype(np.int32)], 1.0)
    return cv2.resize(hard, (size, size), interpolation=cv2.INTER_AREA)


# ----------------------------------------------------------------------------- rendering


def _phase_ramp(size: int, dx: float, dy: float) -> np.ndarray:
    """rfft2 multiplier that translates a (size, size) image by (dx, dy) pixels."""
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    return np.exp(-2j * np.pi * (kx * dx + ky * dy))


def fourier_shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Translate a square (S, S[, C]) image by sub-pixel (dx, dy), periodically (odd S: exact)."""
    size = image.shape[0]
    spectrum = np.fft.rfft2(image, axes=(0, 1))
    ramp = _phase_ramp(size, dx, dy)
    if image.ndim == 3:
        ramp = ramp[..., None]
    return np.fft.irfft2(spectrum * ramp, s=image.shape[:2], axes=(0, 1)).astype(np.float32)


@dataclass
class Scene:
    """A two-layer scene on an odd-sized canvas; :meth:`render` draws it at times ``t``."""

    background: np.ndarray
    foreground: np.ndarray
    mask: np.ndarray
    fg_motion: np.ndarray
    bg_motion: np.ndarray
    offset: np.ndarray
    crop: int

    def __post_init__(self) -> None:
        size = self.background.shape[0]
        if size % 2 == 0 or self.background.shape[:2] != (size, size):
            raise MerecError("Scene canvas must be square with an odd side")
        fg = np.concatenate([self.foreground * self.mask[..., None], self.mask[..., None]], axis=2)
        self._bg_spec = np.fft.rfft2(self.background, axes=(0, 1))
        self._fg_spec = np.fft.rfft2(fg, axes=(0, 1))

    def render(self, t: float) -> np.ndarray:
        """The (crop, crop, 3) float32 frame at time ``t`` (layers displaced ``t`` x motion)."""
        size = self.background.shape[0]
        fx, fy = self.offset + t * self.fg_motion
        bx, by = self.offset + t * self.bg_motion
        shape, axes = (size, size), (0, 1)
        bg = np.fft.irfft2(self._bg_spec * _phase_ramp(size, bx, by)[..., None], s=shape, axes=axes)
        fg = np.fft.irfft2(self._fg_spec * _phase_ramp(size, fx, fy)[..., None], s=shape, axes=axes)
        alpha_mask = np.clip(fg[..., 3:], 0.0, 1.0)
        # premultiplied foreground: colour = fg_rgb (already times mask) + (1 - mask) * bg
        frame = fg[..., :3] + (1.0 - alpha_mask) * bg
        start = (size - self.crop) // 2
        frame = frame[start : start + self.crop, start : start + self.crop]
        return np.clip(frame, 0.0, 1.0).astype(np.float32)


def random_layer(rng: np.random.Generator, size: int, config: PairConfig) -> np.ndarray:
    """A natural-image patch or (with ``texture_prob``) a procedural texture."""
    if rng.random() < config.texture_prob:
        return procedural_texture(rng, size)
    return natural_patch(rng, size, image_pool())


def random_direction(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def random_scene(
    rng: np.random.Generator,
    config: PairConfig,
    motion: float | None = None,
    alpha: float | None = None,
) -> tuple[Scene, float]:
    """A random scene and its amplification; ``motion``/``alpha`` fix the layer-motion scale/alpha.

    The larger of the two layer motions has magnitude ``motion`` (log-uniform in
    [min_motion, max_motion] when None); the other is a random fraction of it (zero for a static
    background with ``static_bg_prob``). ``alpha`` is log-uniform in ``alpha_range`` capped so that
    the magnified motion stays within ``max_magnified``.
    """
    size = config.crop + 2 * config.margin + 1
    if motion is None:
        motion = float(np.exp(rng.uniform(np.log(config.min_motion), np.log(config.max_motion))))
    if alpha is None:
        low, high = config.alpha_range
        high = max(low, min(high, config.max_magnified / motion))
        alpha = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    background = random_layer(rng, size, config)
    foreground = random_layer(rng, size, config)
    mask = random_mask(rng, size)
    main = motion * random_direction(rng)
    other = motion * rng.uniform(0.0, 1.0) * random_direction(rng)
    if rng.random() < config.static_bg_prob:
        fg_motion, bg_motion = main, np.zeros(2)
    elif rng.random() < 0.5:
        fg_motion, bg_motion = main, other
    else:
        fg_motion, bg_motion = other, main
    scene = Scene(
        background=background,
        foreground=foreground,
        mask=mask,
        fg_motion=fg_motion,
        bg_motion=bg_motion,
        offset=rng.uniform(-0.5, 0.5, 2),
        crop=config.crop,
    )
    return scene, alpha


# ----------------------------------------------------------------------------- noise, colour


def poisson_noise(rng: np.random.Generator, image: np.ndarray, std_at_half: float) -> np.ndarray:
    """Shot noise whose standard deviation at intensity 0.5 is ``std_at_half`` (8-bit levels)."""
    if std_at_half <= 0:
        return image
    peak = 0.5 / (std_at_half / 255.0) ** 2  # photons at intensity 1
    return np.clip(rng.poisson(np.clip(image, 0, 1) * peak) / peak, 0.0, 1.0).astype(np.float32)


def quantise(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, rounded."""
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def colour_transform(rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, ...]:
    """Random channel mixing matrix, per-channel gain/offset and gamma (shared by b' and Y')."""
    mix = np.eye(3)[rng.permutation(3)] if rng.random() < 0.5 else np.eye(3)
    mix = mix * (1 - 0.3 * strength * rng.random()) + strength * rng.uniform(0, 0.15, (3, 3))
    mix /= mix.sum(axis=1, keepdims=True)
    gain = 1.0 + strength * rng.uniform(-0.35, 0.35, 3)
    offset = strength * rng.uniform(-0.15, 0.15, 3)
    gamma = np.exp(strength * rng.uniform(-0.4, 0.4))
    floats = np.float32
    return mix.astype(floats), gain.astype(floats), offset.astype(floats), floats(gamma)


def apply_colour(image: np.ndarray, transform: tuple[np.ndarray, ...]) -> np.ndarray:
    mix, gain, offset, gamma = transform
    out = np.clip(image @ mix.T, 0.0, 1.0) ** gamma
    return np.clip(out * gain + offset, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- pairs


@dataclass
class PairBatch:
    """A batch of training pairs: uint8 (N, H, W, 3) images; motions (N, 2) as (dx, dy) pixels."""

    frame_a: np.ndarray
    frame_b: np.ndarray
    frame_b_perturbed: np.ndarray
    target: np.ndarray
    target_perturbed: np.ndarray
    alpha: np.ndarray
    fg_motion: np.ndarray
    bg_motion: np.ndarray


def make_pair(
    rng: np.random.Generator,
    config: PairConfig,
    motion: float | None = None,
    alpha: float | None = None,
    noise: float | None = None,
) -> dict[str, Any]:
    """One pair: frames a/b, target (t = alpha), perturbed-colour b'/target', alpha, motions.

    ``noise`` is the Poisson std at mid-grey in 8-bit levels (None: random, 0 with 1 - noise_prob).
    """
    scene, alpha = random_scene(rng, config, motion, alpha)
    clean_a, clean_b, clean_y = scene.render(0.0), scene.render(1.0), scene.render(alpha)
    transform = colour_transform(rng, config.perturb_strength)
    if rng.random() >= config.perturb_prob:  # this pair keeps its colours: b' = b, Y' = Y
        transform = (np.eye(3, dtype=np.float32), np.ones(3, np.float32), np.zeros(3, np.float32), np.float32(1))
    if noise is None:
        noise = float(rng.uniform(0, config.max_noise)) if rng.random() < config.noise_prob else 0.0
    return {
        "frame_a": quantise(poisson_noise(rng, clean_a, noise)),
        "frame_b": quantise(poisson_noise(rng, clean_b, noise)),
        "frame_b_perturbed": quantise(poisson_noise(rng, apply_colour(clean_b, transform), noise)),
        "target": quantise(clean_y),
        "target_perturbed": quantise(apply_colour(clean_y, transform)),
        "alpha": np.float32(alpha),
        "fg_motion": scene.fg_motion.astype(np.float32),
        "bg_motion": scene.bg_motion.astype(np.float32),
    }


def make_batch(seed: int, index: int, batch_size: int, config: PairConfig) -> PairBatch:
    """Batch ``index`` of the stream ``seed``: a pure function of its arguments."""
    pairs = [make_pair(np.random.default_rng([seed, index, item]), config) for item in range(batch_size)]
    return PairBatch(**{key: np.stack([pair[key] for pair in pairs]) for key in pairs[0]})
