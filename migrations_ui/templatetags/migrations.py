from django import template
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from fabric.driver import fabric_seconds_per_second
from migrations_ui.jobs.runner import STEPS, TIMED_OUT
from migrations_ui.live.chart_data import policy_text
from migrations_ui.models import JobState
from migrations_ui.preflight.facts import Kind
from utilities.texts import duration_text

register = template.Library()

# Hyper-V's (and VMM's) transfer types; "Live" stays "Live" in German, the others are translated.
TRANSFER_LABELS = {
    Kind.LIVE: pgettext_lazy("transfer type", "Live"),
    Kind.LIVE_VSM: pgettext_lazy("transfer type", "Live (VSM)"),
    Kind.STORAGE: pgettext_lazy("transfer type", "Storage"),
    Kind.QUICK: pgettext_lazy("transfer type", "Quick"),
    Kind.NETWORK: pgettext_lazy("transfer type", "Network"),
}
# The runner's steps (runner.STEPS keeps the English the event log records).
STEP_LABELS = {
    "compare": gettext_lazy("Check compatibility on the destination (Compare-VM)"),
    "leave_cluster": gettext_lazy("Remove the VM from its cluster"),
    "move": gettext_lazy("Migrate"),
    "verify": gettext_lazy("Verify where the VM runs"),
    "join_cluster": gettext_lazy("Make the VM highly available on the destination cluster"),
    "refresh": gettext_lazy("Refresh the inventory"),
    "restore_ha": gettext_lazy("Make the VM highly available again where it runs"),
    "power_off": gettext_lazy("Take the VM down for its offline move (Save-VM or Stop-VM)"),
    "start": gettext_lazy("Start the VM on the destination (Start-VM)"),
    "restore_power": gettext_lazy("Start the VM again where it is"),
}
# A storage move's own words for the steps it shares with the others (Move-VMStorage on one host).
STORAGE_STEP_LABELS = {
    "move": gettext_lazy("Move the files (Move-VMStorage)"),
    "verify": gettext_lazy("Verify where the VM's files are"),
}


@register.filter
def stars(rating: float) -> str:
    """0-5 in half steps as five star glyphs: ★★★½☆ for 3.5."""
    full = int(rating)
    half = rating - full >= 0.5
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - half)


@register.filter
def transfer_label(kind: str | None) -> str:
    if not kind:
        return _("Not possible")
    return TRANSFER_LABELS.get(kind) or Kind.LABELS.get(kind) or _("Not possible")


@register.filter
def host_label(fqdn: str) -> str:
    """A host's FQDN as the inventory names it, its first label: hv-new2.contoso.test -> hv-new2."""
    return str(fqdn).split(".", 1)[0]


@register.filter
def item(mapping, key):
    """mapping[key] in a template ({{ files_to|item:m.destination }}); None when it has none."""
    return mapping.get(key) if mapping else None


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
        from migrations_ui.jobs.scheduler import slots_in_use

        in_use = slots_in_use()
        if request is not None:
            request._slots_in_use = in_use
    live = in_use[(host.pk, "live")]
    storage = in_use[(host.pk, "storage")]
    return _("live %(live)s/%(live_limit)s, storage %(storage)s/%(storage_limit)s") % {
        "live": live,
        "live_limit": host.effective_max_live_migrations,
        "storage": storage,
        "storage_limit": host.max_storage_migrations,
    }


@register.filter
def step_label(step: str, kind: str = "") -> str:
    """A step's words; with the job's kind, a storage move's own words."""
    if kind == "storage" and step in STORAGE_STEP_LABELS:
        return STORAGE_STEP_LABELS[step]
    return _step(step)


def _step(step) -> str:
    return STEP_LABELS.get(step) or STEPS.get(step, step)


@register.filter
def page_query(filters: dict, page: int) -> str:
    """The Finished section's query string for another page, filters kept."""
    from migrations_ui.live.progress import filter_query

    return filter_query(filters, page=page)


@register.filter
def history_page(history_filter, page: int) -> str:
    """The history page's query string for another page, filters kept."""
    return history_filter.query(page=page if page != 1 else "")


@register.filter
def wall_s(fabric_s: float | None) -> float | None:
    """Seconds of the fabric's clock (plans, batch_summary) as wall-clock seconds, the clock a job's
    duration is read in: a simulated fabric runs SIM_TIME_SCALE times faster than the wall."""
    if fabric_s is None or fabric_s == "":
        return None
    return float(fabric_s) / fabric_seconds_per_second()


@register.filter
def duration(job) -> str:
    """How long a job ran: "2 min 5 s"; empty before it started."""
    if not job.started_at:
        return ""
    end = job.finished_at or timezone.now()
    return duration_text((end - job.started_at).total_seconds())


@register.filter
def event_text(event) -> str:
    """One line of a job's event log, in words (in the reader's language; the data stays as recorded)."""
    d = event.data or {}
    user = d.get("user")
    match event.kind:
        case "created":
            return _("Queued by %(user)s") % {"user": user} if user else _("Queued")
        case "state" if d.get("state") == JobState.UNKNOWN:
            text = _("Unknown: %(host)s stopped answering after the move was sent") % {"host": d.get("host", "")}
            return f"{text} ({d['reason']})" if d.get("reason") else text
        case "state" if d.get("decided_by"):
            state = _state_label(d.get("state", ""))
            return _("%(state)s: decided by %(user)s, who checked the hosts") % {
                "state": state,
                "user": d["decided_by"],
            }
        case "state" if d.get("evidence"):  # an unknown job's host answered again (runner._answered)
            state = _state_label(d.get("state", ""))
            return _("%(state)s: the host answered again") % {"state": state}
        case "state":
            state = _state_label(d.get("state", ""))
            return _("%(state)s by %(user)s") % {"state": state, "user": user} if user else str(state)
        case "step" if d.get("done"):
            step = step_label(d.get("step"), d.get("kind", ""))
            if d.get("blackout_ms") is not None:
                return _("Done: %(step)s (blackout %(ms)s ms)") % {"step": step, "ms": d["blackout_ms"]}
            return _("Done: %(step)s") % {"step": step}
        case "step":
            step = step_label(d.get("step"), d.get("kind", ""))
            return _("%(step)s on %(host)s") % {"step": step, "host": d["host"]} if d.get("host") else str(step)
        case "progress" if not (d.get("pass_number") or d.get("bytes_sent") or d.get("transfer_rate_mbps")):
            # A storage move, or any move on a host that reports its percent only (hyperv.md section 6).
            return _("%(percent)s%% done") % {"percent": d.get("percent", 0)}
        case "progress":
            return _("%(percent)s%% · pass %(pass)s · %(sent)s sent, %(left)s left · %(rate)s MB/s") % {
                "percent": d.get("percent", 0),
                "pass": d.get("pass_number", 0),
                "sent": filesizeformat(d.get("bytes_sent", 0)),
                "left": filesizeformat(d.get("bytes_remaining", 0)),
                "rate": number_format(d.get("transfer_rate_mbps", 0), decimal_pos=0),
            }
        case "move_requested":
            return _("Move sent to the host again") if d.get("resend") else _("Move sent to the host")
        case "host_job":
            return _("Host migration job %(id)s") % {"id": d.get("migration_id", "")}
        case "cancel_sent" if d.get("by") == "policy":
            return _("Cancel passed to the host (move timeout)")
        case "cancel_sent":
            return _("Cancel passed to the host")
        case "policy" if d.get("action") == "cancel":
            return policy_text(d)
        case "policy" if d.get("action") == "retry":
            return _("Started again with Compression as job %(job)s") % {"job": d.get("job", "")}
        case "policy" if d.get("action") == "retry_of":
            return _("Started again with Compression after job %(job)s timed out") % {"job": d.get("job", "")}
        case "policy" if d.get("action") == "retry_refused":
            return _("Not started again with Compression: %(reason)s") % {"reason": d.get("reason", "")}
        case "policy":
            return _("The move completed before the move timeout's cancel took effect")
        case "recovery":
            if d.get("worker"):
                return _("Taken over by %(worker)s after its worker stopped") % {"worker": d["worker"]}
            return _("Taken over by another worker after its worker stopped")
        case "requeued":
            return _("Handed to a worker again: no worker task was waiting to start it")
        case "warning":
            return _("Warning: %(message)s") % {"message": d.get("message", "")}
        case "evidence" if d.get("found") == "VM still on the source":  # runner._find_requested_move
            return _("%(host)s still runs the VM: it was not moved") % {"host": d.get("source", "")}
        case "evidence" if d.get("found") == "VM already highly available":  # runner._add_cluster_role
            return _("%(host)s shows the VM highly available already: nothing to join again") % {
                "host": d.get("host", "")
            }
    return f"{event.kind} {d}" if d else event.kind


@register.filter
def job_error(job) -> str:
    """A failed job's error in the reader's language: a timed-out one from its policy event's figures
    (the recorded message is English, as the API and the CLI give it), any other through the catalogue."""
    if job.error_code == TIMED_OUT:
        acted = job.events.filter(kind="policy", data__action="cancel").order_by("-sequence")
        data = acted.values_list("data", flat=True).first()
        if data:
            return policy_text(data)
    return _(str(job.error_message)) if job.error_message else ""


def _state_label(state: str) -> str:
    return JobState(state).label if state in JobState.values else state


# The event log's kinds and the steps' statuses, as the pages name them (the records keep the codes).
EVENT_KINDS = {
    "created": gettext_lazy("created"),
    "state": gettext_lazy("state"),
    "step": gettext_lazy("step"),
    "progress": gettext_lazy("progress"),
    "move_requested": gettext_lazy("move requested"),
    "host_job": gettext_lazy("host job"),
    "cancel_sent": gettext_lazy("cancel sent"),
    "policy": gettext_lazy("move timeout"),
    "recovery": gettext_lazy("recovery"),
    "requeued": gettext_lazy("requeued"),
    "warning": gettext_lazy("warning"),
}
STEP_STATUSES = {
    "done": gettext_lazy("done"),
    "current": gettext_lazy("current"),
    "failed": pgettext_lazy("step", "failed"),
    "cancelled": pgettext_lazy("step", "cancelled"),
    "unknown": pgettext_lazy("step", "outcome unknown"),
    "pending": gettext_lazy("pending"),
    "not run": gettext_lazy("not run"),
}


@register.filter
def event_kind(kind: str) -> str:
    return EVENT_KINDS.get(kind, kind)


@register.filter
def step_status(status: str) -> str:
    return STEP_STATUSES.get(status, status)
