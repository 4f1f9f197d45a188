"""Benchmark the deploy on throwaway test hosts and record the results in docs/benchmarks.md.

    python -m tests.benchmark host-layer   # floor, fresh converge, no-op with 10 / 500 users / 500 in 50 groups
    python -m tests.benchmark drift        # drift check of one and of three hosts vs a no-op
    python -m tests.benchmark hub          # fresh converge and no-op with the hub stack
    python -m tests.benchmark class-start  # 20 members start their servers at the same moment
    python -m tests.benchmark login-flood  # 100 wrong passwords in 10 s: the hub's CPU and API latency, before and after issue 26
    python -m tests.benchmark backup       # 500 members' homes: full and incremental backup, restore, no-op
    python -m tests.benchmark lab-page     # the lab page: a member's view, a snapshot's folder listed, 100 MB restored, the overview
    python -m tests.benchmark quotas       # 500 homes with quotas on the VM: reading their use, the no-op
    python -m tests.benchmark swarm        # three-node swarm lab: no-op vs one node; 10 servers across it vs on one node
    python -m tests.benchmark suite        # where the last `make test` spent its time (test-artifacts/suite-times.json)

Not a test: it prints a table and rewrites its own section of docs/benchmarks.md. Runs are
interleaved and repeated, and the median is reported, because the machines are noisy. One
module per section; common.py holds what they share.
"""
