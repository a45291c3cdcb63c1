"""Announcing job changes to browsers over Channels (filled in with the jobs pages)."""


def send_job_update(job_id: int) -> None:
    return None
