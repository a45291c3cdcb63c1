"""Move timeouts of a host or a cluster: everyone with a role sees them, operators and administrators
change them (console state, not Hyper-V's: nothing is asked of the hosts). See fabric.move_timeouts."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.http import require_http_methods

from access import Perm, can, requires
from fabric.models import Cluster, Host
from fabric.move_timeouts import FIELDS, MAX_PER_GIB_S, MAX_STALL_S, change, summary

RANGE = gettext_noop("Give whole seconds from 0 (never) to %(max)s, or leave it empty for the inherited value.")


def _range(maximum: int) -> str:
    return _(RANGE) % {"max": maximum}


def _seconds(label, maximum: int) -> forms.IntegerField:
    text = lazy(_range, str)(maximum)  # in the language of the request that shows it
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=0,
        max_value=maximum,
        error_messages={"invalid": text, "min_value": text, "max_value": text},
        widget=forms.NumberInput(attrs={"min": 0, "max": maximum, "step": 1}),
    )


class MoveTimeoutsForm(forms.Form):
    move_stall_timeout_s = _seconds(gettext_lazy("Without progress for (s)"), MAX_STALL_S)
    move_timeout_s_per_gib = _seconds(gettext_lazy("Longer than, per GiB copied (s)"), MAX_PER_GIB_S)
    move_timeout_retry_compression = forms.TypedChoiceField(
        label=gettext_lazy("After a completion timeout, start the move again with Compression"),
        required=False,
        choices=[("", gettext_lazy("inherited")), ("true", gettext_lazy("yes")), ("false", gettext_lazy("no"))],
        coerce=lambda value: value == "true",
        empty_value=None,
    )

    def __init__(self, *args, initial=None, **kwargs):
        if initial and initial.get("move_timeout_retry_compression") is not None:
            initial = {
                **initial,
                "move_timeout_retry_compression": str(initial["move_timeout_retry_compression"]).lower(),
            }
        super().__init__(*args, initial=initial, **kwargs)


@require_http_methods(["GET", "HEAD", "POST"])
@requires(Perm.MIGRATE)
def move_timeouts(request, fqdn: str | None = None, cluster: str | None = None):
    if fqdn:
        target = get_object_or_404(Host.objects.select_related("cluster"), fqdn=fqdn)
    else:
        target = get_object_or_404(Cluster, name=cluster)
    form = MoveTimeoutsForm(request.POST or None, initial={f: getattr(target, f) for f in FIELDS})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            if change(target, form.cleaned_data, user=request.user, request=request):
                messages.success(request, _("Move timeouts of %(name)s saved.") % {"name": target.name})
            else:
                messages.info(request, _("Nothing to change."))
            return redirect(request.path)
        status = 400
    context = {
        "target": target,
        "is_cluster": isinstance(target, Cluster),
        "form": form,
        "rows": summary(target),
        "can_change": can(request.user, Perm.MIGRATE),
    }
    return render(request, "fabric/move_timeouts.html", context, status=status)
