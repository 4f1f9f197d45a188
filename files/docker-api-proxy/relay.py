"""The hub's way to the Docker Engine: an HTTP relay on the stack's internal docker-api
network that passes a call on to /var/run/docker.sock only when policy.py allows it, and
answers 403 with the rule it broke otherwise. One call per connection (Connection: close), so
a streamed answer (logs, a pull's progress, a wait) simply runs until the engine closes it.

Logs one line per call: the call, allowed or refused, and the rule; never a body (it carries
the servers' environment, which holds their API tokens).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from policy import Lab, Refused, decide, split

ENGINE = "/var/run/docker.sock"
SETTINGS = os.environ.get("LABHUB_SETTINGS", "/srv/jupyterhub/labhub.json")
PORT = 2375
MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024  # a server's create is a few KB; its environment included
log = logging.getLogger("docker-api-proxy")
LAB: Lab
KNOWN: dict[str, str] = {}  # container ID -> its name


class BadRequest(Exception):
    pass


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, list[tuple[str, str]], bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise BadRequest("no complete request head") from None
    lines = head.decode("latin-1").split("\r\n")[:-2]
    try:
        method, target, _version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(f"bad request line {lines[0][:80]!r}") from None
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    if any(len(header) != 2 for header in headers):
        raise BadRequest("bad header line")
    fields = {name.lower(): value for name, value in headers}
    if "transfer-encoding" in fields:  # the hub's client sends a length; a chunked body is not read here
        raise BadRequest("chunked request bodies are not accepted")
    length = int(fields.get("content-length") or 0)
    if length > MAX_BODY:
        raise BadRequest(f"request body of {length} bytes")
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def engine_call(method: str, target: str, headers: list[tuple[str, str]], body: bytes):
    """A connection to the engine with this request sent on it (Connection: close)."""
    reader, writer = await asyncio.open_unix_connection(ENGINE, limit=MAX_HEAD)
    kept = [(name, value) for name, value in headers if name.lower() not in ("connection", "keep-alive", "content-length")]
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in kept), "Connection: close"]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    return reader, writer


async def inspect(kind: str, ident: str) -> dict | None:
    """What the engine knows of a container or service, or None (for policy.decide). A
    container's name is asked once per ID (an ID never changes its container), and not at all
    for one created through here: a server's start, inspections and stop ask by its ID."""
    if "/" in ident or "?" in ident:
        return None
    if kind == "containers" and ident in KNOWN:
        return {"Name": KNOWN[ident]}
    reader, writer = await engine_call("GET", f"/{kind}/{ident}/json" if kind == "containers" else f"/{kind}/{ident}", [("Host", "docker")], b"")
    try:
        status, body = parsed(await reader.read())
    finally:
        writer.close()
    if status == 404:
        return None
    if status != 200:
        raise Refused(f"the engine answered {status} when asked what {ident!r} is")
    found = json.loads(body)
    if kind == "containers" and found.get("Id", "").startswith(ident):  # asked by its ID: remembered
        know(ident, found["Name"])
    return found


def parsed(response: bytes) -> tuple[int, bytes]:
    """An engine's whole answer (Connection: close): its status and its body."""
    head, _, body = response.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = unchunk(body)
    return int(head.split(b" ", 2)[1]), body


def unchunk(data: bytes) -> bytes:
    out, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def remember(target: str, response: bytes) -> None:
    status, body = parsed(response)
    if status != 201:
        return
    try:
        know(json.loads(body)["Id"], split(target)[1]["name"][0])
    except (ValueError, KeyError):
        return


def know(ident: str, name: str) -> None:
    KNOWN[ident] = name
    while len(KNOWN) > 10000:  # a long-lived hub's: the oldest go first
        del KNOWN[next(iter(KNOWN))]


def answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = json.dumps({"message": f"labhub docker-api-proxy: {message}"}).encode()
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        try:
            method, target, headers, body = await read_request(reader)
        except BadRequest as error:
            log.warning("refused (bad request): %s", error)
            answer(writer, 400, str(error))
            return
        call = f"{method} {target.split('?')[0]}"
        try:
            rule = await decide(LAB, method, target, body, inspect)
        except Refused as refusal:
            log.warning("refused %s: %s", call, refusal)
            answer(writer, 403, f"{call} refused: {refusal}")
            return
        except Exception as error:  # fail closed: what cannot be decided is refused
            log.error("refused %s: cannot decide (%s: %s)", call, type(error).__name__, error)
            answer(writer, 403, f"{call} refused: the proxy cannot decide ({type(error).__name__})")
            return
        log.info("allowed %s: %s", call, rule)
        engine_reader, engine_writer = await engine_call(method, target, headers, body)
        try:
            if call.endswith("/containers/create"):  # a short JSON answer: its ID is remembered
                response = await engine_reader.read()
                remember(target, response)
                writer.write(response)
            while chunk := await engine_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            engine_writer.close()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()


async def main() -> None:
    global LAB
    # Read once: compose recreates this container when labhub.json changes (and with it the
    # accounts). One it cannot read stops it here, not at the first call.
    LAB = Lab.load(SETTINGS)
    server = await asyncio.start_server(relay, "0.0.0.0", PORT, limit=MAX_HEAD)
    log.info("relaying the hub's Docker API calls on port %d to %s", PORT, ENGINE)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main())
