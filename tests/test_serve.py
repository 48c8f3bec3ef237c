"""fmnist-serve as people use it: a real server process on a free localhost port, real PNG and
JPEG files, bad bodies, 100 concurrent requests, and the page in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_decode import SAMPLES, header_only_png

from bench.serving import post, served
from bench.stand_ins import as_photo, png_bytes
from bench.synthetic import make_images
from fmnist.data import CLASS_NAMES
from fmnist.inference.convert import convert

pytest.importorskip("litserve", reason="LitServe not installed (extra: serve)")
pytest.importorskip("multipart", reason="python-multipart not installed (extra: serve)")

pytestmark = pytest.mark.slow  # starting the server's processes takes 10-60 s
LABELS = [0, 3, 7, 9]
#: Small limits, so that requests at them stay cheap on a 2-core machine: a request holds at
#: most 8 images and 8 megapixels.
LIMITS = {"max_body_bytes": 2_000_000, "max_images": 8, "max_pixels": 8_000_000}


def multipart(files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "fmnist-test-boundary"
    parts = []
    for field, (name, data, kind) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"'
        parts.append(f"{head}\r\nContent-Type: {kind}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    """Synthetic tiles the tiny model knows (class = square position), light on black."""
    return make_images(torch.tensor(LABELS), seed=11).numpy()


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path, fake_data_dir: Path, tmp_path_factory) -> str:
    """The served tiny model's URL; stopping it with SIGTERM must end every process."""
    overrides = [
        f"ckpt={tiny_checkpoint}", f"ood.data_root={fake_data_dir}", "ood.search_system=false",
        "ood.strict=false", "ood.pass_rate=0.9", "max_batch_size=16", "log_level=info",
        *(f"{key}={value}" for key, value in LIMITS.items()),
    ]  # fmt: skip
    with served(overrides, tmp_path_factory.mktemp("serve")) as url:
        yield url


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def decoded_tile(answer: dict) -> np.ndarray:
    data = base64.b64decode(answer["tile"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)))


def test_png_jpeg_form_and_json_get_the_right_class(server, tiles) -> None:
    status, raw_png = post(f"{server}/predict", png_bytes(tiles[0]), "image/png")
    assert status == 200
    (answer,) = raw_png["predictions"]
    assert answer["class"] == CLASS_NAMES[LABELS[0]] and answer["label"] == LABELS[0]
    assert [t["class"] for t in answer["top"]][0] == answer["class"] and len(answer["top"]) == 3
    probabilities = [t["probability"] for t in answer["top"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert answer["probability"] == probabilities[0] and answer["ood"] is False
    assert isinstance(answer["ood_score"], float)
    assert np.array_equal(decoded_tile(answer), tiles[0])  # a tile is used as it is

    body, kind = multipart({"file": ("item.jpg", jpeg_bytes(tiles[1]), "image/jpeg")})
    status, form = post(f"{server}/predict", body, kind)
    assert status == 200 and form["predictions"][0]["label"] == LABELS[1]
    assert form["predictions"][0]["source"] == "item.jpg"

    encoded = [base64.b64encode(png_bytes(t)).decode() for t in tiles[2:]]
    encoded[1] = "data:image/png;base64," + encoded[1]
    status, listed = post(f"{server}/predict", json.dumps(encoded).encode(), "application/json")
    assert status == 200 and [p["label"] for p in listed["predictions"]] == LABELS[2:]


def test_a_photo_is_converted_and_the_tile_sent_back(server, tiles) -> None:
    photo = as_photo(tiles[0])  # 112x112, dark on white
    status, answer = post(f"{server}/predict", png_bytes(photo), "image/png")
    assert status == 200
    # the tile of the one conversion that predict and the page use too
    assert np.array_equal(decoded_tile(answer["predictions"][0]), convert(photo).tile)
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    status, strange = post(f"{server}/predict", png_bytes(noise), "image/png")
    assert status == 200 and strange["predictions"][0]["ood"] is True


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"just some text", "text/plain", 415, "Not an image"),
        (b"", "image/png", 400, "No image in the request"),
        (b"\x89PNG\r\n\x1a\n truncated", "image/png", 415, "Not an image"),
        (b"[not json", "application/json", 400, "not valid JSON"),
        (b'{"image": "abc"}', "application/json", 400, "list of base64 images"),
        (b'["%%%"]', "application/json", 400, "not valid base64"),
        (b"[42]", "application/json", 400, "not a base64 string"),
        (b"garbage", "multipart/form-data; boundary=x", 400, "multipart form"),
        (b"x" * 2_000_001, "image/png", 413, "over the limit of 2,000,000 bytes"),
        (header_only_png(6000, 6000), "image/png", 413, "32-megapixel limit"),
        (json.dumps([""] * 9).encode(), "application/json", 413, "at most 8"),
        (json.dumps([""] * 100_000).encode(), "application/json", 413, "More than 8 images"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(server, body, content_type, status, message):
    got, answer = post(f"{server}/predict", body, content_type)
    assert got == status and message in answer["detail"]


@pytest.mark.parametrize("kind", ["I;16", "CMYK", "animated"])
def test_the_server_sees_the_pixels_predict_sees(server, kind, tmp_path) -> None:
    from fmnist.inference.images import load_inputs

    _, data = SAMPLES[kind]()
    (tmp_path / "image").write_bytes(data)
    from_file = load_inputs([tmp_path / "image"]).images
    status, answer = post(f"{server}/predict", data, "application/octet-stream")
    assert status == 200, answer
    served = [decoded_tile(a) for a in answer["predictions"]]
    assert len(served) == len(from_file) and all(map(np.array_equal, served, from_file))


def test_the_server_survives_bad_requests_and_answers_100_at_once(server, tiles) -> None:
    post(f"{server}/predict", b"\x00" * 1000, "application/octet-stream")
    bodies = [png_bytes(tiles[i % len(LABELS)]) for i in range(100)]
    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(lambda b: post(f"{server}/predict", b, "image/png"), bodies))
    assert [status for status, _ in answers] == [200] * 100
    labels = [answer["predictions"][0]["label"] for _, answer in answers]
    assert labels == [LABELS[i % len(LABELS)] for i in range(100)]


def worst_case_body(side: int = 1000) -> bytes:
    """A request at the server's limits: 8 transparent ``side`` x ``side`` PNGs, each holding
    a light-grey item, as base64 JSON (1000: the 8-megapixel budget, just)."""
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[200:800, 300:700] = (200, 200, 200, 255)
    image = base64.b64encode(png_bytes(rgba)).decode()
    return json.dumps([image] * LIMITS["max_images"]).encode()


def test_four_worst_case_requests_do_not_stall_a_good_one(server, tiles) -> None:
    import time

    worst, good = worst_case_body(), png_bytes(tiles[2])
    status, over = post(f"{server}/predict", worst_case_body(1001), "application/json")
    assert status == 413 and "8,016,008 pixels, more than the 8,000,000" in over["detail"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        heavy = [
            pool.submit(post, f"{server}/predict", worst, "application/json") for _ in range(4)
        ]
        time.sleep(0.05)  # the four are in flight
        start = time.perf_counter()
        status, answer = post(f"{server}/predict", good, "image/png")
        waited = time.perf_counter() - start
        answers = [future.result() for future in heavy]
    assert status == 200 and answer["predictions"][0]["label"] == LABELS[2]
    assert waited < 2.0  # a few large requests take turns with it, they do not stall it
    assert [s for s, _ in answers] == [200] * 4
    assert {p["background"] for _, a in answers for p in a["predictions"]} == {"transparent"}


def test_the_page_is_one_html_file_without_outside_resources(server) -> None:
    with urllib.request.urlopen(f"{server}/", timeout=30) as response:
        assert response.status == 200 and "text/html" in response.headers["content-type"]
        html = response.read().decode()
    assert "<script>" in html and "<style>" in html and 'id="file"' in html
    assert "http://" not in html and "https://" not in html and "<link" not in html


def chromium_driver():
    """Headless Chromium driven by selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev)")
    driver_path = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not browser:
        pytest.skip("Chromium and chromedriver not found (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=driver_path)
    return webdriver.Chrome(options=options, service=service)


DROP = """
const [name, data] = arguments;
const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, { type: "image/png" }));
const drop = document.getElementById("drop");
const event = { dataTransfer: transfer, bubbles: true, cancelable: true };
drop.dispatchEvent(new DragEvent("drop", event));
"""


def test_page_in_headless_chromium_shows_the_class_tile_bars_and_flag(server, tiles, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    try:
        driver.get(f"{server}/")
        picked = tmp_path / "picked.png"
        picked.write_bytes(png_bytes(tiles[1]))
        driver.find_element(By.ID, "file").send_keys(str(picked))
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "class").text == CLASS_NAMES[LABELS[1]])
        assert len(driver.find_elements(By.CSS_SELECTOR, "#bars .bar")) == 3
        assert driver.execute_script("return document.getElementById('tile').naturalWidth") == 28
        assert "Looks like the training images" in driver.find_element(By.ID, "ood").text

        dropped = base64.b64encode(png_bytes(tiles[3])).decode()
        driver.execute_script(DROP, "dropped.png", dropped)
        wait.until(lambda d: d.find_element(By.ID, "class").text == CLASS_NAMES[LABELS[3]])

        driver.execute_script(DROP, "notes.png", base64.b64encode(b"not an image").decode())
        wait.until(lambda d: "Not an image" in d.find_element(By.ID, "error").text)
    finally:
        driver.quit()


def test_concurrent_requests_are_predicted_as_one_batch_and_split_back(
    tiny_checkpoint, fake_data_dir, tiles
) -> None:
    from fmnist.inference.serve import FashionMNISTAPI, tile_png

    ood = {"enabled": True, "data_root": str(fake_data_dir), "search_system": False}
    ood = {**ood, "strict": False, "pass_rate": 0.9}
    api = FashionMNISTAPI(str(tiny_checkpoint), ood, 2, max_batch_size=4)
    api.setup("cpu")
    requests = [
        api.decode_request({"images": [{"source": f"r{r}i{i}", "tile": tile_png(tiles[j])}]})[0]
        for r, i, j in ((0, 0, 0), (0, 1, 1), (1, 0, 2))
    ]
    batched = api.unbatch(api.predict(api.batch([requests[:2], requests[2:]])))
    single = api.predict(requests[:1])
    assert [[a["source"] for a in answers] for answers in batched] == [["r0i0", "r0i1"], ["r1i0"]]
    assert [[a["label"] for a in answers] for answers in batched] == [LABELS[:2], LABELS[2:3]]
    assert single[0]["probability"] == pytest.approx(batched[0][0]["probability"], abs=1e-6)
    assert len(single[0]["top"]) == 2 and api.encode_response(single) == {"predictions": single}


def test_bench_serving_measures_latency_percentiles(server, tiles) -> None:
    from bench.serving import markdown, measure

    latency = measure(server, png_bytes(as_photo(tiles[0])), concurrency=10, rounds=2)
    assert latency["requests"] == 20 and latency["errors"] == 0
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    assert latency["requests_per_s"] > 0
    machine = {"cpu": "x", "cores": 2, "gpu": None, "load_average_at_start": [1.0, 1.0, 1.0]}
    table = markdown({"machine": machine, "latency": latency, "date": "d", "command": "c",
                      "concurrency": 10, "rounds": 2})  # fmt: skip
    assert f"| p50 latency | {latency['p50_ms']:.0f} ms |" in table
