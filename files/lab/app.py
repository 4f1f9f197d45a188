"""The lab page: a JupyterHub service at /services/lab/ (managed by labhub, tasks/lab_page.py).

Members log in through the hub (OAuth) and see their own home's use against its quota, their
server's limits and the nights of the backup; they browse their home (or a folder of their
research group, when its data allows it) as it was on one of them and bring a file or folder
back into ~/restored/<date>/. Hub admins see every member, each filesystem, the last backup,
the certificate's end date and the last drift check's verdict. What it shows it reads from
the hub's API (its own token: users, activity, servers) and from the host's helper
(labhub-lab-helper, over a socket only this container has); it holds no repository password
and no member's files.
"""

import asyncio
import json
import logging
import os
import time
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/lab/")
HELPER = "/run/labhub-lab/helper.sock"
SETTINGS = "/srv/labhub.json"  # the lab's settings the hub reads too: each member's limits
log = logging.getLogger("lab")


class HelperError(Exception):
    pass


async def ask_host(**request) -> dict:
    """One request to the host's helper (a new process per connection, run by systemd)."""
    reader, writer = await asyncio.open_unix_connection(HELPER, limit=2**24)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer = json.loads(await asyncio.wait_for(reader.readline(), timeout=1800))
    finally:
        writer.close()
    if not answer.pop("ok"):
        raise HelperError(answer["error"])
    return answer


def limits_of(member: str) -> dict:
    with open(SETTINGS) as settings_file:
        settings = json.load(settings_file)
    mine = next((u for u in settings["users"] if u["name"] == member), {})
    return {"memory": mine.get("mem_limit") or settings.get("mem_limit"), "cpus": mine.get("cpu_limit") or settings.get("cpu_limit")}


def human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024


class LabHandler(HubOAuthenticated, web.RequestHandler):
    def get_template_namespace(self):
        return {**super().get_template_namespace(), "human": human}

    def member_only(self, member: str) -> dict:
        """The logged-in member, who may see only her own data."""
        user = self.current_user
        if user["name"] != member:
            raise web.HTTPError(403, f"{user['name']} may see only their own files")
        return user

    async def admin_only(self) -> dict:
        user = self.current_user
        model = await hub_api(f"users/{quote(user['name'])}")
        if not model.get("admin"):
            raise web.HTTPError(403, "the lab overview is for the hub's admins")
        return user

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        message = error.log_message if isinstance(error, web.HTTPError) and error.log_message else self._reason
        if self.request.path.startswith(url_path_join(PREFIX, "api")):
            self.finish({"error": message})
        else:
            self.render("error.html", status=status_code, message=message, prefix=PREFIX)

    async def from_host(self, **request) -> dict:
        try:
            return await ask_host(**request)
        except HelperError as refusal:
            raise web.HTTPError(400, str(refusal)) from None


async def hub_api(path: str) -> dict:
    auth = HubOAuth.instance()
    response = await httpclient.AsyncHTTPClient().fetch(
        url_path_join(auth.api_url, path), headers={"Authorization": f"token {auth.api_token}"}
    )
    return json.loads(response.body)


class Health(web.RequestHandler):  # compose's health check and the deploy's, through the hub's proxy
    def get(self):
        self.finish({"ok": True})


class Home(LabHandler):
    @web.authenticated
    def get(self):
        self.redirect(url_path_join(PREFIX, "members", quote(self.current_user["name"])))


class MemberPage(LabHandler):
    @web.authenticated
    async def get(self, member):
        self.member_only(member)
        state = await self.from_host(action="member", member=member)
        self.render("member.html", member=member, prefix=PREFIX, limits=limits_of(member), **state)


class SnapshotPage(LabHandler):
    """A night's backup of her home or (?group=) of a folder of her research group."""

    @web.authenticated
    async def get(self, member, snapshot):
        self.member_only(member)
        path, group = self.get_argument("path", ""), self.get_argument("group", "")
        listing = await self.from_host(action="files", member=member, snapshot=snapshot, path=path, group=group)
        self.render("snapshot.html", member=member, snapshot=snapshot, path=path.strip("/"), group=group, prefix=PREFIX, **listing)

    @web.authenticated
    async def post(self, member, snapshot):  # the page's restore button (a form with the hub's xsrf token)
        self.member_only(member)
        path, group = self.get_argument("path"), self.get_argument("group", "")
        done = await self.from_host(action="restore", member=member, snapshot=snapshot, path=path, group=group)
        log.info("restore by %s: %s", member, done["message"])
        self.render("restored.html", member=member, snapshot=snapshot, prefix=PREFIX, message=done["message"])


class MemberAPI(LabHandler):
    @web.authenticated
    async def get(self, member):
        self.member_only(member)
        self.finish({**await self.from_host(action="member", member=member), "limits": limits_of(member)})


class FilesAPI(LabHandler):
    @web.authenticated
    async def get(self, member, snapshot):
        self.member_only(member)
        self.finish(await self.from_host(action="files", member=member, snapshot=snapshot, path=self.get_argument("path", ""),
                                         group=self.get_argument("group", "")))


class RestoreAPI(LabHandler):
    @web.authenticated
    async def post(self, member):
        self.member_only(member)
        body = json.loads(self.request.body or b"{}")
        done = await self.from_host(action="restore", member=member, snapshot=body.get("snapshot"), path=body.get("path", ""), group=body.get("group"))
        log.info("restore by %s: %s", member, done["message"])
        self.finish(done)


async def lab_overview() -> dict:
    users, host = await asyncio.gather(hub_api("users?state=&limit=1000"), ask_host(action="overview"))
    homes = {home["member"]: home for home in host["homes"]}
    members = []
    for user in sorted(users, key=lambda u: u["name"]):
        server = (user.get("servers") or {}).get("", {})
        members.append({"name": user["name"], "admin": user.get("admin", False), "last_activity": (user.get("last_activity") or "")[:16].replace("T", " "),
                        "running": bool(server.get("ready")), "home": homes.get(user["name"])})
    return {"members": members, **{part: host[part] for part in ("filesystems", "backup", "certificate", "drift")}}


class AdminPage(LabHandler):
    @web.authenticated
    async def get(self):
        await self.admin_only()
        self.render("admin.html", prefix=PREFIX, now=time.time(), **await lab_overview())


class AdminAPI(LabHandler):
    @web.authenticated
    async def get(self):
        await self.admin_only()
        self.finish(await lab_overview())


def log_request(handler):
    """Each request with the hub user's name; the path only (an OAuth callback's query holds a code)."""
    user = (getattr(handler, "_hub_auth_user_cache", None) or {}).get("name", "-")
    log.info("%s %s %s user=%s %.0fms", handler.get_status(), handler.request.method, handler.request.path, user, 1000 * handler.request.request_time())


def make_app() -> web.Application:
    token = os.environ.pop("LABHUB_LAB_TOKEN")  # lab.env: the service's hub API token, nowhere else in here
    HubOAuth.instance(api_token=token, cache_max_age=60)
    member = r"([a-z0-9][a-z0-9._-]*)"
    routes = [
        (PREFIX, Home),
        (url_path_join(PREFIX, "oauth_callback"), HubOAuthCallbackHandler),
        (url_path_join(PREFIX, "health"), Health),
        (url_path_join(PREFIX, f"members/{member}"), MemberPage),
        (url_path_join(PREFIX, f"members/{member}/snapshots/([0-9a-f]+)"), SnapshotPage),
        (url_path_join(PREFIX, "admin"), AdminPage),
        (url_path_join(PREFIX, f"api/members/{member}"), MemberAPI),
        (url_path_join(PREFIX, f"api/members/{member}/snapshots/([0-9a-f]+)/files"), FilesAPI),
        (url_path_join(PREFIX, f"api/members/{member}/restores"), RestoreAPI),
        (url_path_join(PREFIX, "api/admin"), AdminAPI),
    ]
    return web.Application(
        routes, cookie_secret=os.urandom(32), log_function=log_request,
        template_path=os.path.join(os.path.dirname(__file__), "templates"), static_path=os.path.join(os.path.dirname(__file__), "static"),
        static_url_prefix=url_path_join(PREFIX, "static/"),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    make_app().listen(8090, "0.0.0.0")
    ioloop.IOLoop.current().start()
