from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from migrations_ui.facts import Kind
from migrations_ui.models import JobState
from migrations_ui.runner import STEPS

register = template.Library()


@register.filter
def stars(rating: float) -> str:
    """0-5 in half steps as five star glyphs: ★★★½☆ for 3.5."""
    full = int(rating)
    half = rating - full >= 0.5
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - half)


@register.filter
def transfer_label(kind: str | None) -> str:
    return Kind.LABELS.get(kind, "Not possible") if kind else "Not possible"


@register.filter
def severity_count(findings, severity: str) -> int:
    return sum(1 for f in findings if f.severity == severity)


# --- jobs ---------------------------------------------------------------------------------------


@register.simple_tag(takes_context=True)
def host_slots(context, host) -> str:
    """Migration slots in use / limit on a host: "live 2/2, storage 0/2".

    The jobs holding slots are read once per request, however many hosts the page lists; select
    the hosts' clusters, as a cluster node's live limit is its cluster's.
    """
    request = context.get("request")
    in_use = getattr(request, "_slots_in_use", None)
    if in_use is None:
        from migrations_ui.scheduler import slots_in_use

        in_use = slots_in_use()
        if request is not None:
            request._slots_in_use = in_use
    live = in_use[(host.pk, "live")]
    storage = in_use[(host.pk, "storage")]
    return f"live {live}/{host.effective_max_live_migrations}, storage {storage}/{host.max_storage_migrations}"


@register.filter
def step_label(step: str) -> str:
    return STEPS.get(step, step)


@register.filter
def page_query(filters: dict, page: int) -> str:
    """The Finished section's query string for another page, filters kept."""
    from migrations_ui.progress import filter_query

    return filter_query(filters, page=page)


@register.filter
def duration(job) -> str:
    """How long a job ran: "2 min 5 s"; empty before it started."""
    if not job.started_at:
        return ""
    end = job.finished_at or timezone.now()
    seconds = max(int((end - job.started_at).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def event_text(event) -> str:
    """One line of a job's event log, in words."""
    d = event.data or {}
    who = f" by {d['user']}" if d.get("user") else ""
    match event.kind:
        case "created":
            return f"Queued{who}"
        case "state":
            return f"{_state_label(d.get('state', ''))}{who}"
        case "step" if d.get("done"):
            extra = f" (blackout {d['blackout_ms']} ms)" if d.get("blackout_ms") is not None else ""
            return f"Done: {STEPS.get(d.get('step'), d.get('step'))}{extra}"
        case "step":
            where = f" on {d['host']}" if d.get("host") else ""
            return f"{STEPS.get(d.get('step'), d.get('step'))}{where}"
        case "progress":
            return (
                f"{d.get('percent', 0)}% · pass {d.get('pass_number', 0)} · "
                f"{filesizeformat(d.get('bytes_sent', 0))} sent, {filesizeformat(d.get('bytes_remaining', 0))} left"
                f" · {d.get('transfer_rate_mbps', 0):.0f} MB/s"
            )
        case "move_requested":
            return "Move sent to the host again" if d.get("resend") else "Move sent to the host"
        case "host_job":
            return f"Host migration job {d.get('migration_id', '')}"
        case "cancel_sent":
            return "Cancel passed to the host"
        case "recovery":
            return f"Taken over by {d.get('worker', 'another worker')} after its worker stopped"
        case "warning":
            return f"Warning: {d.get('message', '')}"
    return f"{event.kind} {d}" if d else event.kind


def _state_label(state: str) -> str:
    return JobState(state).label if state in JobState.values else state
