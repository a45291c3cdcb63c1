"""The forwarder as deployed: two job_worker processes on one database (SQLite, PostgreSQL), a
receiver that is down while events are written and then comes up. It gets every event once, in order."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.audit.siem import Receiver
from tests.scale.conftest import postgres_database  # noqa: F401 - the fixture: a database of its own
from tests.served import REPO, SETTINGS_VARIABLES, free_port

pytestmark = pytest.mark.slow  # starts real processes


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite3"
    return request.getfixturevalue("postgres_database")


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def record_events(env: dict, count: int) -> None:
    manage(
        env,
        "shell",
        "-c",
        f"from audit.log import record\nfor n in range({count}): record('test.event', details={{'n': n}})",
    )


def test_two_workers_forward_every_event_once_in_order_across_a_receiver_outage(tmp_path, database_url):
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES and not k.startswith(("HYPERV_", "AUDIT_"))
    }
    env.update(
        CONSOLE_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        HYPERV_DRIVER="sim",
        AUDIT_SYSLOG_URL=f"tcp://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
    )
    manage(env, "migrate", "-v0")
    worker = [sys.executable, str(REPO / "manage.py"), "job_worker", "--queue-name", "default", "--no-reload"]
    workers = [
        subprocess.Popen(worker, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)
    ]
    receiver = None
    try:
        record_events(env, 20)  # the receiver is down: the workers retry
        time.sleep(1.5)
        receiver = Receiver(port=port)
        record_events(env, 20)
        ids = json.loads(
            manage(
                env,
                "shell",
                "-v0",
                "-c",
                "from audit.models import AuditEvent as E; import json; "
                "print(json.dumps(list(E.objects.order_by('id').values_list('id', flat=True))))",
            ).splitlines()[-1]
        )
        messages = receiver.wait_for(len(ids), timeout=40)
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=30)
        if receiver is not None:
            receiver.stop()
    sequences = [json.loads(m[m.index(b"{") :])["sequence"] for m in messages]
    assert len(ids) >= 40
    assert sequences == ids  # every event, once, in order
