"""labhub's own pyinfra operations and the facts they read, one module per system concern,
as pyinfra's own `operations/` and `facts/` are organised:

    shell     helpers every module uses: quoting, one-round-trip scripts, change triggers
    server    the OS release; a command run only when an earlier operation changed
    files     files, directories and a managed block in a shared file, from one fact
    apt       packages and a fingerprint-checked signing key
    systemd   units enabled, running, restarted on change
    accounts  admins, jupyter-* accounts and the docker group
    cifs      CIFS mounts from fstab, remounted when their line or password changes
    images    image archives loaded; notebook images built and in the local registry
    compose   generated secrets; a compose stack up and answering
    restic    a backup repository opened with its password; the lab restored from a snapshot
    python    a virtualenv with pinned requirements

Each operation reads one fact (one SSH round trip) however many users, files or packages it
manages, and yields commands only for what differs, so a no-op run stays flat. Measured on a
Debian 13 test host: every fact costs ~45 ms; `server.user` in a loop costs ~0.7 s per user
and `files.put` three facts per file, which is why these exist. Every operation is called
with `name=` by the tasks, so pyinfra never labels one with its arguments, and no file
content or secret is ever part of a command line.
"""
