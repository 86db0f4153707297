"""Screenshot comparison: baseline vs current, vectorised with numpy.

A pixel counts as changed when pixelmatch's perceptual YIQ colour distance between the two images
exceeds ``threshold`` (0..1, the same meaning as pixelmatch's and Playwright's ``threshold``). The
comparison passes when the changed share of the compared pixels is at most ``tolerance_pct``
percent (Ghost Inspector's tolerance). Excluded regions are not compared. Images of different
sizes are compared on their common area, and every pixel outside it counts as changed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops

ALGORITHM = "yiq:v1"
DEFAULT_THRESHOLD = 0.1
DEFAULT_TOLERANCE_PCT = 0.5
# pixelmatch: the maximum possible YIQ delta is 35215.
_MAX_DELTA = 35215.0

ImageInput = bytes | Path | Image.Image


@dataclass(frozen=True)
class Region:
    """A rectangle in pixels, left/top inclusive."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class DiffResult:
    width: int
    height: int
    compared_pixels: int
    changed_pixels: int
    changed_pct: float
    tolerance_pct: float
    threshold: float
    passed: bool
    size_mismatch: bool
    # Bounding box (left, top, right, bottom) of the changed pixels, None when nothing changed.
    bbox: tuple[int, int, int, int] | None
    algorithm: str = ALGORITHM


def _load(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGBA")
    data = image.read_bytes() if isinstance(image, Path) else image
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("RGBA")


def _yiq(rgba: npt.NDArray[np.float32]) -> tuple[npt.NDArray[Any], ...]:
    alpha = rgba[..., 3:4] / 255.0
    # Blend with white, as pixelmatch does for transparent pixels.
    rgb = 255.0 + (rgba[..., :3] - 255.0) * alpha
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = r * 0.29889531 + g * 0.58662247 + b * 0.11448223
    i = r * 0.59597799 - g * 0.27417610 - b * 0.32180189
    q = r * 0.21147017 - g * 0.52261711 + b * 0.31114694
    return y, i, q


def changed_mask(
    baseline: Image.Image, current: Image.Image, threshold: float
) -> npt.NDArray[np.bool_]:
    """Per-pixel "changed" for two RGBA images of the same size."""
    a = np.asarray(baseline, dtype=np.float32)
    b = np.asarray(current, dtype=np.float32)
    ya, ia, qa = _yiq(a)
    yb, ib, qb = _yiq(b)
    delta = 0.5053 * (ya - yb) ** 2 + 0.299 * (ia - ib) ** 2 + 0.1957 * (qa - qb) ** 2
    changed: npt.NDArray[np.bool_] = delta > _MAX_DELTA * threshold * threshold
    return changed


def compare(
    baseline: ImageInput,
    current: ImageInput,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT,
    exclude: Sequence[Region] = (),
    diff_path: Path | None = None,
) -> DiffResult:
    """Compare two screenshots; write a diff image (changes in red) to ``diff_path`` if given."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be between 0 and 1")
    if not 0.0 <= tolerance_pct <= 100.0:
        raise ValueError("tolerance_pct must be between 0 and 100")
    base, cur = _load(baseline), _load(current)
    width, height = max(base.width, cur.width), max(base.height, cur.height)
    common_w, common_h = min(base.width, cur.width), min(base.height, cur.height)
    size_mismatch = base.size != cur.size
    changed = np.ones((height, width), dtype=bool)
    base_c = base.crop((0, 0, common_w, common_h))
    cur_c = cur.crop((0, 0, common_w, common_h))
    if ImageChops.difference(base_c, cur_c).getbbox(alpha_only=False) is None:
        changed[:common_h, :common_w] = False  # identical common area: skip the maths
    else:
        changed[:common_h, :common_w] = changed_mask(base_c, cur_c, threshold)
    compared = np.ones((height, width), dtype=bool)
    for region in exclude:
        x0, y0 = max(region.x, 0), max(region.y, 0)
        x1, y1 = min(region.x + region.width, width), min(region.y + region.height, height)
        if x1 > x0 and y1 > y0:
            compared[y0:y1, x0:x1] = False
    changed &= compared
    count = int(changed.sum())
    total = int(compared.sum())
    pct = 100.0 * count / total if total else 0.0
    bbox = None
    if count:
        rows = np.flatnonzero(changed.any(axis=1))
        cols = np.flatnonzero(changed.any(axis=0))
        bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    if diff_path is not None:
        write_diff_image(base, changed, compared, diff_path, (width, height))
    return DiffResult(
        width=width,
        height=height,
        compared_pixels=total,
        changed_pixels=count,
        changed_pct=round(pct, 4),
        tolerance_pct=tolerance_pct,
        threshold=threshold,
        passed=pct <= tolerance_pct,
        size_mismatch=size_mismatch,
        bbox=bbox,
    )


def write_diff_image(
    baseline: Image.Image,
    changed: npt.NDArray[np.bool_],
    compared: npt.NDArray[np.bool_],
    path: Path,
    size: tuple[int, int],
) -> None:
    """The baseline faded to grey, changed pixels red, excluded regions blue-tinted."""
    canvas = Image.new("RGBA", size, (255, 255, 255, 255))
    canvas.paste(baseline, (0, 0))
    grey = np.asarray(canvas.convert("L"), dtype=np.float32)
    faded = (255.0 - (255.0 - grey) * 0.3).astype(np.uint8)
    out = np.stack([faded, faded, faded], axis=-1)
    out[~compared] = (out[~compared] * np.array([0.6, 0.7, 1.0])).astype(np.uint8)
    out[changed] = (255, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(out, "RGB").save(path, format="PNG")
