"""Strict parsing of the environment into settings values.

Every function raises ConfigError naming the variable and what it accepts, so a bad value stops
start-up with a message an operator can act on instead of a traceback deep inside Django.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url


class ConfigError(Exception):
    pass


PRIVATE_UMASK = 0o077


def private_files() -> None:
    """Files and folders this process creates are its user's alone (0600 / 0700): the databases hold
    live session keys and encrypted credentials, the data folder generated keys. SQLite gives its -wal
    and -shm files the database's mode."""
    os.umask(PRIVATE_UMASK)


DATA_FILES = ("db.sqlite3", "channels.sqlite3", "fabric.sqlite3", "secret_key", "credential_key", "emulator_password")


def tighten(data_dir: Path) -> None:
    """The console's own data files (and their -wal/-shm) that an older version left readable by others
    become its user's alone. Only those: the data folder may be shared with other files."""
    for name in DATA_FILES:
        for path in data_dir.glob(name + "*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_mode & PRIVATE_UMASK:
                path.chmod(path.stat().st_mode & 0o777 & ~PRIVATE_UMASK)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def parse_int(name: str, raw: str | None, default: int, minimum: int = 0) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def parse_hosts(name: str, raw: str | None, default: list[str]) -> list[str]:
    if raw is None:
        return default
    hosts = [h.strip() for h in raw.split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"{name} is empty; give comma-separated host names, e.g. console.example.com,127.0.0.1")
    for host in hosts:
        if any(c.isspace() or c in "/\\@" for c in host):
            raise ConfigError(f"{name} entry {host!r} is not a host name (comma-separated names, '*' or '.domain')")
    return hosts


def sqlite_database(path: Path) -> dict:
    """SQLite tuned for several processes: WAL, IMMEDIATE write transactions, a busy timeout."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        },
    }


def parse_database_url(name: str, raw: str | None, default_path: Path) -> dict:
    if raw is None or raw.strip() == "":
        return sqlite_database(default_path)
    scheme = urlsplit(raw).scheme
    if scheme == "sqlite":
        path = dj_database_url.parse(raw)["NAME"]
        if path in ("", ":memory:"):
            raise ConfigError(f"{name}={raw!r}: give a file, e.g. sqlite:////var/lib/console/db.sqlite3")
        return sqlite_database(Path(path))
    if scheme in ("postgres", "postgresql", "pgsql"):
        config = dj_database_url.parse(raw, conn_max_age=600, conn_health_checks=True)
        if not config.get("NAME"):
            raise ConfigError(f"{name}={raw!r} names no database, e.g. postgres://user@host:5432/console")
        return config
    raise ConfigError(
        f"{name}={raw!r}: accepted forms are sqlite:///path/to/db.sqlite3 and postgres://user:pass@host:5432/db"
    )


def parse_redis_url(name: str, raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(f"{name}={raw!r}: expected redis://host:6379/0 (or rediss://, unix://)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"{name}={raw!r} has an invalid port") from None
    return raw


def parse_choice(name: str, raw: str | None, choices: tuple[str, ...], default: str) -> str:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r}: accepted values are {', '.join(choices)}")
    return value


def secret_key(name: str, raw: str | None, key_file: Path) -> str:
    """The key from the environment, or one generated once into a file outside git."""
    if raw is not None:
        if len(raw) < 32:
            raise ConfigError(f"{name} is too short; use at least 32 random characters")
        return raw
    if key_file.exists():
        key = key_file.read_text().strip()
        if len(key) >= 32:
            return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


# RFC 6587 (syslog over TCP, octet-counted) has no assigned port; 601 is syslog-conn's (RFC 3195),
# the one rsyslog and syslog-ng examples use. 6514 is syslog over TLS's (RFC 5425).
SYSLOG_PORTS = {"tcp": 601, "tls": 6514}


def parse_syslog_url(name: str, raw: str | None) -> str:
    """tcp://host[:port] or tls://host[:port], normalised with its port; "" when unset (off)."""
    if raw is None or raw.strip() == "":
        return ""
    parts = urlsplit(raw.strip())
    accepted = "accepted forms are tcp://host:port and tls://host:port (syslog over TCP or TLS)"
    if parts.scheme not in SYSLOG_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"{name}={raw!r}: {accepted}")
    try:
        port = parts.port or SYSLOG_PORTS[parts.scheme]
    except ValueError:
        raise ConfigError(f"{name}={raw!r} has an invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def parse_file(name: str, raw: str | None) -> str:
    """A file that must exist when given; "" when unset."""
    if raw is None or raw.strip() == "":
        return ""
    if not Path(raw).is_file():
        raise ConfigError(f"{name}={raw!r}: no such file")
    return raw


def parse_syslog_name(name: str, raw: str | None, max_length: int = 255) -> str:
    """A syslog header field (RFC 5424: printable US-ASCII, no space); "" when unset."""
    value = (raw or "").strip()
    if len(value) > max_length or any(not 33 <= ord(c) <= 126 for c in value):
        raise ConfigError(f"{name}={raw!r}: at most {max_length} printable ASCII characters, no spaces")
    return value


def parse_networks(name: str, raw: str | None) -> tuple:
    """Comma-separated networks (10.0.0.0/24, 127.0.0.1/32, ::1/128; a bare address is its /32 or
    /128); () when unset. A network with host bits set is refused: 10.0.0.1/8 is a typo, not a choice."""
    import ipaddress

    networks = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip()))
        except ValueError:
            raise ConfigError(f"{name}: {part.strip()!r} is not a network, e.g. 10.0.0.0/24 or 127.0.0.1/32") from None
    return tuple(networks)


def parse_token(name: str, raw: str | None, min_length: int = 32) -> str:
    """A bearer token set by the operator; "" when unset (off). Short ones are refused."""
    value = (raw or "").strip()
    if value and (len(value) < min_length or any(not 33 <= ord(c) <= 126 for c in value)):
        raise ConfigError(f"{name} must be at least {min_length} printable ASCII characters without spaces")
    return value
