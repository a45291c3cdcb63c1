"""django-tasks-db workers claim tasks with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL.

Two connections stand for two workers: while one holds the first ready task in its claim
transaction, the other gets the next one at once, never the same, and never waits.
"""

from __future__ import annotations

import json

import pytest

from tests.served import console_environ, manage_once

pytestmark = pytest.mark.slow

# Runs inside `manage.py shell` on the test's PostgreSQL database.
TWO_WORKERS = """
import json, threading, time
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult
from migrations_ui.jobs.tasks import run_job

for n in range(3):
    run_job.enqueue(10_000 + n)
ready = DBTaskResult.objects.ready()
first_holds = threading.Event()
release = threading.Event()
seen = dict()

def first_worker():
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            task = ready.get_locked()
        seen["first"] = str(task.id)
        seen["sql"] = queries.captured_queries[-1]["sql"]
        first_holds.set()
        release.wait(30)
    connection.close()

def second_worker():
    first_holds.wait(30)
    started = time.monotonic()
    with transaction.atomic():
        task = ready.get_locked()
        seen["second"] = str(task.id)
        task.claim("second")
    seen["waited_s"] = time.monotonic() - started
    release.set()
    connection.close()

threads = [threading.Thread(target=first_worker), threading.Thread(target=second_worker)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
seen["vendor"] = connection.vendor
print(json.dumps(seen))
"""


def test_two_workers_never_claim_the_same_task(postgres_database, tmp_path):
    env = console_environ(tmp_path, DATABASE_URL=postgres_database)
    migrated = manage_once(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr[-2000:]

    ran = manage_once(env, "shell", "-c", TWO_WORKERS, timeout=120)

    assert ran.returncode == 0, ran.stderr[-2000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["vendor"] == "postgresql"
    assert "FOR UPDATE SKIP LOCKED" in seen["sql"]
    assert seen["first"] != seen["second"]
    assert seen["waited_s"] < 5  # skipped the locked row instead of waiting for it
