"""A test's ``visual`` settings: validated in the spec, and its ``exclude`` elements painted over
in the final screenshot (the one compared with the baseline) by the real runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bastion.browser.diff import compare
from bastion.browser.spec import SpecError, dump_test, load_test
from tests.browser.conftest import Browser, explain


def test_visual_settings_round_trip_and_bad_values_name_the_field() -> None:
    test = load_test(
        {"name": "v", "visual": {"tolerance_pct": 1.5, "threshold": 0.2, "exclude": "#clock"}}
    )
    assert (test.visual.tolerance_pct, test.visual.threshold) == (1.5, 0.2)
    assert load_test(yaml.safe_load(dump_test(test))) == test
    assert "visual" not in dump_test(load_test({"name": "plain"}))
    with pytest.raises(SpecError) as caught:
        load_test({"name": "v", "visual": {"tolerance_pct": 101, "threshold": "x", "colour": 1}})
    fields = {problem.field for problem in caught.value.problems}
    assert fields == {"visual.tolerance_pct", "visual.threshold", "visual.colour"}
    with pytest.raises(SpecError, match=r"visual\.exclude"):
        load_test({"name": "v", "visual": {"exclude": ["role=nonsense"]}})


def test_excluded_elements_are_painted_over_in_the_final_screenshot(
    browser: Browser, tmp_path: Path
) -> None:
    shots = []
    for folder in ("a", "b"):
        result = browser.run(
            {"name": "masked", "start_url": "/visual", "visual": {"exclude": ["#clock"]}},
            artifacts_dir=tmp_path / folder,
            final_screenshot=True,
        )
        assert result.status == "passed", explain(result)
        shots.append(tmp_path / folder / result.final_screenshot)
    # The clock changes on every load; painted over, the two final screenshots are identical.
    assert compare(shots[0], shots[1], tolerance_pct=0).changed_pixels == 0
    pixels = np.asarray(Image.open(shots[0]).convert("RGB"))
    assert (pixels == (255, 0, 255)).all(axis=-1).any()
