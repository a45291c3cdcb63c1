"""manage.py job_worker: django-tasks-db's db_worker plus the job supervisor thread.

Every worker process runs migration tasks one at a time and, beside them, the supervisor
(migrations_ui.jobs.supervisor): admission ticks and recovery of jobs whose worker died; and, when
AUDIT_SYSLOG_URL is set, the audit forwarder (audit.forward), in its own thread so that a slow
receiver never holds up admission. Options are db_worker's; the polling interval defaults to 0.1 s
so a freed slot is used at once.
"""

import threading

from django.db import connections
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from audit.forward import start_forwarder
from migrations_ui.jobs.supervisor import start_supervisor
from notifications.send import start_sender
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, DbWorkerCommand):
    help = "Run migration jobs (db_worker) with the job supervisor (admission, recovery of dead workers)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(interval=0.1, reload=False)
        parser.add_argument("--no-supervisor", action="store_false", dest="supervisor", help="tasks only")

    def handle(self, *args, supervisor: bool = True, **options):
        keep_connections()
        stop = threading.Event()
        if supervisor:
            start_supervisor(stop)
            start_forwarder(stop)  # the audit trail to syslog, when AUDIT_SYSLOG_URL names a receiver
            start_sender(stop)  # webhooks and e-mail (notifications)
        try:
            super().handle(*args, **options)
        finally:
            stop.set()


def keep_connections() -> None:
    """The worker keeps its database connections, checked before each reuse. db_worker looks for a
    task ten times a second and closes the connection after each look unless CONN_MAX_AGE says keep:
    on SQLite (no CONN_MAX_AGE: console/env.py) a new connection and its PRAGMAs per look. An idle
    worker's CPU: 110-115 ticks in 30 s before, 66 after (the machine busy with a test run)."""
    for alias in connections:
        connections.settings[alias].update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)
