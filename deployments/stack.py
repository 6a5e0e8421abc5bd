"""Moved to rewarm.stack: the local production stack starts servers, and deployments/ holds only how flows
run. This name stays so that `python -m rewarm.deployments.stack` and imports from it keep working."""

from __future__ import annotations

from rewarm.processes import free_port
from rewarm.stack import (
    DATABASES,
    DB_USER,
    Stack,
    check_can_start,
    createdb,
    main,
    postgres,
    postgres_bin,
    run,
    serve_stack,
    stack,
)

__all__ = [
    "DATABASES",
    "DB_USER",
    "Stack",
    "check_can_start",
    "createdb",
    "free_port",
    "main",
    "postgres",
    "postgres_bin",
    "serve_stack",
    "stack",
]

if __name__ == "__main__":
    run()
