"""The report in a real browser: headless Chromium loads reports/index.html from a fake tree;
no image may be broken, nothing may be logged as an error, no request may leave the page
(self-contained), and a screenshot is saved.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
messages ending in NUL on file descriptors 3 and 4), so no driver package is needed. A
negative control proves the checks can fail. Skipped when no Chromium is installed
(Debian: `apt-get install -y chromium`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from report_fake_tree import build_tree, many_metrics

from aebench.report import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install -y chromium)")

WIDTH, HEIGHT = 1400, 2000
CHECK_IMAGES = """JSON.stringify(Array.from(document.images).map(
    i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})))"""
# Every metric table as laid out: its suite, widest row in cells, size on screen, and whether
# it fits its wrapper without a horizontal scroll bar.
CHECK_TABLES = """JSON.stringify(Array.from(document.querySelectorAll("table.metrics")).map(t => ({
    dataset: t.dataset.dataset, suite: t.dataset.suite,
    title: t.closest(".table-wrap").previousElementSibling.textContent,
    columns: Math.max(...Array.from(t.rows).map(r => Array.from(r.cells).reduce((n, c) => n + c.colSpan, 0))),
    rows: t.tBodies[0].rows.length, width: t.getBoundingClientRect().width, height: t.getBoundingClientRect().height,
    fits: t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1})))"""


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, user_data: Path, timeout: float = 60.0):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Move the child's ends to 10 or above, so that wiring them to 3 and 4 clobbers neither.
        low = (to_browser_r, from_browser_w)
        to_browser_r, from_browser_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in low)
        for fd in low:
            os.close(fd)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--mute-audio", f"--user-data-dir={user_data}",
                 f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-pipe", "about:blank"]
        # The browser reads commands on fd 3 and writes replies on fd 4; bash puts the pipe
        # ends there (no preexec_fn, which is unsafe once a test session has threads).
        wire = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", wire, BROWSER, *flags], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     pass_fds=(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.deadline = time.monotonic() + timeout
        self.events: list[dict] = []
        self._buffer = b""
        self._next_id = 0

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe: {self.proc.stderr.read().decode()[-2000:]}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)


def load_page(page: Path, user_data: Path, screenshot: Path) -> dict:
    """Open `page`, wait for load, and return its images, metric tables, console errors and
    outside requests."""
    browser = DevTools(user_data)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_for("Page.loadEventFired")
        images = json.loads(browser.send("Runtime.evaluate", {"expression": CHECK_IMAGES, "returnByValue": True},
                                         session)["result"]["value"])
        tables = json.loads(browser.send("Runtime.evaluate", {"expression": CHECK_TABLES, "returnByValue": True},
                                         session)["result"]["value"])
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        screenshot.write_bytes(base64.b64decode(shot))
        # The whole page at half scale beside it, for a person to look at.
        size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 30000), "scale": 0.5}
        shot = browser.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                            session)["data"]
        screenshot.with_name(screenshot.stem + "_full.png").write_bytes(base64.b64decode(shot))
        errors, requests = [], []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
            elif method == "Network.requestWillBeSent":
                requests.append(params["request"]["url"])
        return {"images": images, "tables": tables, "errors": errors, "requests": requests}
    finally:
        browser.close()


def broken(images: list[dict]) -> list[str]:
    return [i["alt"] for i in images if not i["complete"] or i["width"] == 0]


def outside(requests: list[str]) -> list[str]:
    return [url for url in requests if not url.startswith(("data:", "file:"))]


def test_checks_catch_a_broken_page(tmp_path):
    """Negative control: a broken data URI, a missing file and a console error are all seen."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="bad-data" src="data:image/png;base64,AAAA">'
                    '<img alt="missing" src="missing.png"><script>console.error("boom")</script></body></html>')
    seen = load_page(page, tmp_path / "profile", tmp_path / "bad.png")
    assert set(broken(seen["images"])) == {"bad-data", "missing"}
    assert any("boom" in e for e in seen["errors"]), seen["errors"]
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in seen["errors"]), seen["errors"]


def test_report_loads_cleanly_in_chromium(tmp_path):
    metrics = {
        "digits": {"ae": {"recon_mse": 0.02, "knn_acc": 0.90, "ood_auroc": 0.70},
                   "vae": {"recon_mse": 0.03, "knn_acc": 0.93, "ood_auroc": 0.80, "coding_cost_nats": 30.0},
                   "mlvae": {"recon_mse": 0.05, "content_acc": 0.85, "style_acc": 0.15, "chance_acc": 0.11}},
        "lines": {"ae": {"recon_mse": 0.01, "interp_mean_distance": 0.0068, "interp_smoothness": 0.44},
                  "acai": {"recon_mse": 0.01, "interp_mean_distance": 0.0002, "interp_smoothness": 0.10}},
    }
    root = build_tree(tmp_path / "repo", metrics, extra_kinds={("digits", "mlvae"): ["swap_grid"],
                                                               ("lines", "acai"): ["interpolations"]},
                      roc=(("digits", "ae"), ("digits", "vae")), n_classes={"digits": 10})
    html_path, _ = build_report(root)
    shot = tmp_path / "shot.png"
    seen = load_page(html_path, tmp_path / "profile", shot)
    # 3 + 3 + 4 figures on digits, 3 + 4 on lines, 2 training-curve figures, and the seeds figure
    # of the one claim row with values (the packaged ML-VAE claim on digits).
    assert len(seen["images"]) == 20
    assert sum(i["alt"].startswith("every seed's value") for i in seen["images"]) == 1
    assert broken(seen["images"]) == []
    assert seen["errors"] == []
    assert outside(seen["requests"]) == []

    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        colours = image.convert("L").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20  # something was drawn, not a blank page


def test_split_metric_tables_render_in_chromium(tmp_path):
    """Every key the evaluate stage writes, on three datasets: each dataset's metrics are small
    tables by suite, each drawn, none over 14 columns nor wider than the page; the group-size
    figure loads."""
    root = build_tree(tmp_path / "repo", many_metrics(), models=["ae", "vae", "acai", "acn", "mlvae"],
                      n_classes={"digits": 10, "lines": 10, "shapes": 3},
                      factors={"lines": ("angle",), "shapes": ("shape", "scale")})
    html_path, _ = build_report(root)
    seen = load_page(html_path, tmp_path / "profile", tmp_path / "tables.png")
    assert broken(seen["images"]) == [] and seen["errors"] == [] and outside(seen["requests"]) == []
    tables = seen["tables"]
    digits = [t for t in tables if t["dataset"] == "digits"]
    assert [t["suite"] for t in digits] == ["reconstruction", "representation", "generative", "ood",
                                            "own", "own", "own", "time"]
    assert digits[4]["title"] == "Own metrics: vae, acn, mlvae"
    assert {t["dataset"] for t in tables} == {"digits", "lines", "shapes"}
    for t in tables:
        assert 2 <= t["columns"] <= 14, t
        assert t["rows"] >= 1 and t["width"] > 0 and t["height"] > 0, t
        assert t["fits"], t  # no table needs a horizontal scroll bar at 1400 px
    assert {i["alt"] for i in seen["images"]} >= {"Metrics by group size for digits",
                                                   "Metrics by group size for shapes"}
