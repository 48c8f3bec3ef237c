"""The served page as a person sees it: headless Chromium at 1100x900, no two blocks overlap
(the dashed drop zone once ran through the second line of the introduction)."""

from __future__ import annotations

import base64
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from bench.stand_ins import png_bytes

PAGE = Path(__file__).resolve().parents[1] / "fmnist" / "inference" / "static" / "index.html"
#: The page's blocks, each a rectangle that must not cross another.
BLOCKS = ["h1", "#intro", "#drop", "#error", "#photo", "#tile", "#answer"]
#: What the server answers, shown as the page shows an answer.
ANSWER = """
show({class: "Sneaker", top: [{class: "Sneaker", probability: 0.9},
  {class: "Sandal", probability: 0.07}, {class: "Ankle boot", probability: 0.03}],
  ood: false, ood_score: -1.2, background: "removed",
  tile: arguments[0]});
document.getElementById("error").style.display = "block";
document.getElementById("error").textContent = "An error, shown for the test";
"""
RECTS = """
return arguments[0].map((selector) => {
  const r = document.querySelector(selector).getBoundingClientRect();
  return [selector, r.left, r.top, r.right, r.bottom];
});
"""


def overlap(a: list, b: list) -> float:
    """Area shared by two rectangles (left, top, right, bottom)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


def test_no_two_blocks_of_the_page_overlap_at_1100x900() -> None:
    from test_serve import chromium_driver

    driver = chromium_driver()
    try:
        driver.set_window_size(1100, 900)
        driver.get(PAGE.as_uri())
        tile = base64.b64encode(png_bytes(np.zeros((28, 28), np.uint8))).decode()
        driver.execute_script(ANSWER, f"data:image/png;base64,{tile}")
        rects = driver.execute_script(RECTS, BLOCKS)
        text = driver.find_element("id", "intro").text
    finally:
        driver.quit()
    for rect in rects:
        assert rect[3] > rect[1] and rect[4] > rect[2], f"{rect[0]} is not shown"
    crossing = [(a[0], b[0]) for a, b in combinations(rects, 2) if overlap(a[1:], b[1:]) > 0]
    assert not crossing, crossing
    assert "light background" not in text and "any colour" in text


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
