"""PostgreSQL and Redis on this machine for the scale-out tests: a fresh database per test.

They skip where a service is absent and fail under REQUIRE_SERVICES=1 (CI), through `need`. The console
processes they start get their environment and commands from tests/served.py.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

from tests.conftest import need
from tests.services import postgres_up, redis_for_worker, redis_up, worker_tag

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
# Under pytest-xdist each worker its own Redis database: 10 for gw0 (and a serial run), 11 for gw1...
REDIS_URL = redis_for_worker(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10"))


@pytest.fixture
def postgres_database():
    """A database of its own, created for the test and dropped after it."""
    need(postgres_up(POSTGRES), "PostgreSQL at 127.0.0.1:5432")
    name = f"console_scale_{worker_tag()}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            # FORCE: a worker or CONN_MAX_AGE connection left open must not leak the database.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url():
    need(redis_up(REDIS_URL), "Redis at 127.0.0.1:6379")
    return REDIS_URL
