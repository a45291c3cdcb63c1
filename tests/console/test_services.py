"""The scale-out engines, for real: PostgreSQL and Redis on this machine.

They skip where the service is absent and fail under REQUIRE_SERVICES=1 (CI), through `need`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from channels_redis.core import RedisChannelLayer

from console.fanout import FanoutChannelLayer
from tests.conftest import need
from tests.served import console_environ, manage_once
from tests.services import POSTGRES, postgres_up, redis_up, worker_tag

REPO = Path(__file__).resolve().parents[2]
# Shared by pytest-xdist workers (and test_scale_fanout.py): each test uses groups named with a
# uuid4 of its own, so no worker receives another's messages.
REDIS_URL = "redis://127.0.0.1:6379/9"


def _manage(args: list[str], tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    return manage_once(console_environ(tmp_path, **variables), *args)


@pytest.fixture
def postgres_database():
    """A database of its own, created for the test and dropped after it."""
    need(postgres_up(), "PostgreSQL at 127.0.0.1:5432")
    name = f"console_test_{worker_tag()}_{uuid.uuid4().hex[:12]}"
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
    need(redis_up(REDIS_URL), "Redis at 127.0.0.1:6379")
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


async def test_it_reaches_a_redis_group_from_another_process_through_settings(tmp_path):
    """REDIS_URL in the environment selects the Redis layer (under the fan-out), and a message
    crosses processes."""
    need(redis_up(REDIS_URL), "Redis at 127.0.0.1:6379")
    inner = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    receiver = FanoutChannelLayer(layer=inner)  # a web process, as settings build it
    group = f"jobs-{uuid.uuid4().hex}"
    script = (
        "from asgiref.sync import async_to_sync; from channels.layers import get_channel_layer;"
        "layer = get_channel_layer(); print(type(layer).__name__, type(layer.inner).__name__);"
        f"async_to_sync(layer.group_send)({group!r}, {{'type': 'job.update', 'state': 'running'}})"
    )
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    try:
        sent = await asyncio.to_thread(_manage, ["shell", "-c", script], tmp_path, REDIS_URL=REDIS_URL)
        assert sent.returncode == 0, sent.stderr
        assert "FanoutChannelLayer RedisChannelLayer" in sent.stdout
        message = await asyncio.wait_for(receiver.receive(channel), timeout=10)
        assert message == {"type": "job.update", "state": "running"}
    finally:
        await receiver.group_discard(group, channel)
        await receiver.close()


def test_it_keeps_postgresql_connections_across_requests_and_replaces_a_dead_one(postgres_database, tmp_path):
    script = (
        "import json, psycopg\n"
        "from django.conf import settings\n"
        "from django.core.signals import request_finished, request_started\n"
        "from django.db import connection\n"
        "def one_request():\n"
        "    request_started.send(sender=None)\n"
        "    with connection.cursor() as cursor:\n"
        "        cursor.execute('SELECT pg_backend_pid()')\n"
        "        pid = cursor.fetchone()[0]\n"
        "    request_finished.send(sender=None)\n"
        "    return pid\n"
        "pids = [one_request(), one_request()]\n"
        f"with psycopg.connect({postgres_database!r}, autocommit=True) as admin:\n"
        "    admin.execute('SELECT pg_terminate_backend(%s)', [pids[-1]])\n"
        "pids.append(one_request())\n"
        "db, layer = settings.DATABASES['default'], settings.CHANNEL_LAYERS['default']\n"
        "print(json.dumps({'pids': pids, 'max_age': db['CONN_MAX_AGE'], 'health': db['CONN_HEALTH_CHECKS'],"
        " 'layer': layer['BACKEND'], 'inner': layer['CONFIG']['layer']['BACKEND']}))\n"
    )
    ran = _manage(["shell", "-c", script], tmp_path, DATABASE_URL=postgres_database, REDIS_URL=REDIS_URL)

    assert ran.returncode == 0, ran.stderr[-2000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    first, second, third = seen["pids"]
    assert first == second  # CONN_MAX_AGE: the second request reused the connection
    assert third != second  # CONN_HEALTH_CHECKS: the dead one was noticed and replaced, no error
    assert seen["max_age"] >= 60 and seen["health"] is True
    assert seen["layer"] == "console.fanout.FanoutChannelLayer"
    assert seen["inner"] == "channels_redis.core.RedisChannelLayer"
