"""Probes for the services some tests need (PostgreSQL, Redis): the tests call need() with them,
which skips, or fails under REQUIRE_SERVICES=1, when a service is absent."""

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

POSTGRES = "postgres://postgres@127.0.0.1:5432"


def postgres_up(server: str = POSTGRES) -> bool:
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def worker_index() -> int:
    """The pytest-xdist worker's number (gw3 -> 3); 0 in a serial run."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def worker_tag() -> str:
    """gw3 under pytest-xdist, "serial" otherwise: part of the names a worker's tests create on shared
    servers (PostgreSQL databases), so a leftover shows whose it was."""
    return os.environ.get("PYTEST_XDIST_WORKER", "serial")


def redis_for_worker(url: str) -> str:
    """The Redis URL with a database of the worker's own: the URL's number plus the worker's index,
    within Redis's default 16 databases, so two workers' consoles never share channel-layer groups."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + worker_index()) % 16}"))
