"""Host checks (testinfra): the same ones a sysadmin runs against a real lab server."""
