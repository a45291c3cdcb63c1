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
