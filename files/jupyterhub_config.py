"""The lab's JupyterHub configuration (managed by labhub, tasks/hub.py).

Every value comes from labhub.json, which the deploy writes from the validated host data;
this file only says how JupyterHub uses them. Hub user <name> is host account
jupyter-<name>: their server runs in a container as that account's UID and GID, with its
home directory and the lab's shares mounted, from an allowed image of the local registry.
"""

import grp
import json
import os
import pwd
import sqlite3
import sys

sys.path.insert(0, "/srv/jupyterhub")  # login_guard.py, beside this file
from login_guard import SetupCodes, first_use_off_the_event_loop, guarded, sign_ups_wait_for_approval  # noqa: E402

from sqlalchemy import event
from sqlalchemy.engine import Engine

c = get_config()  # noqa: F821 (provided by JupyterHub)

with open("/srv/jupyterhub/labhub.json") as settings_file:
    settings = json.load(settings_file)

DATA = "/srv/jupyterhub/data"  # the hub-data volume: database, passwords; survives restarts

# Hub and proxy. The cookie secret and proxy token come from secrets.env (JPY_COOKIE_SECRET,
# CONFIGPROXY_AUTH_TOKEN): generated once on the host, so a restart logs no one out.
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "hub"  # the hub's name on the network it shares with users' servers
c.JupyterHub.db_url = f"sqlite:///{DATA}/jupyterhub.sqlite"
# The container's root filesystem is read-only: what JupyterHub writes beside its
# configuration goes to /tmp (a tmpfs, emptied when the container restarts, as the proxy is).
c.ConfigurableHTTPProxy.pid_file = "/tmp/jupyterhub-proxy.pid"


@event.listens_for(Engine, "connect")
def write_ahead_log(connection, _record):
    """SQLite in write-ahead-log mode, synced at checkpoints: a commit no longer waits for
    the disk. A server's start commits several times on the hub's one thread: when a class
    starts 20 at once, each held the hub ~30 ms and a request behind them waited up to 0.8 s
    (~13 ms each with this; docs/benchmarks.md). A power cut may lose the last commits, never
    the database; the backup reads the log too (SQLite's backup API)."""
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")


c.JupyterHub.cleanup_servers = False  # users' servers keep running while the hub restarts
# A new JupyterHub upgrades the database's schema as it starts, after copying the SQLite file
# to jupyterhub.sqlite.<date-time> beside it; with the schema current it does nothing.
c.JupyterHub.upgrade_db = True
# With TLS (Caddy in front): the https:// address users open. JupyterHub then marks its
# cookies, and its servers' (JUPYTERHUB_PUBLIC_URL), Secure, and builds its links on it.
if settings["public_url"]:
    c.JupyterHub.public_url = settings["public_url"]

# Who may log in: exactly the lab's members (names are lower-cased by JupyterHub first).
users, login = settings["users"], settings["login"]
setup_codes = login["first_login"] == "setup-code"  # an unclaimed account needs its member's code (login_guard.py)
c.Authenticator.allowed_users = {user["name"] for user in users}
c.Authenticator.admin_users = {user["name"] for user in users if user["admin"]}
if settings["authenticator"] == "firstuse":
    from firstuseauthenticator import FirstUseAuthenticator

    authenticator_class = first_use_off_the_event_loop(FirstUseAuthenticator, SetupCodes() if setup_codes else None)
    if setup_codes:  # the login form's extra field (JupyterHub's one-time password field)
        c.Authenticator.request_otp = True
        c.Authenticator.otp_prompt = "Setup code (your first login only):"
    c.FirstUseAuthenticator.create_users = False  # an unlisted name is refused
    c.FirstUseAuthenticator.dbm_path = f"{DATA}/passwords.dbm"
    c.FirstUseAuthenticator.min_password_length = settings["min_password_length"]
elif settings["authenticator"] == "ldap":
    import ssl

    import ldap3
    import ldap3.core.exceptions
    from ldapauthenticator import LDAPAuthenticator
    from tornado import web

    LdapServer = ldap3.Server

    def lab_directory(address, port, **kwargs):
        """What ldapauthenticator connects to: the directory's servers in order (its fallbacks
        when the first does not answer), each failing within seconds, not a TCP timeout."""
        servers = [LdapServer(host, port=number, connect_timeout=5, **kwargs) for host, number in settings["ldap"]["servers"]]
        return servers[0] if len(servers) == 1 else ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=False)

    ldap3.Server = lab_directory

    class LabLDAPAuthenticator(LDAPAuthenticator):
        """A directory that cannot be reached is a clear error on the login page (503), not
        an internal error or a wrong password; the hub keeps running."""

        async def authenticate(self, handler, data):
            try:
                return await super().authenticate(handler, data)
            except ldap3.core.exceptions.LDAPException as error:
                self.log.error("LDAP server %s:%s: %s", self.server_address, self.server_port, error)
                raise web.HTTPError(503, "The lab's directory (LDAP) cannot be reached: try again in a minute, or tell the lab's admins.")

        async def check_allowed(self, username, auth_model):
            """A member in data AND, when the lab names groups, in one of them (JupyterHub
            would let either one in)."""
            if username not in self.allowed_users:
                return False
            if not self.allowed_groups:
                return True
            found = set((auth_model.get("auth_state") or {}).get("ldap_groups", []))
            return any(group in found for group in self.allowed_groups)

    ldap = settings["ldap"]
    authenticator_class = LabLDAPAuthenticator
    c.LDAPAuthenticator.server_address = ldap["server_address"]
    c.LDAPAuthenticator.server_port = ldap["server_port"]
    c.LDAPAuthenticator.tls_strategy = ldap["tls_strategy"]
    # Verify the directory's certificate against the image's CAs (extra_ca_certificates included).
    c.LDAPAuthenticator.tls_kwargs = {"validate": ssl.CERT_REQUIRED, "ca_certs_file": "/etc/ssl/certs/ca-certificates.crt"}
    c.LDAPAuthenticator.user_attribute = ldap["user_attribute"]
    if ldap["lookup_dn"]:
        c.LDAPAuthenticator.lookup_dn = True
        c.LDAPAuthenticator.user_search_base = ldap["user_search_base"]
        c.LDAPAuthenticator.lookup_dn_search_user = ldap["lookup_dn_search_user"]
        c.LDAPAuthenticator.lookup_dn_user_dn_attribute = ldap["user_attribute"]  # the name the hub knows the member by
        with open(ldap["bind_password_file"]) as password_file:  # root-only on the host, never in labhub.json
            c.LDAPAuthenticator.lookup_dn_search_password = password_file.read()
    else:
        c.LDAPAuthenticator.bind_dn_template = ldap["bind_dn_template"]
    if ldap["allowed_groups"]:
        c.LDAPAuthenticator.allowed_groups = ldap["allowed_groups"]
else:
    from nativeauthenticator import NativeAuthenticator

    # Without setup codes, members in data are approved when they sign up (they are
    # allowed_users); with them, every sign-up waits for a person's approval. Any other name
    # is refused at login by allowed_users.
    authenticator_class = sign_ups_wait_for_approval(NativeAuthenticator) if setup_codes else NativeAuthenticator
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = settings["min_password_length"]

# Every authenticator behind the failed-login throttle (login_guard.py); the login page says
# whose lab this is, the home page where to change one's password (announcements: HTML made
# by labhub from the lab's data, escaped there).
c.JupyterHub.authenticator_class = guarded(authenticator_class, login["failed_limit"], login["failed_window"])
c.JupyterHub.template_vars = {key: login[key] for key in ("announcement_login", "announcement_home") if login[key]}

# Users' servers: one container each, from an allowed image of the local registry.
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
# No Docker socket in the hub: its calls go to the stack's allow-list proxy (docker-api).
c.DockerSpawner.client_kwargs = {"base_url": settings["docker_api"]}
c.DockerSpawner.network_name = settings["network"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.pull_policy = "ifnotpresent"
swarm = settings["swarm"]
if not swarm:
    c.DockerSpawner.remove = True  # nothing lives in the container: homes and shares are mounted
else:  # a lab of several servers: each member's server is a swarm service (one task)
    from docker.types import Mount
    from dockerspawner import SwarmSpawner

    class LabSwarmSpawner(SwarmSpawner):
        """What a server container has, for a service: other groups' folders covered, and a
        PIDs limit (docker-py's Resources has no field for it; the engine's API has)."""

        masked, tmp_size = [], 0

        @property
        def mounts(self):
            tmp = Mount("/tmp", None, type="tmpfs", tmpfs_size=self.tmp_size, tmpfs_mode=0o1777)
            covers = [Mount(path, None, type="tmpfs", read_only=True, tmpfs_size=4096, tmpfs_mode=0o700) for path in self.masked]
            return [*super().mounts, tmp, *covers]

        async def docker(self, method, *args, **kwargs):
            if method == "create_service":
                kwargs["task_template"].setdefault("Resources", {}).setdefault("Limits", {})["Pids"] = settings["pids_limit"]
            return await super().docker(method, *args, **kwargs)

    c.JupyterHub.spawner_class = LabSwarmSpawner
    # Found by DNS round-robin (the task's IP), not the service's virtual IP: no routing mesh needed.
    c.SwarmSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
    c.SwarmSpawner.pull_policy = "skip"  # each node has the images (tasks/swarm.py builds them)
    # What the swarm reserves for a server on the node it places it on.
    c.Spawner.cpu_guarantee = swarm["cpu_reservation"] or None
    c.Spawner.mem_guarantee = swarm["mem_reservation"]
DEFAULT_IMAGE = next(iter(settings["images"].values()))
c.DockerSpawner.image = DEFAULT_IMAGE
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.notebook_dir = "/"  # the home and the shares (e.g. /mnt/data) are both in reach
c.DockerSpawner.mem_limit = settings["mem_limit"]
c.DockerSpawner.cpu_limit = settings["cpu_limit"]
SERVER_HOST_CONFIG = {
    "privileged": False,
    "cap_drop": ["ALL"],  # a notebook needs no capability, its user is not root
    "security_opt": ["no-new-privileges:true"],
    # CPU weight under contention only (alone, a server still gets its cpu_limit): when a
    # class starts 20 servers at once, the hub (4096, compose.yaml) keeps about 60 % of the
    # CPUs it asks for, instead of a 6th, and keeps answering (docs/benchmarks.md).
    "cpu_shares": 128,
    "pids_limit": settings["pids_limit"],  # a fork bomb in a notebook stops here, not at the host
}
c.DockerSpawner.extra_host_config = SERVER_HOST_CONFIG
c.Spawner.start_timeout = settings["start_timeout"]
c.Spawner.http_timeout = 120

members = {user["name"]: user for user in users}


def allowed_images(spawner):
    """The lab's images and those of the user's groups: the spawn form offers these, and
    DockerSpawner refuses any other, through the API too."""
    return {**settings["images"], **members[spawner.user.name]["images"]}


c.DockerSpawner.allowed_images = allowed_images


def run_as_host_account(spawner):
    """The container runs as the user's host account, in its home, with the shares, and with
    what the user's groups give: their folders (and host groups), limits and GPUs."""
    member = members[spawner.user.name]
    account = pwd.getpwnam(member["account"])  # /etc/passwd and /etc/group are the host's (read-only)
    home = account.pw_dir
    spawner.extra_create_kwargs = {"user": f"{account.pw_uid}:{account.pw_gid}"}
    spawner.volumes = {
        home: {"bind": home, "mode": "rw"},
        **{share["path"]: {"bind": share["path"], "mode": "ro" if share["read_only"] else "rw"} for share in settings["shares"]},
        **{folder: {"bind": folder, "mode": "rw"} for folder in member["folders"]},
    }
    spawner.environment = {**spawner.environment, "HOME": home, "USER": account.pw_name}
    spawner.default_url = f"/lab/tree{home}"
    spawner.mem_limit, spawner.cpu_limit = member["mem_limit"], member["cpu_limit"]
    spawner.image = DEFAULT_IMAGE  # not an image chosen before: start() checks the new choice
    host_config = dict(SERVER_HOST_CONFIG)
    if member["folders"]:  # the container's user is in the host groups that own the folders
        host_config["group_add"] = [str(grp.getgrnam(group).gr_gid) for group in member["folders"].values()]
    # /tmp: bounded, within her memory limit (never the host's disk); other groups' folders on a
    # share the server mounts: covered, empty.
    host_config["tmpfs"] = {"/tmp": f"rw,nosuid,nodev,size={member['tmp_size']},mode=1777",
                            **{path: "ro,size=4k,mode=0700" for path in member["masked"]}}
    chosen = allowed_images(spawner).get(spawner.user_options.get("image"), DEFAULT_IMAGE)
    gpus = [g for g in (member["gpus"], settings["image_gpus"].get(chosen)) if g is not None]
    if gpus:  # NVIDIA's container toolkit on the host hands them in
        count = -1 if "all" in gpus else max(gpus)
        host_config["device_requests"] = [{"driver": "nvidia", "count": count, "capabilities": [["gpu"]]}]
    spawner.extra_host_config = host_config
    if swarm:  # the same, for a service: UID and GID, no capabilities, placed on a node with the labels asked
        spawner.extra_create_kwargs = {}  # create_service takes no user: the container spec has it
        spawner.extra_container_spec = {"user": f"{account.pw_uid}:{account.pw_gid}", "cap_drop": ["ALL"], "groups": host_config.get("group_add", [])}
        spawner.masked, spawner.tmp_size = member["masked"], member["tmp_size"]
        labels = {**member["node_labels"], **settings["image_node_labels"].get(chosen, {})}
        spawner.extra_placement_spec = {"constraints": [f"node.labels.{key}=={value}" for key, value in sorted(labels.items())]}


c.Spawner.pre_spawn_hook = run_as_host_account

# Research groups (labhub.json "groups"): JupyterHub's load_groups only ever adds members, so
# at start the groups labhub made are also made exact: members data dropped leave, and a
# group data no longer has is deleted.
c.JupyterHub.load_groups = {name: {"users": names, "properties": {"managed_by": "labhub"}} for name, names in settings["groups"].items()}


def make_groups_exact(app_class):
    load_groups = app_class.init_groups

    async def init_groups(self):
        await load_groups(self)
        from jupyterhub import orm

        for group in self.db.query(orm.Group).all():
            if (group.properties or {}).get("managed_by") != "labhub":
                continue
            if group.name not in settings["groups"]:
                self.log.info("Deleting group %s: no longer in the lab's data", group.name)
                self.db.delete(group)
            else:
                group.users = [user for user in group.users if user.name in settings["groups"][group.name]]
        self.db.commit()

    app_class.init_groups = init_groups


from jupyterhub.app import JupyterHub  # noqa: E402 (the hub that runs this file)

make_groups_exact(JupyterHub)

# Services: the idle culler, run by the hub; the lab's page (files/lab/app.py), a container of
# its own that logs members in through the hub and reads users, activity and servers.
c.JupyterHub.services, c.JupyterHub.load_roles = [], []
if settings["idle_timeout"]:
    c.JupyterHub.services.append(
        {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={settings['idle_timeout']}"]}
    )
    c.JupyterHub.load_roles.append(
        {"name": "idle-culler", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"], "services": ["idle-culler"]}
    )
if settings["lab_page"]:
    c.JupyterHub.services.append(
        # Its token is generated on the host (lab.env, root-only), shared with its container alone.
        {"name": "lab", "url": "http://lab:8090", "api_token": os.environ["LABHUB_LAB_TOKEN"], "oauth_no_confirm": True, "display": True}
    )
    c.JupyterHub.load_roles += [
        {"name": "lab-page", "scopes": ["list:users", "read:users", "read:servers"], "services": ["lab"]},
        # Every member may log in to it (it shows each only her own data; admins the overview).
        {"name": "user", "scopes": ["self", "access:services!service=lab"]},
    ]
