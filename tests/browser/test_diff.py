"""Screenshot comparison on synthetic images and on real screenshots of the lab site."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bastion.browser.diff import Region, compare
from tests.browser.conftest import Browser, explain


def _page(box: str = "#3366cc", size: tuple[int, int] = (1280, 800)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((40, 100, 239, 199), fill=box)
    return image


def test_identical_images_have_no_difference() -> None:
    result = compare(_page(), _page())
    assert (result.changed_pixels, result.changed_pct, result.passed, result.bbox) == (
        0,
        0.0,
        True,
        None,
    )


def test_changed_box_is_counted_located_and_drawn(tmp_path: Path) -> None:
    diff = tmp_path / "diff.png"
    result = compare(_page(), _page("#cc3333"), tolerance_pct=0.5, diff_path=diff)
    assert result.changed_pixels == 200 * 100
    assert result.changed_pct == pytest.approx(100 * 20000 / (1280 * 800), abs=1e-3)
    assert result.bbox == (40, 100, 240, 200)
    assert not result.passed and not result.size_mismatch
    pixels = np.asarray(Image.open(diff).convert("RGB"))
    assert tuple(pixels[150, 100]) == (255, 0, 0)
    assert tuple(pixels[10, 10]) == (255, 255, 255)
    assert compare(_page(), _page("#cc3333"), tolerance_pct=5).passed


def test_threshold_ignores_small_colour_shifts() -> None:
    slightly = compare(_page("#3366cc"), _page("#3467cd"), threshold=0.1)
    assert slightly.changed_pixels == 0
    strict = compare(_page("#3366cc"), _page("#3467cd"), threshold=0.0)
    assert strict.changed_pixels == 200 * 100


def test_excluded_regions_are_not_compared() -> None:
    result = compare(_page(), _page("#cc3333"), exclude=[Region(30, 90, 300, 200)], tolerance_pct=0)
    assert result.changed_pixels == 0 and result.passed
    assert result.compared_pixels == 1280 * 800 - 300 * 200


def test_size_mismatch_counts_the_missing_area() -> None:
    result = compare(_page(size=(100, 100)), _page(size=(100, 120)))
    assert result.size_mismatch
    assert result.changed_pixels == 100 * 20
    assert (result.width, result.height) == (100, 120)


def test_transparent_pixels_blend_with_white() -> None:
    clear = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    white = Image.new("RGBA", (10, 10), (255, 255, 255, 255))
    assert compare(clear, white, threshold=0.0).changed_pixels == 0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        compare(_page(), _page(), threshold=2)
    with pytest.raises(ValueError, match="tolerance_pct"):
        compare(_page(), _page(), tolerance_pct=-1)


def test_real_screenshots_of_the_lab(browser: Browser, tmp_path: Path) -> None:
    def shoot(color: str, folder: str) -> tuple[Path, dict[str, float]]:
        result = browser.run(
            {
                "name": "visual",
                "start_url": f"/visual?color={color}",
                "steps": [
                    {"screenshot": "page"},
                    {
                        "execute_js": "const r = document.getElementById('clock').getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}",
                        "variable": "clock",
                    },
                ],
            },
            artifacts_dir=tmp_path / folder,
        )
        assert result.status == "passed", explain(result)
        return tmp_path / folder / result.screenshots[0].path, json.loads(result.variables["clock"])

    first, clock = shoot("3366cc", "a")
    second, _ = shoot("3366cc", "b")
    changed, _ = shoot("cc3333", "c")
    clock_region = Region(
        int(clock["x"]), int(clock["y"]), int(clock["w"]) + 1, int(clock["h"]) + 1
    )
    # The clock text differs between loads; excluded, the two shots are identical.
    same = compare(first, second, exclude=[clock_region], tolerance_pct=0)
    assert same.changed_pixels == 0 and same.passed
    different = compare(first, changed, exclude=[clock_region], diff_path=tmp_path / "d.png")
    assert different.changed_pixels == 200 * 120
    assert not different.passed
    assert (tmp_path / "d.png").is_file()


def test_screenshots_can_paint_over_dynamic_elements(browser: Browser, tmp_path: Path) -> None:
    shots = []
    for folder in ("a", "b"):
        result = browser.run(
            {
                "name": "masked",
                "start_url": "/visual",
                "steps": [{"screenshot": "page", "exclude": "#clock"}],
            },
            artifacts_dir=tmp_path / folder,
        )
        assert result.status == "passed", explain(result)
        shots.append(tmp_path / folder / result.screenshots[0].path)
    assert compare(shots[0], shots[1], tolerance_pct=0).changed_pixels == 0
    pixels = np.asarray(Image.open(shots[0]).convert("RGB"))
    assert (pixels == (255, 0, 255)).all(axis=-1).any()  # the clock is painted over
