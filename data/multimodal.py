"""Data of the multimodal sparse-coding experiments (Kim, Hannan & Kenyon 2018, arXiv:1711.07998).

* Faces: Labeled Faces in the Wild (deep-funneled), through :func:`data.load_lfw`: each image is
  centre-cropped (the central ``crop`` fraction of its side, default 0.5) and resized to 64×64 RGB;
  split per person by image into train and test (:func:`split_by_person`).
* Names: each person's name (folder name, underscores as spaces) rendered as a 128×16 grayscale image,
  white text on black (:func:`render_name`).  The paper uses 20-pt Arial; here DejaVu Sans
  (matplotlib's bundled copy, so it is always installed).  **Size rule**: the font size is the
  largest integer pixel size ≤ 20 for which the *ink* bounding box of the whole name fits inside the
  image with a 1-pixel margin on every side; the text is centred on its ink box.  A name that does
  not fit at 4 px raises ``ValueError`` (none of the 423 LFW names: the longest come out at 7 px).
  Long names therefore come out smaller than short ones; nothing is ever clipped
  (:func:`ink_clipped` checks it by rendering on a large canvas).
* The B/13 toy set (paper Fig 3): "handwritten-style" images of the characters ``B`` and ``13``,
  rendered with several installed fonts at random sizes, then distorted by a random affine map
  (rotation, shear, scale, shift) and Gaussian pixel noise, 50 of each class by default, each paired
  with the clean printed version of its class (one fixed font, no distortion).  The ambiguous test
  input is the pixel average of a handwritten ``B`` and a handwritten ``13`` drawn with the same font
  and distortion: by construction it is halfway between the classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

NAME_SIZE = (128, 16)  # (W, H) of a rendered name
NAME_MAX_PX = 20  # the paper's font size
NAME_MIN_PX = 4

#: fonts of the toy set's handwritten-style glyphs (matplotlib family, weight, style)
TOY_FONTS = (
    ("DejaVu Sans", "normal", "normal"),
    ("DejaVu Sans", "bold", "normal"),
    ("DejaVu Sans", "normal", "oblique"),
    ("DejaVu Serif", "normal", "normal"),
    ("DejaVu Serif", "bold", "italic"),
    ("DejaVu Sans Mono", "normal", "normal"),
    ("DejaVu Sans Mono", "bold", "oblique"),
    ("STIXGeneral", "normal", "italic"),
    ("cmr10", "normal", "normal"),
)
TOY_CLASSES = ("B", "13")


@lru_cache(maxsize=None)
def font_path(family: str = "DejaVu Sans", weight: str = "normal", style: str = "normal") -> str:
    """Path of an installed TrueType font (matplotlib's font manager; no fallback to another family)."""
    from matplotlib import font_manager

    prop = font_manager.FontProperties(family=family, weight=weight, style=style)
    path = str(font_manager.findfont(prop, fallback_to_default=False))
    if not Path(path).is_file():
        raise FileNotFoundError(f"font {family!r} ({weight}, {style}) not found")
    return path


@lru_cache(maxsize=256)
def _font(path: str, px: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, px)


def display_name(person: str) -> str:
    """LFW folder name -> the text rendered for it ('George_W_Bush' -> 'George W Bush')."""
    return person.replace("_", " ")


def fit_name_size(text: str, size=NAME_SIZE, font: str | None = None, max_px: int = NAME_MAX_PX,
                  min_px: int = NAME_MIN_PX, margin: int = 1) -> int:
    """Largest pixel size ≤ ``max_px`` at which the ink box of ``text`` fits ``size`` with ``margin``."""
    path = font or font_path()
    W, H = size
    for px in range(max_px, min_px - 1, -1):
        left, top, right, bottom = _font(path, px).getbbox(text)
        if right - left <= W - 2 * margin and bottom - top <= H - 2 * margin:
            return px
    raise ValueError(f"name {text!r} does not fit {W}x{H} pixels even at {min_px} px")


def _draw_centered(text: str, canvas: tuple[int, int], font, offset=(0, 0)) -> np.ndarray:
    from PIL import Image, ImageDraw

    W, H = canvas
    im = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(im)
    left, top, right, bottom = font.getbbox(text)
    x = (W - (right - left)) / 2 - left + offset[0]
    y = (H - (bottom - top)) / 2 - top + offset[1]
    d.text((round(x), round(y)), text, fill=255, font=font)
    return np.asarray(im, dtype=np.float64) / 255.0


def render_name(text: str, size=NAME_SIZE, font: str | None = None, max_px: int = NAME_MAX_PX) -> np.ndarray:
    """``text`` rendered white on black, (H, W) float in [0, 1], with the size rule of the module."""
    path = font or font_path()
    px = fit_name_size(text, size, path, max_px)
    return _draw_centered(text, size, _font(path, px))


def ink_clipped(text: str, size=NAME_SIZE, font: str | None = None, max_px: int = NAME_MAX_PX) -> float:
    """Ink lost by :func:`render_name`: 1 − ink(image) / ink(same text on a 4× larger canvas)."""
    path = font or font_path()
    px = fit_name_size(text, size, path, max_px)
    W, H = size
    small = render_name(text, size, path, max_px).sum()
    big = _draw_centered(text, (4 * W, 4 * H), _font(path, px)).sum()
    return float(1.0 - small / big) if big > 0 else 0.0


def render_names(people, size=NAME_SIZE) -> np.ndarray:
    """Name images of LFW people (n, H, W)."""
    return np.stack([render_name(display_name(p), size) for p in people])


# --------------------------------------------------------------------------- faces

@dataclass
class MultimodalData:
    """Faces and names, split per person by image.  ``people[k]`` has label k."""

    people: list
    names: np.ndarray  # (n_people, 16, 128) rendered names
    faces_train: np.ndarray  # (n, S, S, 3)
    labels_train: np.ndarray
    faces_test: np.ndarray
    labels_test: np.ndarray


def split_by_person(faces: dict, test_fraction: float = 0.2, seed: int = 0, max_train: int | None = None,
                    max_test: int | None = None):
    """Per person, a random ``test_fraction`` of the images (at least one) go to the test set.

    Returns (people, X_train, y_train, X_test, y_test); people with fewer than 2 images are dropped.
    ``max_train`` / ``max_test`` cap the images per person after the split.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    people = [p for p, v in faces.items() if len(v) >= 2]
    Xtr, ytr, Xte, yte = [], [], [], []
    for k, person in enumerate(people):
        imgs = faces[person]
        order = rng.permutation(len(imgs))
        n_test = min(len(imgs) - 1, max(1, round(test_fraction * len(imgs))))
        te, tr = order[:n_test], order[n_test:]
        tr, te = tr[:max_train], te[:max_test]
        Xtr.append(imgs[tr])
        Xte.append(imgs[te])
        ytr += [k] * len(tr)
        yte += [k] * len(te)
    return (people, np.concatenate(Xtr), np.array(ytr, dtype=np.int64), np.concatenate(Xte),
            np.array(yte, dtype=np.int64))


def load_multimodal(n_people: int | None = None, size: int = 64, test_fraction: float = 0.2, seed: int = 0,
                    max_train: int | None = None, max_test: int | None = None, crop: float = 0.5,
                    min_images: int = 5) -> MultimodalData:
    """LFW faces of the ``n_people`` most frequent people (all with ≥ ``min_images`` if None) and
    their rendered names.  Missing data raise :class:`data.DataError` naming the fetch command."""
    from b2models.data.loaders import lfw_people, load_lfw

    if n_people is not None and n_people < 2:
        raise ValueError(f"n_people={n_people} must be >= 2")
    people = list(lfw_people(min_images))[:n_people]
    faces = load_lfw(size=size, people=people, crop=crop)
    people, Xtr, ytr, Xte, yte = split_by_person(faces, test_fraction, seed, max_train, max_test)
    return MultimodalData(people, render_names(people), Xtr, ytr, Xte, yte)


# --------------------------------------------------------------------------- B / 13 toy set

def _glyph(text: str, font: tuple, px: int, size: int) -> np.ndarray:
    return _draw_centered(text, (size, size), _font(font_path(*font), px))


def _affine(img: np.ndarray, rng: np.random.Generator, rot=15.0, shear=0.25, scale=(0.85, 1.1),
            shift=2.0) -> tuple[np.ndarray, dict]:
    """Random affine distortion about the image centre (scikit-image warp, bilinear)."""
    from skimage.transform import AffineTransform, warp

    h, w = img.shape
    c = np.array([w / 2, h / 2])
    params = dict(rotation=np.radians(rng.uniform(-rot, rot)), shear=rng.uniform(-shear, shear),
                  scale=rng.uniform(*scale), translation=rng.uniform(-shift, shift, 2))
    tf = (AffineTransform(translation=-c) + AffineTransform(scale=params["scale"], rotation=params["rotation"],
                                                           shear=params["shear"])
          + AffineTransform(translation=c + params["translation"]))
    return warp(img, tf.inverse, order=1, mode="constant", cval=0.0), params


@dataclass
class ToySet:
    handwritten: np.ndarray  # (n, S, S)
    printed: np.ndarray  # (n, S, S): the printed version of each item's class
    labels: np.ndarray  # 0 = 'B', 1 = '13'
    printed_classes: np.ndarray  # (2, S, S): printed 'B', printed '13'
    ambiguous: np.ndarray  # (n_amb, S, S): halfway between a handwritten B and 13


def toy_b13(n_per_class: int = 50, size: int = 32, noise: float = 0.05, n_ambiguous: int = 10,
            seed: int = 0) -> ToySet:
    """The B/13 toy set of the module docstring."""
    if n_per_class < 1 or size < 16:
        raise ValueError(f"need n_per_class >= 1 and size >= 16 (got {n_per_class}, {size})")
    rng = np.random.default_rng(seed)
    printed = np.stack([_glyph(t, TOY_FONTS[0], int(0.7 * size), size) for t in TOY_CLASSES])
    fonts = [f for f in TOY_FONTS if _has_font(f)]

    def handwritten(text, font, px, r):
        g, _ = _affine(_glyph(text, font, px, size), r)
        return np.clip(g + noise * r.standard_normal(g.shape), 0, 1)

    hw, labels = [], []
    for k, text in enumerate(TOY_CLASSES):
        for _ in range(n_per_class):
            font = fonts[rng.integers(len(fonts))]
            px = int(rng.integers(int(0.55 * size), int(0.8 * size) + 1))
            hw.append(handwritten(text, font, px, rng))
            labels.append(k)
    amb = []
    for _ in range(n_ambiguous):
        font = fonts[rng.integers(len(fonts))]
        px = int(rng.integers(int(0.55 * size), int(0.8 * size) + 1))
        state = rng.integers(2**32)
        pair = [handwritten(t, font, px, np.random.default_rng(state)) for t in TOY_CLASSES]
        amb.append(0.5 * (pair[0] + pair[1]))
    labels = np.array(labels, dtype=np.int64)
    return ToySet(np.stack(hw), printed[labels], labels, printed, np.stack(amb))


def _has_font(font) -> bool:
    try:
        font_path(*font)
        return True
    except (ValueError, FileNotFoundError, RuntimeError):
        return False
