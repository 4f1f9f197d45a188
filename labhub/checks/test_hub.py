"""What tasks/hub.py promises: the stack's files as data says, root-only generated secrets,
hub and registry running and answering, the registry on the loopback only, the hub seeing the
host's accounts read-only (never /etc/shadow), the notebook images in the registry and no more
old tags there than its retention keeps, the Docker socket in the hub's allow-list proxy only,
and every user's server running as its host account, unprivileged, without the socket."""

import datetime
import hashlib
import json
import os
from pathlib import PurePosixPath

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256

from labhub.checks.target import server_account
from labhub.ops.compose import EnvKeys
from labhub.ops.facts import RECORDS
from labhub.config.disk import size_bytes
from labhub.config.tls import EXPIRY_WARNING_DAYS, HSTS_MAX_AGE, certificate_names, name_matches, tls_name
from labhub.local import local_path
from labhub.ops.shell import HTTP_STATUS, q
from labhub.ops.systemd import ServiceState
from tasks.hub import DOCKER_API_SERVICE, HUB_DATABASE, PROJECT, PRUNE_REPORT, SECRETS, plan


MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def stack_of(target):
    if not target.config.hub.enabled:
        pytest.skip(f"{target.name} runs no hub (hub.enabled: False)")
    if target.config.swarm.role == "worker":
        pytest.skip(f"{target.name} runs no hub (a swarm worker: members' servers only)")
    return plan(target.config)


def container(target, name: str) -> dict | None:
    result = target.run(f"docker inspect {name}")
    return json.loads(result.stdout)[0] if result.rc == 0 else None


def test_stack_files_are_what_data_says(target):
    stack = stack_of(target)
    for file in stack.managed_files:
        found = target.path(file.path)
        assert found, f"{file.path}: expected present, found missing"
        assert found.get("sha256") == hashlib.sha256(file.data).hexdigest(), f"{file.path}: content differs from what data says"
        assert (found["owner"], found["mode"]) == ("root", file.mode), f"{file.path}: expected root {file.mode:o}, found {found['owner']} {found['mode']:o}"


def test_generated_secrets_are_root_only(target):
    stack_of(target)
    path = f"{target.config.hub.stack_dir}/secrets.env"
    secrets = target.path(path)
    assert secrets, f"{path}: expected present, found missing"
    found = (secrets["owner"], secrets["group"], oct(secrets["mode"]))
    assert found == ("root", "root", "0o600"), f"{path}: expected root:root 0600, found {found}"
    names = target.fact(EnvKeys, path=path)
    assert set(SECRETS) <= names, f"{path}: expected {sorted(SECRETS)}, found {sorted(names)}"


def test_hub_and_registry_run_and_answer(target):
    stack = stack_of(target)
    for service, check in stack.health.items():
        state = target.run(f"docker inspect --format '{{{{.State.Status}}}}' {PROJECT}-{service}-1").stdout.strip()
        assert state == "running", f"container {PROJECT}-{service}-1: expected running, found {state or 'none'}"
        status = target.run(f"{HTTP_STATUS} {check}").stdout.strip()
        assert status == "200", f"{service} at {check.split()[-1]}: expected HTTP 200, found {status}"


def tls_of(target) -> tuple[str, str]:
    """(the hub's name, the address HTTPS is served on) of a hub with TLS."""
    stack_of(target)
    hub = target.config.hub
    if hub.tls_mode == "none":
        pytest.skip(f"{target.name} serves the hub over plain HTTP (hub.tls.mode none)")
    return tls_name(hub.public_url), hub.local_address


def test_https_serves_a_certificate_for_the_hubs_name_not_near_its_end(target):
    name, address = tls_of(target)
    pem = target.run(f"echo | openssl s_client -connect {q(f'{address}:443')} -servername {q(name)} 2>/dev/null | openssl x509")
    assert pem.rc == 0 and "BEGIN CERTIFICATE" in pem.stdout, f"https://{name}/ on {address}:443: expected a certificate, found none ({pem.stderr.strip()[-200:]})"
    served = x509.load_pem_x509_certificate(pem.stdout.encode())
    names = certificate_names(served)
    assert name_matches(name, names), f"https://{name}/: expected a certificate for {name}, found one for {', '.join(names) or 'no DNS name'}"
    left = served.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert left >= datetime.timedelta(days=EXPIRY_WARNING_DAYS), (
        f"https://{name}/: the certificate expires on {served.not_valid_after_utc:%Y-%m-%d %H:%M} UTC "
        f"(in {left.days} days, expected at least {EXPIRY_WARNING_DAYS})"
    )
    if target.config.hub.tls_mode == "files":
        lab = x509.load_pem_x509_certificates(local_path(target.config.hub.tls.certificate).read_bytes())[0]
        assert served.fingerprint(SHA256()) == lab.fingerprint(SHA256()), (
            f"https://{name}/: expected the certificate of hub.tls.certificate (serial {lab.serial_number:x}), found serial {served.serial_number:x}"
        )


def test_plain_http_redirects_to_https_and_https_sends_hsts(target):
    name, address = tls_of(target)
    redirect = target.run(
        f"curl -s -o /dev/null -m 10 -w '%{{http_code}} %{{redirect_url}}' --resolve {q(f'{name}:80:{address}')} {q(f'http://{name}/hub/login')}"
    ).stdout.split()
    assert redirect in (["308", f"https://{name}/hub/login"], ["301", f"https://{name}/hub/login"]), (
        f"http://{name}/hub/login: expected a redirect to https://{name}/hub/login, found {' '.join(redirect) or 'no answer'}"
    )
    headers = target.run(f"curl -sk -o /dev/null -m 10 -D - --resolve {q(f'{name}:443:{address}')} {q(f'https://{name}/hub/login')}").stdout
    hsts = [line.split(":", 1)[1].strip() for line in headers.splitlines() if line.lower().startswith("strict-transport-security:")]
    assert hsts == [f"max-age={HSTS_MAX_AGE}"], f"https://{name}/hub/login: expected Strict-Transport-Security max-age={HSTS_MAX_AGE}, found {hsts or 'none'}"


def test_with_tls_the_hubs_own_port_is_on_the_loopback_only(target):
    tls_of(target)
    port = target.config.hub.port
    listeners = sorted({line.split()[3] for line in target.run("ss -H -ltn").stdout.splitlines() if line.split()[3].endswith(f":{port}")})
    assert listeners == [f"127.0.0.1:{port}"], f"hub port {port}: expected 127.0.0.1 only (users come through HTTPS), found {listeners}"


def test_the_stacks_containers_keep_their_limits_and_no_privileges(target):
    """CIS Docker Benchmark 5.x, as compose.yaml sets it: a container recreated by hand
    without these is drift."""
    stack = stack_of(target)
    for service in stack.services:
        found_container = container(target, f"{PROJECT}-{service}-1")
        assert found_container, f"container {PROJECT}-{service}-1: expected present, found none"
        config = found_container["HostConfig"]
        found = {
            "memory limit": config["Memory"] > 0,
            "pids limit": (config.get("PidsLimit") or 0) > 0,
            "no-new-privileges": "no-new-privileges:true" in (config.get("SecurityOpt") or []),
            "capabilities dropped": config.get("CapDrop") == ["ALL"],
            "read-only root filesystem": config["ReadonlyRootfs"],
            "health check": bool((found_container["Config"].get("Healthcheck") or {}).get("Test")),
            "not unhealthy": (found_container["State"].get("Health") or {}).get("Status") != "unhealthy",
        }
        expected = {key: True for key in found}
        lost = sorted(key for key in found if found[key] != expected[key])
        assert not lost, f"container {PROJECT}-{service}-1: expected {', '.join(lost)} as compose.yaml sets them, found {({k: found[k] for k in lost})}"


def test_only_the_docker_api_proxy_holds_the_docker_socket(target):
    """CIS 5.32: the hub reaches the engine through the stack's allow-list proxy only
    (files/docker-api-proxy/policy.py), on a network of their own that leads nowhere else."""
    stack_of(target)
    names = target.run(f"docker ps -a --filter label=com.docker.compose.project={PROJECT} --format '{{{{.Names}}}}'").stdout.split()
    holders = []
    for name in names:
        found = container(target, name) or {"Mounts": []}
        if any(m["Source"] in ("/var/run/docker.sock", "/run/docker.sock") or m["Destination"].endswith("docker.sock") for m in found["Mounts"]):
            holders.append(name)
    proxy = f"{PROJECT}-{DOCKER_API_SERVICE}-1"
    assert holders == [proxy], f"Docker socket: expected mounted in {proxy} only, found it in {holders or 'none'}"
    hub = container(target, f"{PROJECT}-hub-1")
    assert hub, "hub container: expected present, found none"
    network = f"{PROJECT}_{DOCKER_API_SERVICE}"
    internal = target.run(f"docker network inspect --format '{{{{.Internal}}}}' {network}").stdout.strip()
    assert network in hub["NetworkSettings"]["Networks"] and internal == "true", f"hub: expected on the internal network {network} with its Docker API proxy, found networks {sorted(hub['NetworkSettings']['Networks'])} (internal: {internal})"


# The hub's database, read on the host (the hub task installs python3): its schema revision
# and journal mode. From a copy with its write-ahead log: SQLite cannot open a WAL database
# read-only once the hub has closed it (there is no -shm file to read).
DATABASE_READ = """
import os, shutil, sqlite3, sys, tempfile
with tempfile.TemporaryDirectory() as copy:
    for suffix in ("", "-wal"):
        if os.path.exists(sys.argv[1] + suffix):
            shutil.copyfile(sys.argv[1] + suffix, copy + "/hub.sqlite" + suffix)
    database = sqlite3.connect(copy + "/hub.sqlite")
    print(database.execute("select version_num from alembic_version").fetchone()[0], database.execute("pragma journal_mode").fetchone()[0])
    database.close()
"""
# The JupyterHub of the hub's image and the schema revision it expects (it upgrades an older
# one as it starts: upgrade_db), read in a throwaway container of the image (~2.5 s) once per
# image ID and kept on the machine that runs the checks: an image's files are fixed by its ID.
SCHEMA_HEAD_PROBE = """
import os, jupyterhub
from alembic.script import ScriptDirectory
print(jupyterhub.__version__, ScriptDirectory(os.path.join(os.path.dirname(jupyterhub.__file__), "alembic")).get_current_head())
"""
SCHEMA_HEADS = RECORDS.parent / "hub-schema-heads.json"  # image ID -> [JupyterHub version, its schema's head revision]


def schema_head(target, image: str) -> tuple[str, str]:
    """The JupyterHub version of the image and its schema's head revision."""
    image_id = target.read(f"docker image inspect --format '{{{{.Id}}}}' {image}").strip()
    try:
        known = json.loads(SCHEMA_HEADS.read_text())
    except (OSError, ValueError):
        known = {}
    if image_id not in known:
        # Not kept in the session's record (read ahead next time): the next session knows the answer.
        probe = target.run(f"docker run --rm --network none --entrypoint python3 {image} -c {q(SCHEMA_HEAD_PROBE)}", remember=False)
        assert probe.rc == 0, f"hub image {image}: expected its JupyterHub's schema readable, found: {probe.stderr.strip()[-300:]}"
        known[image_id] = probe.stdout.split()
        SCHEMA_HEADS.parent.mkdir(parents=True, exist_ok=True)
        written = SCHEMA_HEADS.with_suffix(f".{os.getpid()}")
        written.write_text(json.dumps(known, indent=1))
        written.replace(SCHEMA_HEADS)  # whole, for another check running at once
    version, head = known[image_id]
    return version, head


def test_the_hubs_database_schema_is_current_for_its_jupyterhub(target):
    stack = stack_of(target)
    database = PurePosixPath(HUB_DATABASE).name
    read = target.run(f"v=$(docker volume inspect --format '{{{{.Mountpoint}}}}' {PROJECT}_hub-data) && python3 -c {q(DATABASE_READ)} \"$v\"/{database}")
    assert read.rc == 0, f"hub database: expected its schema readable, found: {(read.stderr or read.stdout).strip()[-300:]}"
    revision, journal = read.stdout.split()
    version, head = schema_head(target, stack.hub_image)
    assert revision == head, f"hub database: expected the schema of JupyterHub {version} (revision {head}), found revision {revision} (an older one)"
    assert journal == "wal", f"hub database: expected its write-ahead log on (files/jupyterhub_config.py), found journal mode {journal}"


def test_registry_listens_on_the_loopback_only(target):
    stack_of(target)
    listeners = [line.split()[3] for line in target.run("ss -H -ltn").stdout.splitlines() if line.split()[3].endswith(":5000")]
    assert listeners == ["127.0.0.1:5000"], f"registry port 5000: expected 127.0.0.1 only, found {listeners}"


def test_hub_sees_the_host_accounts_read_only_and_never_shadow(target):
    stack_of(target)
    hub = container(target, f"{PROJECT}-hub-1")
    assert hub, "hub container: expected present, found none"
    mounts = {m["Destination"]: m["RW"] for m in hub["Mounts"]}
    expected = {"/etc/passwd": False, "/etc/group": False}
    found = {path: mounts.get(path) for path in expected}
    assert found == expected, f"hub mounts: expected /etc/passwd and /etc/group read-only, found {found}"
    assert "/etc/shadow" not in mounts, "hub mounts: expected no /etc/shadow, found it mounted"


def test_notebook_images_are_in_the_registry_and_on_the_host(target):
    stack = stack_of(target)
    for build in stack.builds:
        status = target.run(
            "curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
            f"http://127.0.0.1:5000/v2/{build.name}/manifests/{build.tag}"
        ).stdout.strip()
        assert status == "200", f"image {build.ref}: expected in the local registry, found HTTP {status}"
        assert target.run(f"docker image inspect {build.ref}").rc == 0, f"image {build.ref}: expected on the host, found missing"


def test_the_registry_keeps_the_newest_tags_and_those_in_use(target):
    stack = stack_of(target)
    keep = target.config.hub.registry_keep
    timer = target.fact(ServiceState, unit="labhub-registry-prune.timer")
    assert (timer["enabled"], timer["active"]) == ("enabled", "active"), f"timer labhub-registry-prune.timer: expected enabled and active, found {timer['enabled'] or 'missing'} and {timer['active']}"
    in_use = {build.ref for build in stack.builds} | set(target.read("docker ps -a --format '{{.Image}}'").split())
    for repository in json.loads(target.read("curl -s http://127.0.0.1:5000/v2/_catalog?n=1000"))["repositories"] or []:
        tags = json.loads(target.read(f"curl -s http://127.0.0.1:5000/v2/{repository}/tags/list")).get("tags") or []
        # Retention keeps images (digests): tags that name one image count once.
        digests = dict(line.split() for line in target.read(
            f"for tag in {' '.join(tags)}; do printf '%s ' $tag; curl -sI -H 'Accept: {MANIFEST_V2}' "
            f"http://127.0.0.1:5000/v2/{repository}/manifests/$tag | tr -d '\\r' | awk 'tolower($1) == \"docker-content-digest:\" {{print $2}}'; done"
        ).splitlines() if len(line.split()) == 2)
        used = {digests.get(tag) for tag in tags if f"localhost:5000/{repository}:{tag}" in in_use}
        images = set(digests.values())
        assert len(images) <= keep + len(used), (
            f"registry {repository}: expected at most {keep + len(used)} images (the {keep} newest and {len(used)} in use), found {len(images)}")


def test_the_registrys_last_retention_run_succeeded(target):
    stack_of(target)
    service = target.fact(ServiceState, unit="labhub-registry-prune.service")
    assert service["active"] != "failed", (
        "labhub-registry-prune.service: expected its last run to succeed, found failed (journalctl -u labhub-registry-prune says why)")
    report = target.run(f"cat {PRUNE_REPORT}")
    assert report.rc == 0, f"{PRUNE_REPORT}: expected the report of the registry's last retention run, found none (it has not run)"
    found = json.loads(report.stdout)
    assert found["bytes_after"] <= found["bytes_before"], f"registry size: expected no growth during its garbage collection, found {found}"


def bounded_tmp(server: dict) -> bool:
    """/tmp a tmpfs with a size (a container's Tmpfs, or a swarm service's tmpfs mount)."""
    host = server["HostConfig"]
    if "size=" in (host.get("Tmpfs") or {}).get("/tmp", ""):
        return True
    return any(m.get("Type") == "tmpfs" and m.get("Target") == "/tmp" and (m.get("TmpfsOptions") or {}).get("SizeBytes") for m in host.get("Mounts") or [])


def test_users_servers_run_as_their_host_account_unprivileged(target):
    """On every node of a swarm lab too: the servers the swarm placed there."""
    if not target.config.hub.enabled:
        pytest.skip(f"{target.name} runs no hub (hub.enabled: False)")
    # Any tag of an allowed image: a server keeps the image it started from until it restarts.
    allowed = tuple(build.ref.rsplit(":", 1)[0] + ":" for build in plan(target.config).builds)
    shares = {share.mount_point: not share.read_only for share in target.config.shares if not share.homes}
    accounts = {user.account for user in target.config.users}
    swarm = bool(target.config.swarm.role)
    names = target.run("docker ps --filter name=^jupyter- --format '{{.Names}}'").stdout.split()
    for name in names:
        server = container(target, name)
        name = server_account(name)
        if name not in accounts:
            raise AssertionError(f"container {name}: expected only listed users' servers, found one for an unlisted account")
        uid = target.run(f"id -u {name}").stdout.strip()
        gid = target.run(f"id -g {name}").stdout.strip()
        found = {
            "user": server["Config"]["User"],
            "privileged": server["HostConfig"]["Privileged"],
            "docker socket": any("docker.sock" in m["Source"] for m in server["Mounts"]),
            "image allowed": server["Config"]["Image"].startswith(allowed),
            "shares": {m["Destination"]: m["RW"] for m in server["Mounts"] if m["Destination"] in shares},
            "limits": (server["HostConfig"]["Memory"] > 0, (server["HostConfig"].get("CpuQuota") or server["HostConfig"].get("NanoCpus") or 0) > 0,
                       server["HostConfig"].get("PidsLimit")),
            "no privileges": (server["HostConfig"].get("CapDrop"), server["HostConfig"].get("SecurityOpt")),
            "/tmp bounded": bounded_tmp(server),
        }
        expected = {"user": f"{uid}:{gid}", "privileged": False, "docker socket": False, "image allowed": True, "shares": shares,
                    "limits": (True, True, target.config.hub.pids_limit),
                    # A swarm service's container gets no-new-privileges from daemon.json (test_docker checks it there).
                    "no privileges": (["ALL"], None if swarm else ["no-new-privileges:true"]), "/tmp bounded": True}
        assert found == expected, f"container {name}: expected {expected}, found {found} (image {server['Config']['Image']})"


def test_members_servers_write_little_outside_their_homes(target):
    """A server's writable layer is on the host's disk, beside Docker's data: the engine's own
    measure of it (SizeRw), per running server, against hub.server_layer_limit."""
    if not target.config.hub.enabled:
        pytest.skip(f"{target.name} runs no hub (hub.enabled: False)")
    limit = size_bytes(target.config.hub.server_layer_limit)
    listing = target.read("curl -sf --unix-socket /var/run/docker.sock "
                          "'http://docker/containers/json?size=1&filters=%7B%22name%22%3A%5B%22%5Ejupyter-%22%5D%7D'")
    over = sorted(((container.get("SizeRw") or 0, container["Names"][0].lstrip("/")) for container in json.loads(listing or "[]")
                   if (container.get("SizeRw") or 0) > limit), reverse=True)
    assert not over, (
        f"members' servers: expected at most {target.config.hub.server_layer_limit} written outside the home (hub.server_layer_limit), found "
        + ", ".join(f"{name} {size / 1024**2:.0f} MiB" for size, name in over)
        + " (docker diff <name> lists the files; a restart of the server discards them)"
    )
