"""A lab member in a real browser: headless Chromium (Debian's package, driven through
Debian's chromedriver) opens the hub, logs in through its login page (the first login sets
the password) and reaches JupyterLab in their own server. The screenshot is kept in
test-artifacts/jupyterlab.png."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.browser import wait_for_jupyterlab
from tests.harness.cli import REPO

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
# What Chromium needs on these machines (TESTING-ENVIRONMENT.md): no sandbox as root, and no
# background connections to outside hosts.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_user_logs_in_through_the_login_page_and_reaches_jupyterlab(hub_lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{hub_lab.url}/hub/login")
    WebDriverWait(browser, 30).until(shown.presence_of_element_located((By.ID, "username_input")))
    browser.find_element(By.ID, "username_input").send_keys("carol")
    browser.find_element(By.ID, "password_input").send_keys("carol-in-the-browser-1")
    browser.find_element(By.ID, "login_submit").click()

    # The hub spawns carol's server and sends the browser on to JupyterLab in it.
    # Loaded: the splash screen is gone, the launcher is up, the file browser is in carol's home.
    wait_for_jupyterlab(browser, hub_lab.host, "carol")
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.CSS_SELECTOR, ".jp-Launcher")))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot}")

    assert "/user/carol/lab" in browser.current_url
    assert "JupyterLab" in browser.title
    assert hub_lab.docker("inspect --format '{{.Config.User}}' jupyter-carol") == ":".join(
        hub_lab.host.exec("id -u jupyter-carol; id -g jupyter-carol").stdout.split()
    )
    assert Path(screenshot).stat().st_size > 10_000

    # Her memory use against her limit (hub.mem_limit 1G) in the status bar: jupyter-resource-usage.
    WebDriverWait(browser, 60).until(shown.text_to_be_present_in_element((By.ID, "jp-main-statusbar"), "Mem:"))
    browser.get(f"{hub_lab.url}/user/carol/api/metrics/v1")
    metrics = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert metrics["limits"]["memory"]["rss"] == 2**30 and 0 < metrics["rss"] < 2**30, metrics
