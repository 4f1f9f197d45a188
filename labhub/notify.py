"""Sending: alert messages through Apprise, and the nightly jobs' heartbeat pings. Nothing
here ever prints or returns a URL: a target is named by its name and its service, and a
failure's reason is Apprise's own words with every part of the target's URL cut out."""

from __future__ import annotations

import logging
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator

TIMEOUT = 15  # seconds a notification or a ping may take: it never holds up the job for long


class _Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _secret_parts(url: str) -> list[str]:
    """The parts of a URL that may be secret (all of it but the scheme), longest first."""
    parsed = urllib.parse.urlsplit(url)
    parts = [url, parsed.netloc, parsed.path, parsed.query, parsed.username or "", parsed.password or ""]
    parts += [value for _, value in urllib.parse.parse_qsl(parsed.query)] + [p for p in parsed.path.split("/") if len(p) > 3]
    unquoted = [urllib.parse.unquote(part) for part in parts]
    return sorted({p for p in parts + unquoted if p}, key=len, reverse=True)


def scrubbed(text: str, url: str) -> str:
    for part in _secret_parts(url):
        text = text.replace(part, "***")
    return re.sub(r"\s+", " ", text).strip()[:200]


def service_of(url: str) -> str:
    from labhub.config.alerts import apprise_service

    return apprise_service(url) or "unknown service"


def deliver(targets: list[dict], title: str, body: str) -> Iterator[tuple[dict, bool, str]]:
    """(target, delivered, why not) for each target: one Apprise notification each."""
    import apprise

    logger = logging.getLogger("apprise")
    for target in targets:
        captured = _Captured()
        logger.addHandler(captured)
        propagate, logger.propagate = logger.propagate, False  # its lines may quote the URL: shown scrubbed, below
        try:
            # The service's own plugin, called directly: Apprise.notify would send from a pool
            # of threads, which outlive it (and do not mix with pyinfra's gevent patches).
            plugin = apprise.Apprise.instantiate(target["url"])
            if plugin is not None:
                plugin.socket_read_timeout = plugin.socket_connect_timeout = TIMEOUT
            delivered = bool(plugin is not None and plugin.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT))
        except Exception as error:  # noqa: BLE001 - a notification never fails the job it reports on
            delivered, captured.lines = False, [*captured.lines, f"{type(error).__name__}: {error}"]
        finally:
            logger.removeHandler(captured)
            logger.propagate = propagate
        reason = "; ".join(scrubbed(line, target["url"]) for line in captured.lines[-2:]) or "the service refused it"
        service = service_of(target["url"])
        yield {"name": target["name"], "service": service}, delivered, "" if delivered else f"{service}: {reason}"


def heartbeat_url(url: str, style: str, event: str, host: str = "") -> str | None:
    """The URL to fetch for a job's `event` (start, success, fail); None: this style has none."""
    url = url.replace("{host}", urllib.parse.quote(host, safe=""))
    if style == "healthchecks":
        return {"start": f"{url.rstrip('/')}/start", "success": url, "fail": f"{url.rstrip('/')}/fail"}[event]
    if event == "start":
        return None  # Uptime Kuma's push monitors know up and down only
    base = url.split("?", 1)[0]
    return f"{base}?status={'up' if event == 'success' else 'down'}&msg={'OK' if event == 'success' else 'failed'}"


def ping(url: str | None, style: str, event: str, host: str = "") -> str:
    """Ping a heartbeat; what happened, in one line without the URL (never raises)."""
    if not url:
        return ""
    target = heartbeat_url(url, style, event, host)
    if target is None:
        return ""
    try:
        with urllib.request.urlopen(urllib.request.Request(target, method="GET"), timeout=TIMEOUT) as answer:
            return f"heartbeat {event}: delivered (HTTP {answer.status})"
    except Exception as error:  # noqa: BLE001 - a heartbeat never fails the job it reports on
        return f"heartbeat {event}: NOT delivered ({scrubbed(f'{type(error).__name__}: {error}', url)}); tried again at the next run"
