"""Worker tasks (Django's task API, run by db_worker / job_worker processes)."""

from django_tasks import task

from migrations_ui.jobs.runner import Runner


@task()
def run_job(job_id: int) -> None:
    """Run an admitted job to its end (a no-op when it was cancelled or claimed meanwhile)."""
    runner = Runner.start(job_id)
    if runner is not None:
        runner.run()


@task()
def recover_job(job_id: int) -> None:
    """Follow a job whose worker died to its true end."""
    runner = Runner.take_over(job_id)
    if runner is not None:
        runner.recover()
