"""Example lab inventory: copy this file, name your servers, and describe the lab in
group_data/lab.py (data there applies to every host of this file, named after it).

    pyinfra inventories/lab.py deploy.py        # provision / converge
    pyinfra inventories/lab.py deploy.py --dry  # show what would change

Every key a host's data can hold, with its default and meaning, is in docs/configuration.md.
Data set here, per host, overrides group_data/lab.py.
"""

lab_servers = [
    (
        "jupyter.physics.example.org",
        {
            # How pyinfra reaches the server (root, or a sudoer with "_sudo": True).
            "ssh_user": "root",
            # "ssh_key": "~/.ssh/id_ed25519",
        },
    ),
]
