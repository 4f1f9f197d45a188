"""Waiting for a member's JupyterLab in Chromium, and saying where the browser stood when it
did not come: a bare selenium TimeoutException says nothing (CI run of stop 32)."""

from __future__ import annotations

from tests.harness.hosts import TestHost


def wait_for_jupyterlab(browser, host: TestHost, member: str, timeout: float = 300) -> None:
    """Login done: wait for JupyterLab in `member`'s server, loaded, its file browser in her home."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, timeout).until(shown.presence_of_element_located((By.ID, "jp-main-dock-panel")))
        WebDriverWait(browser, 120).until(lambda b: not b.find_elements(By.ID, "jupyterlab-splash"))
        WebDriverWait(browser, 60).until(shown.text_to_be_present_in_element((By.CSS_SELECTOR, ".jp-BreadCrumbs"), f"jupyter-{member}"))
    except TimeoutException:
        raise AssertionError(f"no JupyterLab for {member}:\n{where_it_stood(browser, host, member)}") from None


def where_it_stood(browser, host: TestHost, member: str) -> str:
    from selenium.webdriver.common.by import By

    try:
        page = browser.find_element(By.TAG_NAME, "body").text[:1500]
    except Exception as error:  # the page may be mid-navigation
        page = f"(unreadable: {error})"
    server = host.exec(f"docker ps -a --filter name=jupyter-{member} --format '{{{{.Names}}}} {{{{.Status}}}}'", check=False).stdout
    hub_log = host.exec("docker logs --tail 60 jupyterhub-hub-1 2>&1", check=False).stdout
    member_log = host.exec(f"docker logs --tail 30 jupyter-{member} 2>&1", check=False).stdout  # none if never spawned
    return (
        f"url: {browser.current_url}\ntitle: {browser.title}\npage:\n{page}\n"
        f"her server: {server or '(no container)'}\nits log:\n{member_log}\nhub log:\n{hub_log}"
    )
