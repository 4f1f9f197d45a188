"""A Debian 13 virtual machine with a real kernel, for what a container cannot do (CIFS).

The runner's kernel has no CIFS, a Debian guest kernel has. KVM hangs on the test machines,
so qemu runs with software emulation (~10x slower than native): the image therefore comes
with Docker preinstalled, as the deploy's distro packages name it (`apt-get install docker.io` takes 5 minutes emulated),
and xfsprogs (the quota tests' apt-get update and install took ~2 minutes), restic and sqlite3
(the quota tests' restore; their apt install is proven on the container hosts, test_backup),
while everything else the deploy installs, cifs-utils included, it installs itself.

The root filesystem is made by mmdebstrap and turned into an ext4 image without loop devices
(`mkfs.ext4 -d`); the kernel boots directly (`-kernel`/`-initrd`). Each test VM writes to its
own qcow2 overlay, so the cached base image stays clean. SSH is forwarded to a loopback port;
inside the VM the runner's loopback is 10.0.2.2.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.harness.engine import CACHE, DEBIAN_MIRROR, cache_lock, run
from tests.harness.hosts import SSH_OPTIONS, free_port, loopback_ssh, make_ssh_key

VM_PACKAGES = (
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "kmod", "openssh-server", "iproute2",
    "procps", "python3", "less", "e2fsprogs", "docker.io", "docker-cli", "docker-compose", "ca-certificates", "xfsprogs",
    "restic", "sqlite3",
)
GUEST_HOST_ADDRESS = "10.0.2.2"  # the runner's loopback as seen from the VM

SETUP = r"""
set -e
root="$1"; key="$2"
echo labhub-vm > "$root/etc/hostname"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > "$root/etc/fstab"
printf '[Match]\nName=e*\n\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/10-wired.network"
printf 'nameserver 10.0.2.3\n' > "$root/etc/resolv.conf"
chroot "$root" systemctl enable systemd-networkd ssh >/dev/null 2>&1
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
install -d -m 700 "$root/root/.ssh"
install -m 600 "$key" "$root/root/.ssh/authorized_keys"
"""


class VM:
    """A running VM: SSH on 127.0.0.1:ssh_port, console output in console.log."""

    def __init__(self, workdir: Path, image: dict[str, Path], key: Path, memory_mb: int = 2048, disks: tuple[Path, ...] = ()):
        self.workdir, self.image, self.key, self.memory_mb = workdir, image, key, memory_mb
        self.disks = disks  # extra raw disks: /dev/vdb, /dev/vdc, ... in this order
        self.overlay = workdir / "disk.qcow2"
        self.console = workdir / "console.log"
        self.process: subprocess.Popen | None = None
        self.ssh_port = free_port()
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image["disk"]), "-F", "raw", str(self.overlay))

    def start(self, timeout: float = 400) -> None:
        self.process = subprocess.Popen(
            [
                "qemu-system-x86_64", "-accel", "tcg", "-m", str(self.memory_mb), "-smp", "2",
                "-kernel", str(self.image["kernel"]), "-initrd", str(self.image["initrd"]),
                "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet",
                "-drive", f"file={self.overlay},if=virtio,format=qcow2",
                *[argument for disk in self.disks for argument in ("-drive", f"file={disk},if=virtio,format=raw")],
                "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
                "-device", "virtio-net-pci,netdev=net0",
                "-display", "none", "-monitor", "none", "-serial", f"file:{self.console}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_for_ssh(timeout)

    def ssh(self, command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return run(
            "ssh", *SSH_OPTIONS, "-o", "ConnectTimeout=10", "-i", str(self.key), "-p", str(self.ssh_port),
            "root@127.0.0.1", command, check=check, timeout=timeout,
        )

    def wait_for_ssh(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.ssh("true", check=False, timeout=20).returncode == 0:
                    return
            time.sleep(2)
        tail = self.console.read_text(errors="replace")[-3000:] if self.console.exists() else ""
        raise RuntimeError(f"VM not reachable over SSH within {timeout:.0f} s; console:\n{tail}")

    def reboot(self, timeout: float = 400) -> float:
        """Reboot from inside and wait until SSH answers again; returns the seconds it took."""
        start = time.monotonic()
        self.ssh("systemctl reboot", check=False, timeout=30)
        time.sleep(5)  # sshd goes away before the machine does
        self.wait_for_ssh(timeout)
        return time.monotonic() - start

    def connection_data(self) -> dict:
        return {**loopback_ssh(self.ssh_port, self.key), "ssh_connect_retries": 3}  # emulation is slow

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
            if self.process.poll() is None:
                self.process.kill()


def vm_image() -> dict[str, Path]:
    """The cached base image: raw ext4 disk, kernel and initrd, plus the key root accepts."""
    with cache_lock("vm-image"):
        return _vm_image()


def _vm_image() -> dict[str, Path]:
    recipe = hashlib.sha256(f"{VM_PACKAGES} {SETUP} {DEBIAN_MIRROR}".encode()).hexdigest()[:12]
    out = CACHE / f"vm-trixie-{recipe}"
    image = {"disk": out / "disk.img", "kernel": out / "vmlinuz", "initrd": out / "initrd.img", "key": out / "ssh" / "id_ed25519"}
    if image["disk"].exists():
        return image
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    key = make_ssh_key(out / "ssh")
    rootfs = out / "rootfs"
    setup = out / "setup.sh"
    setup.write_text(SETUP)
    run(
        "mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(VM_PACKAGES)}",
        f"--customize-hook=sh {setup} \"$1\" {key}.pub",
        "trixie", str(rootfs), DEBIAN_MIRROR,
        timeout=1800,
    )
    shutil.copy(max(rootfs.glob("boot/vmlinuz-*")), image["kernel"])
    shutil.copy(max(rootfs.glob("boot/initrd.img-*")), image["initrd"])
    run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(out / "disk.tmp"), "6G")
    (out / "disk.tmp").rename(image["disk"])
    shutil.rmtree(rootfs)
    return image


@contextlib.contextmanager
def running_vm(workdir: Path, disks: tuple[Path, ...] = ()) -> Iterator[VM]:
    image = vm_image()
    vm = VM(workdir, image, image["key"], disks=disks)
    try:
        vm.start()
        yield vm
    finally:
        vm.stop()
