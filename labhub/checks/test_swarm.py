"""What tasks/swarm.py promises: a host with no swarm.role is in no swarm; the hub's engine
manages the lab's swarm, with the attachable overlay network, and every node of the lab is in
it, ready, active and with exactly its labels, and no node the lab no longer has; a worker is
in the hub's swarm; and a worker has the hub's notebook images under the hub's tags."""

import pytest

from labhub.config.swarm import SWARM_NETWORK
from labhub.local import certificates
from labhub.ops.images import ImageIds
from labhub.ops.swarm import SWARM_PORT, SwarmState, node_changes
from tasks.hub import notebook_images


def the_hub(lab_configs):
    return next((name, config) for name, config in lab_configs.items() if config.swarm.role == "hub")


def test_swarm_membership_is_what_data_says(target, lab_configs):
    role = target.config.swarm.role
    now = target.fact(SwarmState, network=SWARM_NETWORK if role else None)
    if role is None:
        assert now["state"] == "inactive", f"swarm: expected in no swarm (data gives no swarm.role), found {now['state']} (managers {now['managers']})"
        return
    hub_name, hub = the_hub(lab_configs)
    if role == "worker":
        wanted = f"{hub.swarm.advertise_address}:{SWARM_PORT}"
        found = (now["state"], now["manager"], wanted in now["managers"])
        assert found == ("active", False, True), (
            f"swarm: expected a worker of the hub's swarm ({hub_name}, {wanted}), found state {now['state']}, "
            f"{'manager' if now['manager'] else 'worker'}, managers {now['managers'] or 'none'}"
        )
        return
    assert (now["state"], now["manager"]) == ("active", True), f"swarm: expected this engine to manage the lab's swarm, found state {now['state']}, manager {now['manager']}"
    assert now["network"] == {"driver": "overlay", "attachable": True}, f"network {SWARM_NETWORK}: expected an attachable overlay network, found {now['network']}"
    wanted = {name: config.swarm.labels for name, config in lab_configs.items() if config.swarm.role}
    problems = node_changes(now["nodes"], wanted)
    assert not problems, f"swarm nodes: expected {', '.join(sorted(wanted))} ready, active, with their labels; found " + "; ".join(problems)


def test_workers_have_the_hubs_notebook_images(target, lab_configs):
    if target.config.swarm.role != "worker":
        pytest.skip(f"{target.name} is no swarm worker (the hub's images are checked in its registry)")
    _, hub = the_hub(lab_configs)
    _, builds = notebook_images(hub, certificates(hub.extra_ca_certificates))
    present = target.fact(ImageIds, refs=tuple(build.ref for build in builds))
    missing = [build.ref for build in builds if build.ref not in present]
    assert not missing, f"notebook images: expected the hub's, found missing {', '.join(missing)}"
