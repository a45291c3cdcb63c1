"""Data files are their user's alone (issue 17): the databases hold live session keys, the key files
the keys. Every process sets umask 0o077 when it loads the settings; serve also tightens old files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from console import env
from tests.served import SETTINGS_VARIABLES

REPO = Path(__file__).resolve().parents[2]


def manage(data_dir: Path, *args: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith("HYPERV_")}
    environ["CONSOLE_DATA_DIR"] = str(data_dir)
    subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=environ,
        check=True,
        capture_output=True,
        timeout=120,
        # As an operator's shell starts it: files readable by everyone unless the console says otherwise.
        umask=0o022,
    )


def modes(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in data_dir.rglob("*")}


def test_a_fresh_data_dirs_files_are_0600(tmp_path):
    data_dir = tmp_path / "data"

    manage(data_dir, "migrate", "--noinput")
    manage(data_dir, "migrate", "--noinput", "--database", "channels")
    manage(data_dir, "shell", "-c", "from fabric.driver import sim_store; sim_store()._connect()")

    found = modes(data_dir)
    assert {"db.sqlite3", "channels.sqlite3", "fabric.sqlite3", "secret_key"} <= set(found), found
    assert {name: mode for name, mode in found.items() if mode != "0o600"} == {}
    assert oct(stat.S_IMODE(data_dir.stat().st_mode)) == "0o700"


def test_serve_tightens_data_files_an_older_version_left_readable(tmp_path):
    for name in ("db.sqlite3", "db.sqlite3-wal", "channels.sqlite3", "secret_key", "notes.txt"):
        (tmp_path / name).write_text("x")
        (tmp_path / name).chmod(0o644)

    env.tighten(tmp_path)

    assert modes(tmp_path) == {
        "db.sqlite3": "0o600",
        "db.sqlite3-wal": "0o600",
        "channels.sqlite3": "0o600",
        "secret_key": "0o600",
        "notes.txt": "0o644",  # not the console's: left alone
    }
