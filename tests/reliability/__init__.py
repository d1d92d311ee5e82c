"""Reliability harnesses: crash safety, concurrent writers and hostile input.

Short forms run in `make test`; `RUNHISTORY_LONG=1` raises every count (see docs/reliability.md).
"""
