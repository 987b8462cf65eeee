"""The Billing page in a real headless Chromium, on the demo's data (SPEC §12).

`bds demo` (a few days, few agents: its late-data step restates one acme day) writes the
files; a real `airflow api-server` serves the UI with the bds plugin. The browser logs in
through Airflow's login form, opens Billing from the UI (the plugin's iframe), picks a
tenant, checks a day's values against its billing CSVs, downloads a file and compares
bytes, and opens the restated day's corrections. Screenshots go to the test's folder, and
to docs/ with BDS_UPDATE_SCREENSHOTS=1 (the README's pictures).

Chromium and its driver are Debian's `chromium` and `chromium-driver`; the test installs
them with apt-get when missing and it runs as root, and is skipped, saying why, otherwise.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui_server import ApiServer

pytestmark = pytest.mark.xdist_group("airflow")
REPO = Path(__file__).resolve().parents[1]


def _chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths, installing Debian's packages when possible."""
    def found() -> tuple[str | None, str | None]:
        return shutil.which("chromium"), shutil.which("chromedriver")

    browser, driver = found()
    if browser and driver:
        return browser, driver
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium/chromium-driver missing and cannot be installed "
                    "(not root or no apt-get): apt-get install chromium chromium-driver")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.skip(f"cannot install chromium: {' '.join(cmd)}: {r.stderr[-300:]}")
    browser, driver = found()
    if not (browser and driver):
        pytest.skip("chromium installed but not on PATH")
    return browser, driver


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo's files (BDS_BROWSER_DEMO: reuse the root of an earlier such run)."""
    reuse = os.environ.get("BDS_BROWSER_DEMO")
    if reuse:
        return Path(reuse)
    root = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "BDS_", "PYTEST_"))}
    r = subprocess.run([str(Path(sys.executable).with_name("bds")), "demo", "--root", str(root),
                        "--days", "4", "--agents", "60"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "restated day       2026-02-25" in r.stdout, r.stdout[-2000:]
    return root


@pytest.fixture(scope="module")
def server(demo, airflow_db) -> Iterator[ApiServer]:
    s = ApiServer(demo / "api", demo / "bds.yaml").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    chromium, chromedriver = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1500,1150",
                 f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    d = webdriver.Chrome(options=opts, service=Service(chromedriver))
    d.execute_cdp_cmd("Browser.setDownloadBehavior",
                      {"behavior": "allow", "downloadPath": str(downloads)})
    d.downloads = downloads
    try:
        yield d
    finally:
        d.quit()


def _wait(what: str, check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # stale elements while the page renders
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def _click(d, element) -> None:
    """Scroll the element to the middle of the view (the page's bar is sticky), click."""
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _shot(d, name: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(out / name))
    if os.environ.get("BDS_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(out / name, REPO / "docs" / name)


def test_billing_page_in_chromium(demo, server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    d = browser
    shots = tmp_path / "screenshots"
    # Log in through Airflow's own login form.
    d.get(server.url + "/auth/login")
    user = _wait("the login form", lambda: d.find_element(
        By.CSS_SELECTOR, "input:not([type=password]):not([type=hidden])"))
    user.send_keys("bds")
    d.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(server.passwords["bds"])
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait("the session cookie", lambda: d.get_cookie("_token"))

    # The Billing entry of Airflow's navigation leads to the plugin's page (an iframe).
    d.get(server.url + "/")
    entry = _wait("the Billing entry in the navigation", lambda: (
        d.find_elements(By.CSS_SELECTOR, 'a[href$="plugin/billing"]') or
        [e for e in d.find_elements(By.CSS_SELECTOR, "a, button") if e.text.strip() == "Billing"]
    ))[0]
    entry.click()
    _wait("the Billing page's address", lambda: d.current_url.endswith("/plugin/billing"))
    frame = _wait("the plugin's iframe", lambda: d.find_element(By.TAG_NAME, "iframe"))
    assert frame.get_attribute("src").endswith("/bds/")
    d.switch_to.frame(frame)
    _wait("the tenant list", lambda: d.find_elements(By.CSS_SELECTOR, "#tenant-list option"))

    # Pick a tenant and the demo's weeks (the default range ends yesterday).
    _wait("the first tenant's calendar", lambda: d.find_elements(By.CSS_SELECTOR, ".day"))
    search = d.find_element(By.ID, "tenant-search")
    search.clear()
    search.send_keys("acme")
    for field, value in (("from", "2026-02-09"), ("to", "2026-03-03")):
        d.execute_script("arguments[0].value = arguments[1]", d.find_element(By.ID, field), value)
    d.find_element(By.ID, "show").click()
    states = dict(_wait("acme's calendar of the demo's weeks", lambda: [
        s for s in [d.execute_script(
            "return [...document.querySelectorAll('.day[data-day]')]"
            ".map(e => [e.dataset.day, e.dataset.state])")]
        if ["2026-02-23", "published"] in s][0]))
    out = demo / "out" / "acme"
    days = sorted(p.name for p in (out / "daily").iterdir())
    assert days == ["2026-02-23", "2026-02-24", "2026-02-25", "2026-02-26"]
    assert states["2026-02-23"] == "published" and states["2026-02-25"] == "restated"
    assert states["2026-02-27"] == "missing"  # the demo billed four days
    assert "2026-02-22" not in states  # before the production date: no billing day
    _wait("the chart", lambda: d.execute_script(
        "return window.Chart && Chart.getChart('chart') && "
        "Chart.getChart('chart').data.datasets.length"))
    _shot(d, "billing-calendar.png", shots)  # calendar and chart of the range

    # A day's values equal its billing CSVs (every scope, region, metric and group).
    day = "2026-02-24"
    _click(d, d.find_element(By.CSS_SELECTOR, f'.day[data-day="{day}"]'))
    _wait("the day's values",
          lambda: d.find_elements(By.CSS_SELECTOR, "#values-table td[data-metric]"))
    assert day in d.find_element(By.ID, "period-title").text
    shown = {(c.get_attribute("data-metric"), c.get_attribute("data-scope"),
              c.get_attribute("data-region"), c.get_attribute("data-group")): c.text
             for c in d.find_elements(By.CSS_SELECTOR, "#values-table td[data-metric]")}
    want = {}
    for f in (out / "daily" / day).glob("*.csv"):
        if f.name.startswith(("audit_", "corrections_")):
            continue
        for r in csv.DictReader(io.StringIO(f.read_text())):
            want[(r["MetricName"], r["Tier3AccountID"], r["Region"], r["AgentGroupName"])] = \
                r["MessageSize"]
    assert shown == want
    assert "every file matches" in d.find_element(By.ID, "verify-badge").text
    _shot(d, "billing-day.png", shots)

    # The audit tab names agents with user name and employee id.
    _click(d, d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="audit"]'))
    chips = d.find_elements(By.CSS_SELECTOR, "#audit-table .agent")
    assert chips and any("·" in c.text for c in chips)
    _shot(d, "billing-audit.png", shots)

    # Download a file through the API server and compare bytes.
    _click(d, d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="files"]'))
    name = f"acme_seats_chat_{day.replace('-', '')}.csv"
    _click(d, d.find_element(By.CSS_SELECTOR, f'#files-table a[data-file="{name}"]'))
    got = _wait("the download", lambda: (d.downloads / name).exists() and
                (d.downloads / name).read_bytes())
    assert got == (out / "daily" / day / name).read_bytes()

    # The restated day: its versions and corrections.
    restated = "2026-02-25"
    _click(d, d.find_element(By.CSS_SELECTOR, f'.day[data-day="{restated}"]'))
    _wait("the restated day", lambda: "restated" in d.find_element(By.ID, "version-badge").text)
    _click(d, d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="versions"]'))
    table = _wait("the corrections", lambda: d.find_element(
        By.CSS_SELECTOR, 'table.corrections[data-version="2"]'))
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    corr = list(csv.DictReader(io.StringIO(
        (out / "daily" / restated / "corrections_20260225_v2.csv").read_text())))
    assert len(rows) == len(corr) > 0
    for shown_row, r in zip(rows, corr, strict=True):
        assert shown_row[2:7] == [r["Region"], r["MetricName"], r["AgentGroupName"],
                                  r["OldMessageSize"], r["NewMessageSize"]]
        change = int(r["NewMessageSize"]) - int(r["OldMessageSize"])
        assert shown_row[7] == f"{change:+d}"
    _shot(d, "billing-restated.png", shots)

    d.switch_to.default_content()
