"""labhub.json: what files/jupyterhub_config.py is told about the lab, computed here from the
validated config so the hub's configuration only says how JupyterHub uses it."""

from __future__ import annotations

import html

from labhub.config import LabHost
from labhub.config.disk import size_bytes
from labhub.config.swarm import SWARM_NETWORK

NETWORK = "jupyterhub"  # the hub and the users' servers meet here
DOCKER_API = "tcp://docker-api:2375"  # the hub's Docker API: the stack's allow-list proxy (compose.yaml)
LDAP_PASSWORD_IN_HUB = "/srv/jupyterhub/ldap-bind-password"  # the stack's ldap/bind-password, in the hub's container


def hub_settings(config: LabHost, refs: dict[str, str]) -> dict:
    """labhub.json, given the registry reference of each image by name (hub's and groups')."""
    hub = config.hub
    return {
        "authenticator": hub.authenticator,
        "min_password_length": hub.min_password_length,
        "login": login_settings(hub),
        "users": [{"name": u.name, "account": u.account, "admin": u.admin, **member_settings(config, u.name, refs)} for u in config.users],
        "images": {(image.display_name or image.name): refs[image.name] for image in hub.images},
        "image_gpus": {refs[i.name]: i.gpus for i in [*hub.images, *(i for g in config.groups for i in g.images)] if i.gpus is not None},
        # JupyterHub's groups, exactly these members (a member data drops leaves the group).
        "groups": {g.name: sorted(g.members) for g in config.groups},
        # The homes share is not mounted whole: each server mounts its own home from it.
        "shares": [{"path": s.mount_point, "read_only": s.read_only} for s in config.shares if not s.homes],
        "network": SWARM_NETWORK if config.swarm.role else NETWORK,
        "docker_api": DOCKER_API,
        "swarm": swarm_settings(config),
        "image_node_labels": {refs[i.name]: i.node_labels for i in [*hub.images, *(i for g in config.groups for i in g.images)] if i.node_labels},
        "mem_limit": hub.mem_limit,
        "cpu_limit": hub.cpu_limit,
        "pids_limit": hub.pids_limit,
        "idle_timeout": hub.idle_timeout,
        "lab_page": config.lab_page_on,  # the lab's page as a hub service (files/lab/app.py)
        "start_timeout": hub.start_timeout,
        "ldap": ldap_settings(hub.ldap) if hub.authenticator == "ldap" else None,
        # With TLS: JupyterHub's public URL (https), so its cookies and its servers' are Secure.
        "public_url": hub.public_url if hub.tls_mode != "none" else None,
    }


def member_settings(config: LabHost, name: str, refs: dict[str, str]) -> dict:
    """What a member's groups give their servers: the folders (host paths: mounted read-write,
    with the host group's GID added), the groups' images, and the largest of the limits and
    GPUs asked; and the other groups' folders on shares, which they must not see."""
    hub, groups = config.hub, [g for g in config.groups if name in g.members]
    memory = max([hub.mem_limit, *(g.mem_limit for g in groups if g.mem_limit)], key=size_bytes)
    gpus = [g.gpus for g in groups if g.gpus is not None]
    return {
        "folders": {g.path: g.host_group for g in groups if config.share_of(g) is None},
        # Folders on a share come with the share: in other members' servers an empty,
        # read-only, root-only tmpfs covers them.
        "masked": sorted(g.path for g in config.groups if name not in g.members and config.share_of(g) is not None),
        "images": {(i.display_name or i.name): refs[i.name] for g in groups for i in g.images},
        "mem_limit": memory,
        # /tmp: a tmpfs within her memory limit (its pages are charged to her container).
        "tmp_size": min(size_bytes(hub.tmp_size), size_bytes(memory)) if hub.tmp_size else size_bytes(memory) // 2,
        "cpu_limit": max([hub.cpu_limit, *(g.cpu_limit for g in groups if g.cpu_limit)]),
        "gpus": most_gpus(gpus),
        "node_labels": {key: value for g in groups for key, value in g.node_labels.items()},
    }


def swarm_settings(config: LabHost) -> dict | None:
    """SwarmSpawner's: what the swarm reserves for each server as it places it."""
    if not config.swarm.role:
        return None
    return {"cpu_reservation": config.swarm.cpu_reservation, "mem_reservation": config.swarm.mem_reservation}


def most_gpus(requests: list) -> int | str | None:
    """The largest of several GPU requests: 'all' beats any number."""
    if not requests:
        return None
    return "all" if "all" in requests else max(requests)


def ldap_settings(ldap) -> dict:
    """What ldapauthenticator needs; the service account's password is a file of its own."""
    address, port = ldap.address
    return {
        "server_address": address,
        "server_port": port,
        "servers": [list(server) for server in ldap.addresses],  # the first, then the fallbacks
        "tls_strategy": ldap.tls_strategy,
        "bind_dn_template": ldap.bind_dn_template,
        "lookup_dn": ldap.search,
        "user_search_base": ldap.search_base,
        "lookup_dn_search_user": ldap.search_bind_dn,
        "user_attribute": ldap.username_attribute,
        "allowed_groups": ldap.allowed_groups,
        "bind_password_file": LDAP_PASSWORD_IN_HUB if ldap.search else None,
    }


def login_settings(hub) -> dict:
    """The login page's announcement (HTML: JupyterHub shows it as it is, so the lab's text is
    escaped here), the home page's (where a member changes her password), the throttle."""
    login = hub.login
    parts = [f"<strong>{html.escape(login.lab_name)}</strong>" if login.lab_name else "", html.escape(login.text or "")]
    if login.contact_email:
        address = html.escape(login.contact_email)
        parts.append(f'Questions about your account: <a href="mailto:{address}">{address}</a>')
    change = {"firstuse": "/hub/auth/change-password", "native": "/hub/change-password"}.get(hub.authenticator)
    return {
        "announcement_login": " ".join(part for part in parts if part) or None,
        "announcement_home": f'<a href="{change}">Change your password</a>' if change else None,
        "first_login": login.first_login,
        "setup_code_days": login.setup_code_days,
        "failed_limit": login.failed_limit,
        "failed_window": login.failed_window,
    }
