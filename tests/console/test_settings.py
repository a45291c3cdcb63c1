"""Settings from the environment: every bad value stops start-up with a message naming the variable."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from console import env
from tests.served import SETTINGS_VARIABLES

REPO = Path(__file__).resolve().parents[2]


def test_it_parses_booleans():
    assert env.parse_bool("DEBUG", None, default=False) is False
    assert env.parse_bool("DEBUG", " Yes ", default=False) is True
    assert env.parse_bool("DEBUG", "0", default=True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_it_rejects_a_bad_debug(raw):
    with pytest.raises(env.ConfigError, match=r"^DEBUG="):
        env.parse_bool("DEBUG", raw, default=False)


def test_it_defaults_to_sqlite_in_the_data_dir(tmp_path):
    config = env.parse_database_url("DATABASE_URL", None, tmp_path / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")
    # Several processes share the file: WAL, IMMEDIATE write transactions, a busy timeout.
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


def test_it_reads_a_sqlite_url(tmp_path):
    config = env.parse_database_url("DATABASE_URL", f"sqlite:///{tmp_path}/other.sqlite3", tmp_path / "x")
    assert config["NAME"] == f"{tmp_path}/other.sqlite3"


def test_it_reads_a_postgres_url(tmp_path):
    config = env.parse_database_url("DATABASE_URL", "postgres://ops:pw@db.contoso.test:5433/console", tmp_path)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["HOST"], config["PORT"], config["USER"]) == (
        "console",
        "db.contoso.test",
        5433,
        "ops",
    )
    # Workers reconnect per task without it (architecture.md: 3x slower).
    assert config["CONN_MAX_AGE"] > 0


@pytest.mark.parametrize(
    "raw", ["mysql://root@127.0.0.1/console", "http://example.test/db", "not a url", "postgres//x"]
)
def test_it_rejects_a_database_url_scheme(raw, tmp_path):
    with pytest.raises(env.ConfigError, match=r"^DATABASE_URL=.*accepted forms"):
        env.parse_database_url("DATABASE_URL", raw, tmp_path / "db.sqlite3")


@pytest.mark.parametrize("raw", ["sqlite://", "sqlite:///:memory:"])
def test_it_rejects_sqlite_without_a_file(raw, tmp_path):
    with pytest.raises(env.ConfigError, match=r"^DATABASE_URL=.*give a file"):
        env.parse_database_url("DATABASE_URL", raw, tmp_path / "db.sqlite3")


@pytest.mark.parametrize("raw", ["postgres://postgres@127.0.0.1:5432", "postgres://postgres@127.0.0.1:5432/"])
def test_it_rejects_postgres_without_a_database_name(raw, tmp_path):
    with pytest.raises(env.ConfigError, match=r"^DATABASE_URL=.*names no database"):
        env.parse_database_url("DATABASE_URL", raw, tmp_path / "db.sqlite3")


def test_it_reads_redis_urls():
    assert env.parse_redis_url("REDIS_URL", None) is None
    assert env.parse_redis_url("REDIS_URL", "  ") is None
    assert env.parse_redis_url("REDIS_URL", "redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    "raw", ["http://127.0.0.1:6379/0", "127.0.0.1:6379", "redis://", "redis://127.0.0.1:notaport/0"]
)
def test_it_rejects_a_bad_redis_url(raw):
    with pytest.raises(env.ConfigError, match=r"^REDIS_URL="):
        env.parse_redis_url("REDIS_URL", raw)


def test_it_reads_syslog_urls_and_leaves_forwarding_off_without_one():
    assert env.parse_syslog_url("AUDIT_SYSLOG_URL", None) == ""
    assert env.parse_syslog_url("AUDIT_SYSLOG_URL", " ") == ""
    assert env.parse_syslog_url("AUDIT_SYSLOG_URL", "tcp://siem.contoso.test:1514") == "tcp://siem.contoso.test:1514"
    assert env.parse_syslog_url("AUDIT_SYSLOG_URL", "tls://siem.contoso.test") == "tls://siem.contoso.test:6514"
    assert env.parse_syslog_url("AUDIT_SYSLOG_URL", "tcp://[::1]") == "tcp://[::1]:601"


@pytest.mark.parametrize(
    "raw", ["udp://siem:514", "siem:514", "tcp://", "tcp://siem:port", "tls://siem:6514/path", "tcp://siem:1?x=1"]
)
def test_it_rejects_a_bad_syslog_url(raw):
    with pytest.raises(env.ConfigError, match=r"^AUDIT_SYSLOG_URL="):
        env.parse_syslog_url("AUDIT_SYSLOG_URL", raw)


def test_it_wants_syslog_files_that_exist_and_header_names_syslog_allows(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    assert env.parse_file("AUDIT_SYSLOG_CA_FILE", str(tmp_path / "ca.pem")) == str(tmp_path / "ca.pem")
    with pytest.raises(env.ConfigError, match=r"^AUDIT_SYSLOG_CA_FILE=.*no such file"):
        env.parse_file("AUDIT_SYSLOG_CA_FILE", str(tmp_path / "missing.pem"))
    assert env.parse_syslog_name("AUDIT_SYSLOG_HOSTNAME", "console.contoso.test") == "console.contoso.test"
    for bad in ("two words", "x" * 256, "konsole-ü"):
        with pytest.raises(env.ConfigError, match=r"^AUDIT_SYSLOG_HOSTNAME="):
            env.parse_syslog_name("AUDIT_SYSLOG_HOSTNAME", bad)


def test_it_reads_allowed_hosts():
    default = ["127.0.0.1"]
    assert env.parse_hosts("ALLOWED_HOSTS", None, default) == default
    assert env.parse_hosts("ALLOWED_HOSTS", " console.contoso.test, .contoso.test ,", default) == [
        "console.contoso.test",
        ".contoso.test",
    ]


@pytest.mark.parametrize("raw", ["", " , ,"])
def test_it_rejects_empty_allowed_hosts(raw):
    with pytest.raises(env.ConfigError, match=r"^ALLOWED_HOSTS is empty"):
        env.parse_hosts("ALLOWED_HOSTS", raw, ["127.0.0.1"])


@pytest.mark.parametrize("raw", ["http://console.contoso.test", "console contoso", "admin@console"])
def test_it_rejects_an_allowed_host_that_is_not_a_name(raw):
    with pytest.raises(env.ConfigError, match=r"^ALLOWED_HOSTS entry"):
        env.parse_hosts("ALLOWED_HOSTS", raw, ["127.0.0.1"])


def test_it_rejects_a_short_secret_key(tmp_path):
    with pytest.raises(env.ConfigError, match=r"^SECRET_KEY is too short"):
        env.secret_key("SECRET_KEY", "short", tmp_path / "secret_key")
    assert not (tmp_path / "secret_key").exists()


def test_it_uses_the_secret_key_from_the_environment(tmp_path):
    key = "k" * 40
    assert env.secret_key("SECRET_KEY", key, tmp_path / "secret_key") == key
    assert not (tmp_path / "secret_key").exists()


def test_it_generates_the_secret_key_file_once_and_reuses_it(tmp_path):
    key_file = tmp_path / "nested" / "secret_key"
    first = env.secret_key("SECRET_KEY", None, key_file)
    assert len(first) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert env.secret_key("SECRET_KEY", None, key_file) == first


def test_it_replaces_a_truncated_secret_key_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("too-short\n")
    key = env.secret_key("SECRET_KEY", None, key_file)
    assert len(key) >= 32
    assert key_file.read_text().strip() == key


def test_it_reads_the_hyperv_driver_choice():
    assert env.parse_choice("HYPERV_DRIVER", None, ("psrp", "sim"), "sim") == "sim"
    assert env.parse_choice("HYPERV_DRIVER", "PSRP", ("psrp", "sim"), "sim") == "psrp"
    with pytest.raises(env.ConfigError, match=r"^HYPERV_DRIVER='winrm': accepted values are psrp, sim"):
        env.parse_choice("HYPERV_DRIVER", "winrm", ("psrp", "sim"), "sim")


@pytest.mark.parametrize(("raw", "message"), [("fast", "not a whole number"), ("0", "at least 1")])
def test_it_rejects_a_bad_sim_time_scale(raw, message):
    with pytest.raises(env.ConfigError, match=rf"^SIM_TIME_SCALE=.*{message}"):
        env.parse_int("SIM_TIME_SCALE", raw, default=4, minimum=1)


def _clean_env(tmp_path, **overrides):
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_VARIABLES}
    environ.update(CONSOLE_DATA_DIR=str(tmp_path), **overrides)
    return environ


# The console's settings variables and its data directory: a child gets only what a test sets.
_SETTINGS_VARIABLES = {*SETTINGS_VARIABLES, "CONSOLE_DATA_DIR"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/console"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("SECRET_KEY", "short"),
        ("ALLOWED_HOSTS", ""),
        ("HYPERV_DRIVER", "vmware"),
        ("AUDIT_SYSLOG_URL", "udp://siem.contoso.test:514"),
        ("AUTH_LDAP_SERVER_URI", "http://dc1.corp.example"),
        ("METRICS_TOKEN", "too-short"),
        ("METRICS_ALLOW", "10.0.0.1/8"),
        ("NOTIFY_MAX_ATTEMPTS", "0"),
        ("NOTIFY_TIMEOUT", "soon"),
        ("NOTIFY_KEEP_DAYS", "-1"),
        ("EMAIL_PORT", "smtp"),
        ("EMAIL_USE_TLS", "perhaps"),
    ],
)
def test_it_stops_manage_py_with_a_message_naming_the_variable(tmp_path, variable, value):
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check"],
        env=_clean_env(tmp_path, **{variable: value}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def test_it_passes_manage_py_check_with_a_clean_environment(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check"],
        env=_clean_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_it_refuses_starttls_and_tls_together(tmp_path):
    env = _clean_env(tmp_path, EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "check"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "EMAIL_USE_SSL" in result.stderr and "Traceback" not in result.stderr
