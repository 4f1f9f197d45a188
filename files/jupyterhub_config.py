"""The lab's JupyterHub configuration (managed by labhub, tasks/hub.py).

Every value comes from labhub.json, which the deploy writes from the validated host data;
this file only says how JupyterHub uses them. Hub user <name> is host account
jupyter-<name>: their server runs in a container as that account's UID and GID, with its
home directory and the lab's shares mounted, from an allowed image of the local registry.
"""

import json
import pwd
import sys

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
c.JupyterHub.cleanup_servers = False  # users' servers keep running while the hub restarts
# With TLS (Caddy in front): the https:// address users open. JupyterHub then marks its
# cookies, and its servers' (JUPYTERHUB_PUBLIC_URL), Secure, and builds its links on it.
if settings["public_url"]:
    c.JupyterHub.public_url = settings["public_url"]

# Who may log in: exactly the lab's members (names are lower-cased by JupyterHub first).
users = settings["users"]
c.Authenticator.allowed_users = {user["name"] for user in users}
c.Authenticator.admin_users = {user["name"] for user in users if user["admin"]}
if settings["authenticator"] == "firstuse":
    c.JupyterHub.authenticator_class = "firstuseauthenticator.FirstUseAuthenticator"
    c.FirstUseAuthenticator.create_users = False  # an unlisted name is refused
    c.FirstUseAuthenticator.dbm_path = f"{DATA}/passwords.dbm"
    c.FirstUseAuthenticator.min_password_length = settings["min_password_length"]
elif settings["authenticator"] == "ldap":
    import ssl

    import ldap3
    import ldap3.core.exceptions
    from ldapauthenticator import LDAPAuthenticator
    from tornado import web

    class TimelyServer(ldap3.Server):
        """A directory that does not answer fails a login within seconds, not a TCP timeout."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("connect_timeout", 5)
            super().__init__(*args, **kwargs)

    ldap3.Server = TimelyServer  # what ldapauthenticator connects with

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
    c.JupyterHub.authenticator_class = LabLDAPAuthenticator
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
    c.JupyterHub.authenticator_class = "nativeauthenticator.NativeAuthenticator"
    # Users in data are approved when they sign up (they are allowed_users); any other
    # sign-up waits for an admin, and allowed_users still refuses it at login.
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = settings["min_password_length"]

# Users' servers: one container each, from an allowed image of the local registry.
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.network_name = settings["network"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True  # nothing lives in the container: homes and shares are mounted
c.DockerSpawner.pull_policy = "ifnotpresent"
c.DockerSpawner.allowed_images = settings["images"]  # display name -> image; several: a form
c.DockerSpawner.image = next(iter(settings["images"].values()))
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.notebook_dir = "/"  # the home and the shares (e.g. /mnt/data) are both in reach
c.DockerSpawner.mem_limit = settings["mem_limit"]
c.DockerSpawner.cpu_limit = settings["cpu_limit"]
c.DockerSpawner.extra_host_config = {
    "privileged": False,
    "cap_drop": ["ALL"],  # a notebook needs no capability, its user is not root
    "security_opt": ["no-new-privileges:true"],
    # CPU weight under contention only (alone, a server still gets its cpu_limit): when a
    # class starts 20 servers at once, the hub (4096, compose.yaml) keeps about 60 % of the
    # CPUs it asks for, instead of a 6th, and keeps answering (docs/benchmarks.md).
    "cpu_shares": 128,
    "pids_limit": settings["pids_limit"],  # a fork bomb in a notebook stops here, not at the host
}
c.Spawner.start_timeout = settings["start_timeout"]
c.Spawner.http_timeout = 120

accounts = {user["name"]: user["account"] for user in users}


def run_as_host_account(spawner):
    """The container runs as the user's host account, in its home, with the shares."""
    account = pwd.getpwnam(accounts[spawner.user.name])  # /etc/passwd is the host's (read-only)
    home = account.pw_dir
    spawner.extra_create_kwargs = {"user": f"{account.pw_uid}:{account.pw_gid}"}
    spawner.volumes = {
        home: {"bind": home, "mode": "rw"},
        **{share["path"]: {"bind": share["path"], "mode": "ro" if share["read_only"] else "rw"} for share in settings["shares"]},
    }
    spawner.environment = {**spawner.environment, "HOME": home, "USER": account.pw_name}
    spawner.default_url = f"/lab/tree{home}"


c.Spawner.pre_spawn_hook = run_as_host_account

# Idle servers are stopped by jupyterhub-idle-culler, run by the hub as a service.
if settings["idle_timeout"]:
    c.JupyterHub.services = [
        {
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={settings['idle_timeout']}"],
        }
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    ]
