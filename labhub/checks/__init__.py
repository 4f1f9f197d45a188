"""Host checks: what each task promises, verified on a real host with testinfra. Product
code: sysadmins run them against their servers, and the nightly drift check runs them.

    pytest labhub/checks --inventory inventories/lab.py            # every server, read-only
    pytest labhub/checks --inventory inventories/lab.py --host H   # one of them

One module per task (test_docker.py checks tasks/docker.py, and so on); `conftest.py` is the
pytest plugin that owns --inventory and --host, and `target.py` reads a host's state with the
deploy's own fact commands.
"""
