"""What alerts are sent to, run by the tests themselves: a real SMTP server (aiosmtpd) that
keeps every message it accepts, and an HTTP server that keeps every request (a chat service's
JSON webhook, a Healthchecks-style heartbeat). They listen on loopback, or on the address the
test hosts reach the runner at on their own Docker network.

Each runs in a process of its own (`python -m tests.harness.receivers smtp|http ...`), which
writes what it receives to a file, a JSON line each: a test process may have pyinfra's gevent
patches, and servers with threads of their own do not mix with them."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tests.harness.engine import run
from tests.harness.hosts import free_port

REPO = Path(__file__).resolve().parents[2]


def runner_address() -> str:
    """The runner's address on the Docker bridge, as the test hosts reach it (docker0's: the
    bridge network does not always name its gateway)."""
    gateway = run("docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    if gateway:
        return gateway
    return run("ip", "-4", "-o", "addr", "show", "dev", "docker0").stdout.split()[3].split("/")[0]


class _Served:
    """A receiver process on address:port, writing to a file of JSON lines."""

    kind = ""

    def __init__(self, address: str, port: int | None, extra: tuple[str, ...] = ()):
        self.address, self.port, self.extra = address, port or free_port(), extra
        self.log = Path(tempfile.mkdtemp(prefix=f"labhub-{self.kind}-")) / "received.jsonl"
        self.log.touch()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.harness.receivers", self.kind, self.address, str(self.port), str(self.log), *self.extra],
                                        cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready", f"the {self.kind} receiver did not start"

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def received(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    body: str


class SmtpReceiver(_Served):
    """aiosmtpd: every message it accepts, in order. `stop()` and `start()` take it away and
    bring it back on the same port. With `login` (user, password) it wants that login, as an
    institute's relay does (AUTH without TLS: the tests' own network)."""

    kind = "smtp"

    def __init__(self, address: str = "127.0.0.1", login: tuple[str, str] | None = None):
        super().__init__(address, None, login or ())
        self.login = login

    @property
    def messages(self) -> list[Mail]:
        return [Mail(**message) for message in self.received()]

    def url(self, recipient: str = "labadmin@lab.test") -> str:
        """Apprise's URL for it: plain SMTP, with its login if it wants one."""
        login = f"{quote(self.login[0], safe='')}:{quote(self.login[1], safe='')}@" if self.login else ""
        return f"mailto://{login}{self.address}:{self.port}?from=labhub@lab.test&to={recipient}"

    def wait_for(self, count: int, timeout: float = 30) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.messages


class HttpReceiver(_Served):
    """An HTTP server that answers 200 to everything and keeps each request."""

    kind = "http"

    def __init__(self, address: str = "127.0.0.1", port: int | None = None):
        super().__init__(address, port)
        self.start()

    def url(self, path: str) -> str:
        return f"http://{self.address}:{self.port}{path}"

    def json_bodies(self, path: str) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received() if r["path"] == path and r["body"]]

    def paths(self) -> list[str]:
        return [r["path"] for r in self.received()]

    def close(self) -> None:
        self.stop()


@contextlib.contextmanager
def receivers(address: str = "127.0.0.1", login: tuple[str, str] | None = None) -> Iterator[tuple[SmtpReceiver, HttpReceiver]]:
    smtp = SmtpReceiver(address, login)
    smtp.start()
    http = HttpReceiver(address)
    try:
        yield smtp, http
    finally:
        smtp.stop()
        http.close()


def alert_settings(path: Path, targets: dict[str, str], lab_name: str = "Test Lab") -> Path:
    """A settings file for `./drift-check --alerts`, as the deploy writes one on a control host
    (labhub.alerts.settings): target name -> URL, each for every severity."""
    path.write_text(json.dumps({"lab_name": lab_name, "remind_hours": 24, "silence": [], "state": str(path.with_suffix(".state.json")),
                                "targets": [{"name": name, "min_severity": "info", "url": url} for name, url in targets.items()],
                                "heartbeat": {}}))
    return path


def _serve_smtp(address: str, port: int, log: Path, login: list[str]) -> None:
    import email
    import email.policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            part = parsed.get_body(preferencelist=("plain", "html"))
            with log.open("a") as out:
                out.write(json.dumps({"sender": envelope.mail_from, "recipients": list(envelope.rcpt_tos), "subject": str(parsed["subject"]),
                                      "body": part.get_content() if part else ""}) + "\n")
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=isinstance(auth_data, LoginPassword) and [auth_data.login.decode(), auth_data.password.decode()] == login)

    auth = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True} if login else {}
    controller = Controller(Handler(), hostname=address, port=port, **auth)
    controller.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def _serve_http(address: str, port: int, log: Path) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _keep(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace")
            with log.open("a") as out:
                out.write(json.dumps({"method": self.command, "path": self.path, "body": body}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = do_HEAD = _keep

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    kind, address, port, log, *login = sys.argv[1:]
    (_serve_smtp if kind == "smtp" else _serve_http)(address, int(port), Path(log), *([login] if kind == "smtp" else []))
