"""Logins strangers cannot abuse (files/jupyterhub_config.py wraps the lab's authenticator in
`guarded`):

- failed logins are counted per name and per client address (four times as many for an
  address: a lab's members may share one behind their institute's NAT); past the limit within
  the window, a login is answered 429 with Retry-After until the window has passed, whatever
  the password (so a guess cannot even be checked), and the right password works again after;
- the client's address is the one the hub's own proxy (CHP) saw, or, when that is the lab's
  TLS proxy, the one it forwarded: never a header a client could set;
- each failure is logged with the name and the address, never the password;
- FirstUseAuthenticator's bcrypt runs in a worker thread: a flood of wrong passwords no
  longer holds the hub's one event loop, so everyone else's pages and API calls keep answering;
- with setup codes on (hub.login.first_login), an account nobody has claimed is claimed only
  with the one-time code a sysadmin issued for that member (`setup-code`, below): a stranger
  who knows her name cannot set her password first.
"""

from __future__ import annotations

import asyncio
import dbm
import hashlib
import inspect
import json
import math
import os
import re
import secrets
import socket
import time
from collections import defaultdict, deque

import bcrypt
from tornado import web

DATA = "/srv/jupyterhub/data"  # the hub's volume
TLS_PROXY = "proxy"  # the TLS proxy's name on the stack's network (compose.yaml)
ADDRESS_FACTOR = 4  # failed logins tolerated from one address, per failed login tolerated for one name


class Throttle:
    """Failures per key in a sliding window."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self.failures: dict[str, deque] = defaultdict(deque)

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until a login for this key is looked at again; 0: now."""
        failures = self.failures.get(key)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self.failures.pop(key, None)
            return 0
        return math.ceil(failures[0] + self.window - now) if len(failures) >= self.limit else 0

    def fail(self, key: str, now: float) -> None:
        self.failures[key].append(now)

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)

    def withdraw(self, key: str, at: float) -> None:
        """An attempt counted while it was checked turned out right."""
        failures = self.failures.get(key)
        if failures and at in failures:
            failures.remove(at)


_tls_proxy = (float("-inf"), set())  # when it was looked up, and its addresses


def tls_proxy_addresses(peer: str) -> set[str]:
    """The TLS proxy's addresses, looked up at most every 30 s (the lookup blocks the event
    loop, and without a TLS proxy the name may go on to the host's resolvers), or at once
    when a peer is not among them though there is a TLS proxy (recreated: a new address)."""
    global _tls_proxy
    looked_up, addresses = _tls_proxy
    if time.monotonic() - looked_up > 30 or (addresses and peer not in addresses):
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(TLS_PROXY, None)}
        except OSError:  # no TLS proxy in this lab
            addresses = set()
        _tls_proxy = (time.monotonic(), addresses)
    return addresses


def client_address(handler) -> str:
    """X-Forwarded-For's last entry is the one CHP (in the hub's container) appended: its
    peer. When that peer is the TLS proxy, the entry before it is the one the TLS proxy set
    (Caddy trusts no client's X-Forwarded-For). X-Real-IP, which tornado would prefer, is a
    header any client can send: not used."""
    chain = [part.strip() for part in handler.request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if not chain:
        return handler.request.connection.context.address[0]
    if len(chain) >= 2 and chain[-1] in tls_proxy_addresses(chain[-1]):
        return chain[-2]
    return chain[-1]


async def refuse(handler, name: str, wait: int) -> None:
    """Answer 429 with Retry-After: the login page again, with the reason. (Not an HTTPError:
    tornado clears the headers of an error's answer, and FirstUse's login handler cannot
    render JupyterHub 5's error page.)"""
    message = f"Too many failed logins: try again in {wait} s."
    try:
        page = handler._render(login_error=message, username=name)
        page = await page if inspect.isawaitable(page) else page
    except Exception:  # a login handler of another shape: the reason alone
        page = message
    handler.set_status(429)
    handler.set_header("Retry-After", str(wait))
    raise web.Finish(page)


def guarded(authenticator_class: type, limit: int, window: float) -> type:
    """The authenticator with the throttle (and, for FirstUse, bcrypt off the event loop)."""
    names, addresses = Throttle(limit, window), Throttle(limit * ADDRESS_FACTOR, window)

    class Guarded(authenticator_class):
        async def authenticate(self, handler, data):
            name = self.normalize_username(data.get("username") or "")
            address = client_address(handler)
            now = time.monotonic()
            wait = max(names.retry_after(name, now), addresses.retry_after(address, now))
            if wait:
                self.log.warning("Login refused for %r from %s: too many failed logins, %d s left", name, address, wait)
                await refuse(handler, name, wait)
            # Counted while it is checked (bcrypt takes ~0.3 s): concurrent guesses cannot slip
            # past the limit before the first of them has failed.
            names.fail(name, now)
            addresses.fail(address, now)
            result = await super().authenticate(handler, data)
            if result is None:
                self.log.warning("Failed login for %r from %s", name, address)
            else:
                names.forget(name)
                addresses.withdraw(address, now)
            return result

    Guarded.__name__ = f"Guarded{authenticator_class.__name__}"
    return Guarded


class SetupCodes:
    """One-time codes for members' first logins: a sysadmin issues one per member, the hub keeps
    only its SHA-256 (the code is 80 random bits) and its end, and the login that sets her
    password uses it up. The file is root's, 0600, in the hub's volume."""

    ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread

    def __init__(self, path: str = f"{DATA}/setup-codes.json"):
        self.path = path

    @staticmethod
    def digest(name: str, code: str) -> str:
        return hashlib.sha256(f"{name}:{re.sub('[^A-Z0-9]', '', code.upper())}".encode()).hexdigest()

    def _read(self) -> dict:
        try:
            with open(self.path) as codes_file:
                return json.load(codes_file)
        except FileNotFoundError:
            return {}

    def _write(self, codes: dict) -> None:
        partial = f"{self.path}.partial"
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as codes_file:
            json.dump(codes, codes_file)
        os.replace(partial, self.path)

    def issue(self, name: str, days: int) -> tuple[str, float]:
        """A new code for this member (any earlier one no longer works), and when it ends."""
        raw = "".join(secrets.choice(self.ALPHABET) for _ in range(16))
        code, ends = "-".join(raw[i : i + 4] for i in range(0, 16, 4)), time.time() + days * 86400
        self._write({**self._read(), name: {"sha256": self.digest(name, code), "ends": ends}})
        return code, ends

    def valid(self, name: str, code: str) -> bool:
        issued = self._read().get(name)
        return bool(issued and code and time.time() < issued["ends"]
                    and secrets.compare_digest(issued["sha256"], self.digest(name, code)))

    def use_up(self, name: str) -> None:
        codes = self._read()
        if codes.pop(name, None):
            self._write(codes)


def sign_ups_wait_for_approval(native_class: type) -> type:
    """NativeAuthenticator approves a listed member's sign-up at once, so whoever signs up
    first with her name becomes her. With setup codes on, every sign-up waits for a person's
    approval instead: an admin's on /hub/authorize, or the sysadmin's (login_admin.py approve)."""
    from nativeauthenticator.orm import UserInfo

    class Native(native_class):
        def get_authed_users(self):
            return {info.username for info in UserInfo.all_users(self.db) if info.is_authorized}

    return Native


FIRST_LOGIN_NEEDS_CODE = ("This is your first login: type the setup code your lab's admins gave you "
                          "(one code per member, for the first login only; ask them for a new one when it has ended).")


def first_use_off_the_event_loop(first_use_class: type, setup_codes: SetupCodes | None = None) -> type:
    """FirstUseAuthenticator's authenticate, with its bcrypt hashing in a worker thread (one
    check takes ~0.3 s of CPU on purpose; on the event loop, every other request waits), and,
    given setup codes, an unclaimed account claimed only with its member's code."""

    class FirstUse(first_use_class):
        async def authenticate(self, handler, data):
            username = self.normalize_username(data["username"])
            password = data["password"].encode("utf8")
            if not self.create_users and not self._user_exists(username):
                return None
            with dbm.open(self.dbm_path, "c", 0o600) as db:
                stored = db.get(username.encode("utf8"), None)
            if stored is not None:
                matches = await asyncio.to_thread(bcrypt.checkpw, password, stored)
                return username if matches else None
            if setup_codes and not setup_codes.valid(username, data.get("otp") or ""):
                handler.custom_login_error = FIRST_LOGIN_NEEDS_CODE
                self.log.warning("First login for %r without a valid setup code", username)
                return None
            if not self._validate_password(data["password"]):
                handler.custom_login_error = f"Password too short! Please choose a password at least {self.min_password_length} characters long."
                return None
            hashed = await asyncio.to_thread(bcrypt.hashpw, password, bcrypt.gensalt())
            with dbm.open(self.dbm_path, "c", 0o600) as db:
                if username.encode("utf8") in db:  # claimed by another login meanwhile
                    return None
                db[username] = hashed
            if setup_codes:
                setup_codes.use_up(username)
            return username

    return FirstUse
