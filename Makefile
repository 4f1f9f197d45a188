# The two commands of a fresh clone (README): see labhub work, and run the tests. Each first
# installs what it needs when missing (scripts/setup says what and why) and creates .venv.
.PHONY: sandbox sandbox-https sandbox-down test quick

sandbox:  ## a throwaway Debian 13 server on this machine, provisioned with JupyterHub
	@bash scripts/setup sandbox
	.venv/bin/python -m tests.sandbox up

sandbox-https:  ## the same, behind the TLS proxy (a certificate of the sandbox's own CA)
	@bash scripts/setup sandbox
	.venv/bin/python -m tests.sandbox up --https

sandbox-down:  ## remove it
	.venv/bin/python -m tests.sandbox down

# pytest-xdist workers sharing the machine's cores. On two cores three keep them ~93% busy:
# each step is ~28% slower, the whole run shorter than on two (docs/benchmarks.md, "Test
# suite"). `make test WORKERS=2` for two.
WORKERS ?= 3

test:  ## the whole suite, as CI runs it, on $(WORKERS) workers (PYTEST_ARGS="-m hub" for a subset)
	@bash scripts/setup test
	.venv/bin/pytest -n $(WORKERS) $(PYTEST_ARGS)

quick:  ## the tests that need no host: seconds
	@bash scripts/setup quick
	.venv/bin/pytest -m quick
