"""PostgreSQL and Redis on this machine for the scale-out tests: a fresh database per test.

They skip where a service is absent and fail under REQUIRE_SERVICES=1 (CI), through `need`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import need
from tests.services import postgres_up, redis_for_worker, redis_up, worker_tag

REPO = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
# Under pytest-xdist each worker its own Redis database: 10 for gw0 (and a serial run), 11 for gw1...
REDIS_URL = redis_for_worker(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10"))
# Never inherited from the caller: every process a test starts gets them from the test alone.
SETTINGS_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}


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


def console_env(data_dir: Path, **variables: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    environ.update(CONSOLE_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="console.settings", **variables)
    return environ


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
