"""What the browser tests share: Debian's headless Chromium driven by Selenium (never a downloaded
browser or driver: Selenium Manager is kept offline), a check that it is installed, and the
page probes both test files use (tests/test_browser.py, tests/test_plots_offline.py).

Environment:
  SONIC_SCREENSHOTS=<folder>  also copy the screenshots the tests take there;
  SONIC_SKIP_BROWSER=1        skip when Chromium is missing (otherwise that is a failure).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,800"]
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost"  # no host name resolves
WAIT = 30  # s, the most any page update may take on a busy 2-core machine

# The fraction of a canvas's pixels that differ from its top-left pixel (0 for a blank one).
DRAWN = """
const c = arguments[0];
if (!c.width || !c.height) return 0;
const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) {
  if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) n++;
}
return n / (c.width * c.height);
"""


def require_chromium() -> None:
    """Fail (skip only with SONIC_SKIP_BROWSER=1) when Debian's Chromium is not installed; call
    it before any slow set-up (training models, running DVC)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = (f"{' and '.join(missing)} not found: install them with `apt-get install "
                   "chromium chromium-driver` (or set SONIC_SKIP_BROWSER=1 to skip)")
        if os.environ.get("SONIC_SKIP_BROWSER") == "1":
            pytest.skip(message)
        pytest.fail(message)


def start_chromium(profile: Path, monkeypatch: pytest.MonkeyPatch, extra_flags: tuple = (),
                   logs: tuple[str, ...] = ("browser",)):
    """A headless Chromium WebDriver in a 1280×800 window with a fresh profile in ``profile``,
    logging ``logs`` ("browser": the console, "performance": the network). Quit it when done."""
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, *extra_flags, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {kind: "ALL" for kind in logs})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def drawn(driver, element) -> float:
    """The fraction of a canvas's pixels that are drawn (differ from its corner)."""
    return driver.execute_script(DRAWN, element)


def console_errors(driver, allowed: tuple[str, ...] = ()) -> list[str]:
    """The console's SEVERE messages, less those containing one of ``allowed``."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(a in e["message"] for a in allowed)]


def keep_screenshots(*shots: Path) -> None:
    """Copy the screenshots to $SONIC_SCREENSHOTS when it is set."""
    if os.environ.get("SONIC_SCREENSHOTS"):
        folder = Path(os.environ["SONIC_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, folder / shot.name)
