"""Database helpers shared by the apps."""

import zlib

from django.db import connection


def serialize_writers(name: str) -> None:
    """Inside a transaction: only one process at a time past this point, until it commits.

    PostgreSQL: a transaction-scoped advisory lock named by `name`. SQLite: nothing to do, the
    transaction is IMMEDIATE (settings), so it already holds the database's write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])


def enqueue_once(task, due) -> bool:
    """Enqueue a periodic worker task unless one of it waits or runs, or due(when the last one was
    enqueued, or None) says it is not due; decided under the writer lock, so that the supervisors of
    several workers enqueue it once, not once each. True when this call enqueued it."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    with transaction.atomic():
        serialize_writers(task.module_path)
        results = DBTaskResult.objects.filter(task_path=task.module_path)
        if results.ready().exists() or results.running().exists():
            return False
        last = results.order_by("-enqueued_at").values_list("enqueued_at", flat=True).first()
        if not due(last):
            return False
        transaction.on_commit(task.enqueue)
    return True
