"""A real Samba server on the runner's loopback (127.0.0.1:4450, SMB3 only), as the
institute's file server: share `data` (read-only, holds readme.txt) and `analysis`
(read-write), both for one account. A VM reaches it as //10.0.2.2/<share> with port=4450."""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness.engine import READY_TIMEOUT, run

PORT = 4450
ACCOUNT = "labhubsmb"  # Samba maps its users to Unix accounts: a system account on the runner

CONFIG = """
[global]
    smb ports = {port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    server min protocol = SMB3
    server role = standalone server
    map to guest = never
    passdb backend = tdbsam:{root}/private/passdb.tdb
    private dir = {root}/private
    lock directory = {root}/lock
    state directory = {root}/state
    cache directory = {root}/cache
    pid directory = {root}/run
    ncalrpc dir = {root}/run/ncalrpc
    log file = {root}/log/%m.log
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes

[data]
    path = {root}/shares/data
    read only = yes
    valid users = {account}

[analysis]
    path = {root}/shares/analysis
    read only = no
    valid users = {account}
    force user = {account}
    create mask = 0664
    directory mask = 0775
"""


class SambaServer:
    """`root=None`: a fresh directory under /tmp that Samba's account can traverse (pytest's
    own temporary directories are private to root)."""

    def __init__(self, root: Path | None, password: str):
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="labhub-samba-"))
            root.chmod(0o755)
        self.root, self.password = root, password
        self.config = root / "smb.conf"
        self.process: subprocess.Popen | None = None
        for sub in ("private", "lock", "state", "cache", "run", "log", "shares/data", "shares/analysis"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(port=PORT, root=root, account=ACCOUNT))
        try:
            pwd.getpwnam(ACCOUNT)
        except KeyError:
            run("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT)
        (root / "shares/data/readme.txt").write_text("measurements from the beamline\n")
        run("chown", "-R", ACCOUNT, str(root / "shares/analysis"))
        os.chmod(root / "shares", 0o755)
        self.set_password(password)

    @property
    def data(self) -> Path:
        return self.root / "shares" / "data"

    @property
    def analysis(self) -> Path:
        return self.root / "shares" / "analysis"

    def set_password(self, password: str) -> None:
        """Set the account's password (as the file server's admins would)."""
        self.password = password
        run("smbpasswd", "-c", str(self.config), "-s", "-a", ACCOUNT, input=f"{password}\n{password}\n")

    def start(self) -> None:
        # A Samba left running by a cut-off run would answer instead, with its own passwords.
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", PORT), timeout=1):
            raise RuntimeError(f"127.0.0.1:{PORT} is taken (an smbd left by an interrupted test run?): stop it first, e.g. `pkill -f labhub-samba-`")
        log = open(self.root / "log" / "smbd.stdout", "ab")
        # Its own session: on shutdown smbd signals its whole process group.
        self.process = subprocess.Popen(
            ["smbd", "--foreground", "--no-process-group", "-s", str(self.config)], stdout=log, stderr=log, start_new_session=True
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", PORT), timeout=1):
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"smbd did not start; see {self.root / 'log'}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
