"""Which of the console's manage.py commands run Django's system checks before they start."""

from django.core.management import get_commands, load_command_class

APPS = {"access", "api", "audit", "console", "fabric", "migrations_ui", "notifications"}


def test_only_serve_runs_the_system_checks_of_the_consoles_own_commands():
    """serve starts the console, and refuses a broken release there (as migrate and check do); the
    operator's commands and the workers start without them (utilities.commands.NoSystemChecks). A new
    command must choose."""
    ours = {name: app for name, app in get_commands().items() if app in APPS}
    assert {"job_worker", "move_vm", "preflight", "evacuate", "sync_inventory"} <= set(ours)
    checked = {name for name, app in ours.items() if load_command_class(app, name).requires_system_checks}
    assert checked == {"serve"}
