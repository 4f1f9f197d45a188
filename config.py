"""pyinfra loads this file (from the directory you run it in) before the inventory.

It pins pyinfra to the version in requirements.txt, and makes every host's data be validated
against the model in labhub/config/ as soon as the inventory is loaded: bad input stops the run before
any host is contacted. A server whose SSH host key changed (a reinstall) gets one clear message.
Operations are ordered from the call stack's frames without reading source files
(labhub/operation_order.py).
"""

from pyinfra import config

from labhub import operation_order
from labhub.inventory import validate_before_connect
from labhub.ssh_host_keys import explain_changed_host_keys

config.REQUIRE_PYINFRA_VERSION = "~=3.10.0"

validate_before_connect()
operation_order.install()
explain_changed_host_keys()
