"""A JupyterHub user, over HTTP as a browser would be: the login form (with its _xsrf token),
session cookies, an API token, the hub's REST API and the Jupyter server's contents API."""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request


class HubUser:
    def __init__(self, base_url: str, *handlers: urllib.request.BaseHandler):
        self.base = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), *handlers)
        self.token: str | None = None

    def request(self, method: str, path: str, body: dict | bytes | None = None, headers: dict | None = None, timeout: float = 60):
        """(status, text) of a request; HTTP errors are answers, not exceptions, and no
        answer at all (connection refused or reset) is status 0."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:  # e.g. while the hub restarts
            return 0, str(error)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def login(self, username: str, password: str, setup_code: str | None = None) -> bool:
        """Submit the login form (with a first login's setup code, when given); True if the hub
        logged us in."""
        status, page = self.request("GET", "/hub/login")
        match = re.search(r'name="_xsrf" value="([^"]+)"', page)
        assert status == 200 and match, f"no login form ({status})"
        fields = {"username": username, "password": password, "_xsrf": match.group(1), **({"otp": setup_code} if setup_code else {})}
        form = urllib.parse.urlencode(fields).encode()
        # next=/hub/home: land on the home page. Without it the hub sends a member whose
        # server is not running on to /hub/spawn, which starts it (a test starts it itself).
        self.request("POST", "/hub/login?next=%2Fhub%2Fhome", form, {"Content-Type": "application/x-www-form-urlencoded"})
        status, me = self.request("GET", "/hub/api/user", headers={"X-XSRFToken": self.cookie("_xsrf") or ""})
        return status == 200 and json.loads(me).get("name") == username.lower()

    def signup(self, username: str, password: str) -> str:
        """Submit NativeAuthenticator's sign-up form; the message the page answers with."""
        status, page = self.request("GET", "/hub/signup")
        match = re.search(r'name="_xsrf" value="([^"]+)"', page)
        assert status == 200 and match, f"no sign-up form ({status})"
        form = urllib.parse.urlencode({"username": username, "signup_password": password,
                                       "signup_password_confirmation": password, "_xsrf": match.group(1)}).encode()
        status, page = self.request("POST", "/hub/signup", form, {"Content-Type": "application/x-www-form-urlencoded"})
        message = re.search(r'class="alert[^"]*"[^>]*>\s*<p>(.*?)</p>', page, re.S)
        assert status == 200 and message, f"no answer to the sign-up ({status})"
        return " ".join(message.group(1).split())

    def whoami(self) -> str | None:
        """The hub's answer to 'who am I' for this browser session (cookies only)."""
        status, me = self.request("GET", "/hub/api/user", headers={"X-XSRFToken": self.cookie("_xsrf") or ""})
        return json.loads(me)["name"] if status == 200 else None

    def create_token(self, username: str) -> str:
        status, answer = self.request(
            "POST", f"/hub/api/users/{username}/tokens", {"note": "tests"}, {"X-XSRFToken": self.cookie("_xsrf") or "", "Content-Type": "application/json"}
        )
        assert status in (200, 201), f"token: {status} {answer}"
        self.token = json.loads(answer)["token"]
        return self.token

    def api(self, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json"}
        return self.request(method, path, body, headers)

    def _ask_to_start(self, username: str, options: dict | None = None) -> None:
        status, answer = self.api("POST", f"/hub/api/users/{username}/server", options or {})
        assert status in (201, 202), f"start: {status} {answer}"

    def start_server(self, username: str, options: dict | None = None, timeout: float = 300) -> dict:
        self._ask_to_start(username, options)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, answer = self.api("GET", f"/hub/api/users/{username}")
            server = json.loads(answer).get("servers", {}).get("", {})
            if server.get("ready"):
                return server
            time.sleep(2)
        raise AssertionError(f"{username}'s server did not become ready within {timeout} s: {answer}")

    def start_server_following_progress(self, username: str, timeout: float = 300) -> dict:
        """Start the server and wait on its progress stream, as the hub's spawn-pending page
        does in a browser: one long request that the hub answers when the server is ready,
        instead of asking again and again."""
        self._ask_to_start(username)
        headers = {"Authorization": f"token {self.token}", "Accept": "text/event-stream"}
        request = urllib.request.Request(f"{self.base}/hub/api/users/{username}/server/progress", headers=headers)
        with self.opener.open(request, timeout=timeout) as response:
            for line in response:
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        return event
                    assert not event.get("failed"), f"{username}'s server failed to start: {event.get('message')}"
        raise AssertionError(f"{username}'s progress stream ended before the server was ready")

    def read(self, username: str, path: str):
        status, answer = self.api("GET", f"/user/{username}/api/contents/{path}?content=1&type=file&format=text")
        return status, (json.loads(answer).get("content") if status == 200 else answer)

    def write(self, username: str, path: str, text: str):
        return self.api("PUT", f"/user/{username}/api/contents/{path}", {"type": "file", "format": "text", "content": text})
