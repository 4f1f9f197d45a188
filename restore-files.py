"""One file or folder of a member's home back from a nightly backup, into her
~/restored/<snapshot date>/<path>: written as her (her UID, her quota), never over anything.

    pyinfra inventories/lab.py restore-files.py --limit jupyter.physics.example.org \\
        --data member=alice --data path=notebooks/thesis.ipynb --data snapshot=2026-11-30

snapshot: 'latest' (the default), a date (that day's last snapshot) or a snapshot ID. The
whole server from a backup: deploy.py with --data restore=latest.
"""

from pyinfra import state

from tasks import backup

state.print_output = True  # say what came back, as `pyinfra exec` does (its one command holds no secret)

backup.member_files()  # files/labhub-restore-files: restic into root-only staging, then copied as her
