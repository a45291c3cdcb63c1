"""Probes for the services some tests need (PostgreSQL, Redis): the tests call need() with them,
which skips, or fails under REQUIRE_SERVICES=1, when a service is absent."""

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
