"""Run inside the hub's container (`python3 - <member>`): each call the Docker API proxy must
refuse, beside the same call made lawful, sent as the hub would send it, to the proxy at
tcp://docker-api:2375. Prints {case: HTTP status} as JSON; removes what it created.

`python3 - <member> bench <rounds> [unix]`: the Docker calls of one server's start and stop,
<rounds> times, through the proxy (or, with `unix`, straight to /var/run/docker.sock, in a
container that has it); prints each round's seconds as JSON (tests/benchmark/docker_api.py).

The lawful server is what files/jupyterhub_config.py makes for <member>, read from the same
labhub.json and host accounts; it runs `sleep` instead of a notebook server.
"""

import grp
import http.client
import json
import pwd
import socket
import sys
import time

member_name = sys.argv[1]
settings = json.load(open("/srv/jupyterhub/labhub.json"))
member = next(user for user in settings["users"] if user["name"] == member_name)
other = next(user for user in settings["users"] if user["name"] != member_name)
account = pwd.getpwnam(member["account"])
NAME = f"jupyter-{member_name}--apicheck"  # a named server's name: never the member's running one
IMAGE = next(iter(settings["images"].values()))


class EngineSocket(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/var/run/docker.sock")


DIRECT = sys.argv[4:5] == ["unix"]


def call(method, path, body=None):
    connection = EngineSocket("docker") if DIRECT else http.client.HTTPConnection("docker-api", 2375, timeout=60)
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else None
    connection.request(method, "/v1.45" + path, body=data, headers={"Content-Type": "application/json"} if data else {})
    response = connection.getresponse()
    text = response.read()
    connection.close()
    return response.status, text


def memory(limit):
    return int(float(limit[:-1]) * 1024 ** ("KMGT".index(limit[-1]) + 1))


def lawful(**change):
    host = {
        "Binds": [f"{account.pw_dir}:{account.pw_dir}:rw",
                  *(f"{s['path']}:{s['path']}:{'ro' if s['read_only'] else 'rw'}" for s in settings["shares"]),
                  *(f"{path}:{path}:rw" for path in member["folders"])],
        "NetworkMode": settings["network"],
        "Memory": memory(member["mem_limit"]),
        "CpuPeriod": 100000,
        "CpuQuota": int(member["cpu_limit"] * 100000),
        "PidsLimit": settings["pids_limit"],
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "CpuShares": 128,
        "AutoRemove": True,
        "GroupAdd": [str(grp.getgrnam(g).gr_gid) for g in member["folders"].values()],
        "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={member['tmp_size']},mode=1777", **{path: "ro,size=4k,mode=0700" for path in member["masked"]}},
    }
    spec = {"Image": IMAGE, "User": f"{account.pw_uid}:{account.pw_gid}", "Cmd": ["sleep", "120"], "HostConfig": host}
    for key, value in change.items():
        (host if key[0].isupper() and key not in ("Image", "User") else spec)[key] = value
    return spec


def create(spec, name=NAME):
    status, text = call("POST", f"/containers/create?name={name}", spec)
    if status == 201:
        call("DELETE", f"/containers/{json.loads(text)['Id']}?force=1")
    return status


def bench(rounds):
    """What DockerSpawner asks of the engine to start a server, and to stop it: each round's
    [start, stop] seconds."""
    seconds = []
    for _ in range(rounds):
        began = time.perf_counter()
        call("GET", "/version")
        call("GET", f"/images/{IMAGE}/json")
        call("GET", f"/containers/{NAME}/json")
        server = json.loads(call("POST", f"/containers/create?name={NAME}", lawful(AutoRemove=False))[1])["Id"]
        call("POST", f"/containers/{server}/start")
        call("GET", f"/containers/{server}/json")
        started = time.perf_counter()
        call("GET", f"/containers/{NAME}/json")
        call("POST", f"/containers/{server}/stop?t=0")
        call("DELETE", f"/containers/{server}?v=1")
        seconds.append([started - began, time.perf_counter() - started])
    return seconds


if sys.argv[2:3] == ["bench"]:
    print(json.dumps(bench(int(sys.argv[3]))))
    sys.exit(0)

other_home = pwd.getpwnam(other["account"]).pw_dir
results = {
    "lawful create": create(lawful()),
    "privileged": create(lawful(Privileged=True)),
    "bind of /": create(lawful(Binds=[*lawful()["HostConfig"]["Binds"], "/:/host:rw"])),
    "another member's home": create(lawful(Binds=[*lawful()["HostConfig"]["Binds"], f"{other_home}:{other_home}:rw"])),
    "image from elsewhere": create(lawful(Image="docker.io/library/debian:trixie")),
    "UID 0": create(lawful(User="0:0")),
    "named like the hub": create(lawful(), name="jupyterhub-hub-1"),
    "a capability added": create(lawful(CapAdd=["SYS_ADMIN"])),
    "a host device": create(lawful(Devices=[{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rwm"}])),
    "GPUs nobody gave her": create(lawful(DeviceRequests=[{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}])),
    "the host's network": create(lawful(NetworkMode="host")),
    "the host's PID namespace": create(lawful(PidMode="host")),
    "no-new-privileges dropped": create(lawful(SecurityOpt=[])),
    "no memory limit": create(lawful(Memory=0)),
    "no PIDs limit": create(lawful(PidsLimit=0)),
    "seccomp off": create(lawful(SecurityOpt=["no-new-privileges:true", "seccomp=unconfined"])),
    # The engine reads JSON keys regardless of case: this second HostConfig would be its.
    "a second HostConfig in lower case": create(json.dumps(lawful())[:-1] + ', "hostconfig": {"Privileged": true, "Binds": ["/:/host"]}}'),
}

# Calls on a running server of the member's (exec refused; inspect, logs, stop allowed).
status, text = call("POST", f"/containers/create?name={NAME}", lawful())
server = json.loads(text)["Id"]
try:
    results["lawful start"] = call("POST", f"/containers/{server}/start")[0]
    results["lawful inspect"] = call("GET", f"/containers/{server}/json")[0]
    results["lawful logs"] = call("GET", f"/containers/{server}/logs?stdout=1")[0]
    results["docker exec into her server"] = call("POST", f"/containers/{server}/exec", {"Cmd": ["id"], "User": "0"})[0]
    results["archive into her server"] = call("PUT", f"/containers/{server}/archive?path=/tmp", {})[0]
    results["network connect to the host network"] = call("POST", "/networks/host/connect", {"Container": server})[0]
    results["lawful stop"] = call("POST", f"/containers/{server}/stop?t=1")[0]
finally:
    call("DELETE", f"/containers/{server}?force=1")

results["inspect the hub's container"] = call("GET", "/containers/jupyterhub-hub-1/json")[0]
results["stop the hub's container"] = call("POST", "/containers/jupyterhub-hub-1/stop")[0]
results["list every container"] = call("GET", "/containers/json?all=1")[0]
results["volume create"] = call("POST", "/volumes/create", {"Name": "loot", "Driver": "local"})[0]
results["image pull from elsewhere"] = call("POST", "/images/create?fromImage=docker.io/library/alpine&tag=3")[0]
repository, tag = IMAGE.rsplit(":", 1)
results["lawful image pull"] = call("POST", f"/images/create?fromImage={repository}&tag={tag}")[0]
results["lawful image inspect"] = call("GET", f"/images/{IMAGE}/json")[0]
results["engine info"] = call("GET", "/info")[0]
results["swarm join"] = call("POST", "/swarm/join", {"RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "x"})[0]
print(json.dumps(results))
