"""`dvc plots show` and `dvc plots diff` with no network: the real commands in a tiny git + DVC
repository carrying this project's `.dvc/` (config, offline HTML template, confusion template),
each page opened in Debian's headless Chromium with every host name unresolvable.

Environment (as tests/test_browser.py):
  SONIC_SCREENSHOTS=<folder>  also save the full-page screenshots there;
  SONIC_SKIP_BROWSER=1        skip the browser tests when Chromium is missing (else a failure).
"""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
from configobj import ConfigObj

from browser_helpers import (OFFLINE, WAIT, console_errors, drawn, keep_screenshots,
                             require_chromium, start_chromium)

REPO = Path(__file__).resolve().parents[1]
# the template's builder, a maintainer's tool beside the page it builds (not library code)
_spec = importlib.util.spec_from_file_location("dvc_html_build", REPO / ".dvc/html/build.py")
build = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
dvc_render_pins, inlined, vendored = build.dvc_render_pins, build.inlined, build.vendored
DVC_FILES = ("config", ".gitignore", "html/plots.html", "plots/confusion_adaptive.json")
ESC50 = [f"class_{i:02d}_{'abcdefghijkl'[:i % 13]}" for i in range(50)]  # 9-21 characters

# Two plot files whose DVC ids collide (both become "curves_train_loss_csv"), a JSON and a CSV
# confusion, and an image: five plots, each to be drawn exactly once.
PLOTS = """\
plots:
  - curves/train/loss.csv:
      x: epoch
      y: [loss, accuracy]
  - curves/train_loss.csv:
      x: epoch
      y: loss
  - confusion/small.json:
      template: confusion_adaptive
      x: predicted
      y: actual
  - confusion/esc50.csv:
      template: confusion_adaptive
      x: predicted
      y: actual
  - images/grid.png
"""
BOXES = {"curves_train_loss_csv": 2, "confusion_small_json": 1, "confusion_esc50_csv": 1,
         "images_grid_png": 1}  # DVC's <div> ids on the page → how many
VEGA_TITLES = ["curves/train/loss.csv", "curves/train_loss.csv", "confusion/small.json",
               "confusion/esc50.csv"]

# Per Vega box: its title, canvas size, and for a confusion its band steps (px), panels, and
# each axis's labels with their bounds (scene-graph coordinates, px).
VIEWS = """
function walk(node, out) {
  if (node.marktype && node.role === "title-text") node.items.forEach(i => out.titles.push(i.text));
  if (node.marktype === "group" && node.role === "axis") {
    node.items.forEach(axis => {
      const labels = [];
      (function find(n) {
        if (n.marktype && n.role === "axis-label") n.items.forEach(i => labels.push(
          {text: i.text, b: [i.bounds.x1, i.bounds.y1, i.bounds.x2, i.bounds.y2]}));
        (n.items || []).forEach(find);
      })(axis);
      out.axes.push(labels);
    });
    return;
  }
  (node.items || []).forEach(c => walk(c, out));
}
return Array.from(document.querySelectorAll(".vega-embed")).map(box => {
  const view = box.vegaView, canvas = box.querySelector("canvas");
  const out = {id: box.id, titles: [], axes: [], width: canvas.clientWidth,
               height: canvas.clientHeight};
  walk(view.scenegraph().root, out);
  try {
    out.steps = [view.scale("x").step(), view.scale("y").step()];
    out.panels = view.data("panels").length;
  } catch (e) { out.steps = null; }
  return out;
});
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=sonic-test", "-c", "user.email=test@localhost",
                    *args], cwd=root, check=True, capture_output=True)


def dvc(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def png(width: int, height: int) -> bytes:
    """An RGB gradient as a PNG file (stdlib only)."""
    rows = b"".join(b"\0" + bytes(v for x in range(width)
                                  for v in (255 * x // width, 255 * y // height, 128))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def confusion(classes: list[str], per_class: int, seed: int) -> list[dict]:
    """(actual, predicted) rows, 70 % right, the rest a random class."""
    rng = random.Random(seed)
    return [{"actual": c, "predicted": c if rng.random() < 0.7 else rng.choice(classes)}
            for c in classes for _ in range(per_class)]


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(rows[0]) + "\n"
                    + "".join(",".join(str(v) for v in r.values()) + "\n" for r in rows))


def curve(epochs: int, scale: float) -> list[dict]:
    return [{"epoch": e, "loss": round(scale / (e + 1), 3), "accuracy": round(e / 10, 2)}
            for e in range(epochs)]


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git + DVC repository with this project's .dvc/ files and five plots."""
    root = tmp_path_factory.mktemp("plots-repo")
    for name in DVC_FILES:
        (root / ".dvc" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / ".dvc" / name, root / ".dvc" / name)
    write_csv(root / "curves/train/loss.csv", curve(6, 1.0))
    write_csv(root / "curves/train_loss.csv", [{k: r[k] for k in ("epoch", "loss")}
                                               for r in curve(6, 2.0)])
    (root / "confusion").mkdir()
    (root / "confusion/small.json").write_text(json.dumps(
        confusion(["dog_bark", "rain", "siren"], 10, seed=0)))
    write_csv(root / "confusion/esc50.csv", confusion(ESC50, 8, seed=1))
    (root / "images").mkdir()
    (root / "images/grid.png").write_bytes(png(96, 48))
    (root / "dvc.yaml").write_text(PLOTS)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "plots")
    return root


@pytest.fixture(scope="module")
def pages(plots_repo: Path) -> dict[str, Path]:
    """``dvc plots show`` of the commit, then ``dvc plots diff HEAD`` once a curve has changed
    in the workspace: {"show": index.html, "diff": index.html}."""
    dvc(plots_repo, "plots", "show", "-o", "show")
    write_csv(plots_repo / "curves/train/loss.csv", curve(8, 1.5))
    dvc(plots_repo, "plots", "diff", "HEAD", "-o", "diff")
    return {kind: plots_repo / kind / "index.html" for kind in ("show", "diff")}


@pytest.fixture(scope="module")
def chromium() -> None:
    """Chromium is checked before DVC runs."""
    require_chromium()


@pytest.fixture
def browser(chromium: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Headless Debian Chromium that resolves no host name, logging the console and network."""
    driver = start_chromium(tmp_path / "profile", monkeypatch, (OFFLINE,),
                            ("browser", "performance"))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver) -> list[str]:
    """Every URL the browser asked for, from Chromium's network log."""
    events = (json.loads(e["message"])["message"] for e in driver.get_log("performance"))
    return [e["params"]["request"]["url"] for e in events
            if e["method"] == "Network.requestWillBeSent"]


def full_page_screenshot(driver, path: Path) -> Path:
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    keep_screenshots(path)
    return path


def overlaps(labels: list[dict]) -> list[tuple[str, str]]:
    """Neighbouring axis labels whose boxes intersect (by more than half a pixel)."""
    along = 0 if max(b["b"][0] for b in labels) - min(b["b"][0] for b in labels) > \
        max(b["b"][1] for b in labels) - min(b["b"][1] for b in labels) else 1
    ordered = sorted(labels, key=lambda label: label["b"][along])
    return [(a["text"], b["text"]) for a, b in zip(ordered, ordered[1:])
            if min(a["b"][2], b["b"][2]) - max(a["b"][0], b["b"][0]) > 0.5
            and min(a["b"][3], b["b"][3]) - max(a["b"][1], b["b"][1]) > 0.5]


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")  # checked before `pages` runs DVC
@pytest.mark.parametrize("kind", ["show", "diff"])
def test_page_draws_every_plot_offline(kind: str, pages: dict[str, Path], browser,
                                       tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = pages[kind]
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "cdn.jsdelivr.net" not in html and "Content-Security-Policy" in html

    browser.get(page.as_uri())
    revs = 2 if kind == "diff" else 1
    WebDriverWait(browser, WAIT, poll_frequency=0.1).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('.vega-embed')).every(b => b.vegaView)"
        " && document.querySelectorAll('.vega-embed').length === 4"
        " && Array.from(document.images).every(i => i.complete)"), f"{kind}: plots not drawn")

    # The libraries that run are the inlined releases dvc-render would have loaded.
    versions = browser.execute_script("return [vega.version, vegaLite.version, vegaEmbed.version]")
    assert versions == list(dvc_render_pins().values())
    # Each declared plot exactly once, in its own box: five boxes, two of them sharing an id.
    ids = browser.execute_script("return Array.from(document.body.children, e => e.id)")
    assert sorted(ids) == sorted(i for i, n in BOXES.items() for _ in range(n))
    images = browser.find_elements(By.CSS_SELECTOR, "#images_grid_png img")
    assert len(images) == revs
    assert all(browser.execute_script("return arguments[0].naturalWidth", i) == 96
               for i in images)

    views = browser.execute_script(VIEWS)
    assert sorted(next(t for t in v["titles"] if t in VEGA_TITLES) for v in views) \
        == sorted(VEGA_TITLES)
    for box in browser.find_elements(By.CSS_SELECTOR, ".vega-embed"):
        canvas = box.find_element(By.TAG_NAME, "canvas")
        assert canvas.size["width"] > 200 and canvas.size["height"] > 200
        assert drawn(browser, canvas) > 0.02

    small, esc50 = (next(v for v in views if v["id"] == f"confusion_{name}")
                    for name in ("small_json", "esc50_csv"))
    assert small["panels"] == esc50["panels"] == revs
    assert min(small["steps"]) >= 40, small["steps"]  # 3 classes: big cells, counts inside
    assert min(esc50["steps"]) >= 10, esc50["steps"]  # 50 classes: ≥ 10 px per class
    assert esc50["width"] >= 50 * 10 and esc50["height"] >= 50 * 10
    assert len(esc50["axes"]) == 2 * revs
    for labels in esc50["axes"]:
        assert sorted(label["text"] for label in labels) == sorted(ESC50)
        assert overlaps(labels) == []

    shot = full_page_screenshot(browser, tmp_path / f"dvc-plots-{kind}.png")
    assert shot.stat().st_size > 20_000
    assert console_errors(browser) == []
    assert [u for u in requested_urls(browser) if re.match(r"(https?|wss?|ftp):", u)] == []


def test_config_uses_the_offline_template() -> None:
    config = ConfigObj(str(REPO / ".dvc/config"))
    assert config["core"]["analytics"] == "false" and config["core"]["check_update"] == "false"
    assert (REPO / ".dvc" / config["plots"]["html_template"]) == REPO / ".dvc/html/plots.html"


def test_template_inlines_the_pinned_libraries_and_links_nothing() -> None:
    page = (REPO / ".dvc/html/plots.html").read_text()
    listed, code = vendored(page), inlined(page)
    own = page  # the page less the libraries' code: its tags, the embed wrapper, the style
    for text in code.values():
        own = own.replace(text, "")
    assert own.count("{plot_divs}") == 1 and "{scripts}" not in own
    assert not re.search(r"src\s*=|href\s*=|@import|url\(|<link|https?:", own, re.I), own
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    assert {n: v["version"] for n, v in listed.items()} == dvc_render_pins(), \
        "dvc-render pins other releases: run `python .dvc/html/build.py`"
    for name, entry in listed.items():
        assert hashlib.sha256(code[name].encode()).hexdigest() == entry["sha256"], name
        assert "Redistribution" in (REPO / f".dvc/html/LICENSE-{name}.txt").read_text()


def test_confusion_template_reads_only_dvc_data() -> None:
    text = (REPO / ".dvc/plots/confusion_adaptive.json").read_text()
    spec = json.loads(text)
    assert spec["data"][0] == {"name": "table", "values": "<DVC_METRIC_DATA>"}
    assert "<DVC_METRIC_X>" in text and "<DVC_METRIC_Y>" in text
    assert re.findall(r"https?://[^\"]*", text) == [spec["$schema"]]  # an id, never fetched
    assert '"url"' not in text


def repeated_plots(root: str | Path, rev: str = "workspace") -> dict[str, list[str]]:
    """Files that ``dvc plots show`` draws more than once: {file: ["<dvc.yaml or stage
    outputs>: <plot id>", ...]}.

    A file is drawn on its own when a stage lists it (or its folder) under ``plots:`` or when a
    top-level entry is named after it; it is drawn twice when another definition uses it too.
    Several top-level plots of one file's different columns are not repeats.
    """
    from dvc.repo import Repo
    from dvc.repo.plots import infer_data_sources

    with Repo(str(root)) as repo:
        definitions = repo.plots.show()[rev]["definitions"]["data"]
    uses: dict[str, list[str]] = defaultdict(list)
    alone: set[str] = set()
    for config, plots in definitions.items():
        for plot_id, props in plots["data"].items():
            files = infer_data_sources(plot_id, props)
            alone |= {plot_id} & set(files)
            for file in files:
                uses[file].append(f"{config or 'stage outputs'}: {plot_id}")
    return {file: ids for file, ids in uses.items() if file in alone and len(ids) > 1}


def test_each_file_is_plotted_once(plots_repo: Path, tmp_path: Path) -> None:
    assert repeated_plots(plots_repo) == {}
    # A stage that also lists a file under plots: draws it a second time, on its own.
    copy = tmp_path / "repo"
    shutil.copytree(plots_repo, copy, ignore=shutil.ignore_patterns("show", "diff"))
    with open(copy / "dvc.yaml", "a") as f:
        f.write("stages:\n  train:\n    cmd: 'true'\n    plots:\n"
                "      - curves/train_loss.csv:\n          cache: false\n")
    assert list(repeated_plots(copy)) == ["curves/train_loss.csv"]


def test_project_plots_each_file_once() -> None:
    assert repeated_plots(REPO) == {}
