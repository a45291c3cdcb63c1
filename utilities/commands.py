"""What the console's own manage.py commands share."""


class NoSystemChecks:
    """Mixed into an operator's command (job_worker, move_vm, preflight...): Django's system checks
    import every URL configuration and check every model and template, 0.7 s of CPU before the command
    does anything (1.2 s against 0.5 s for a bare command start, measured with `manage.py check`).
    They find the project's mistakes, not the operator's: `serve`, `migrate` and `check` still run
    them, so a broken release is refused where it is installed and started."""

    requires_system_checks: list[str] = []
