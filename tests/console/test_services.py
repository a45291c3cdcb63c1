"""The scale-out engines, for real: PostgreSQL and Redis on this machine.

They skip where the service is absent and fail under REQUIRE_SERVICES=1 (CI), through `need`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from channels_redis.core import RedisChannelLayer

from tests.conftest import need

REPO = Path(__file__).resolve().parents[2]
POSTGRES = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/9"

_SETTINGS_VARIABLES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE"}


def _postgres_up() -> bool:
    try:
        with psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _manage(args: list[str], tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARIABLES}
    environ.update(CONSOLE_DATA_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def postgres_database():
    """A database of its own, created for the test and dropped after it."""
    need(_postgres_up(), "PostgreSQL at 127.0.0.1:5432")
    name = f"console_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            # FORCE: a worker or CONN_MAX_AGE connection left open must not leak the database.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_it_migrates_and_checks_on_postgresql(postgres_database, tmp_path):
    migrate = _manage(["migrate", "--no-input"], tmp_path, DATABASE_URL=postgres_database)
    assert migrate.returncode == 0, migrate.stderr
    check = _manage(["check", "--database", "default"], tmp_path, DATABASE_URL=postgres_database)
    assert check.returncode == 0, check.stderr

    with psycopg.connect(postgres_database) as conn:
        applied = {row[0] for row in conn.execute("SELECT DISTINCT app FROM django_migrations")}
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"auth", "fabric", "django_tasks_database"} <= applied
    assert "fabric_host" in tables
    # The console's data stayed in PostgreSQL: no SQLite database was made beside it.
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.fixture
async def redis_layers():
    """Two independent layer instances, as two processes would have."""
    need(_redis_up(), "Redis at 127.0.0.1:6379")
    layers = [RedisChannelLayer(hosts=[REDIS_URL]), RedisChannelLayer(hosts=[REDIS_URL])]
    yield layers
    for layer in layers:
        await layer.close_pools()


async def test_it_sends_to_a_group_across_two_redis_layer_instances(redis_layers):
    sender, receiver = redis_layers
    group = f"job-{uuid.uuid4().hex}"
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    try:
        await sender.group_send(group, {"type": "job.progress", "job": 7, "percent": 42})
        message = await asyncio.wait_for(receiver.receive(channel), timeout=10)
        assert message == {"type": "job.progress", "job": 7, "percent": 42}
    finally:
        await receiver.group_discard(group, channel)


async def test_it_reaches_a_redis_group_from_another_process_through_settings(redis_layers, tmp_path):
    """REDIS_URL in the environment selects the Redis layer, and a message crosses processes."""
    receiver = redis_layers[0]
    group = f"jobs-{uuid.uuid4().hex}"
    script = (
        "from asgiref.sync import async_to_sync; from channels.layers import get_channel_layer;"
        "layer = get_channel_layer(); print(type(layer).__name__);"
        f"async_to_sync(layer.group_send)({group!r}, {{'type': 'job.update', 'state': 'running'}})"
    )
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    try:
        sent = await asyncio.to_thread(_manage, ["shell", "-c", script], tmp_path, REDIS_URL=REDIS_URL)
        assert sent.returncode == 0, sent.stderr
        assert "RedisChannelLayer" in sent.stdout
        message = await asyncio.wait_for(receiver.receive(channel), timeout=10)
        assert message == {"type": "job.update", "state": "running"}
    finally:
        await receiver.group_discard(group, channel)
