"""Administrators change hosts' live-migration settings: one host, every node of a cluster, or a selection."""

from django import forms
from django.shortcuts import get_object_or_404, render

from console.access import Perm, requires_always
from fabric.driver import get_driver
from fabric.host_settings import apply_settings
from fabric.hyperv.api import HostSettings
from fabric.models import AuthType, Cluster, Host, PerformanceOption

BLANK = [("", "— unchanged —")]


class SettingsForm(forms.Form):
    hosts = forms.ModelMultipleChoiceField(queryset=Host.objects.all(), to_field_name="fqdn")
    max_live_migrations = forms.IntegerField(
        required=False, min_value=0, max_value=64, label="Simultaneous live migrations"
    )
    max_storage_migrations = forms.IntegerField(
        required=False, min_value=0, max_value=64, label="Simultaneous storage migrations"
    )
    performance_option = forms.ChoiceField(required=False, choices=BLANK + PerformanceOption.choices)
    auth_type = forms.ChoiceField(required=False, choices=BLANK + AuthType.choices, label="Authentication")
    migration_enabled = forms.ChoiceField(
        required=False, choices=[*BLANK, ("true", "Enabled"), ("false", "Disabled")], label="Live migration"
    )

    def wanted(self) -> HostSettings:
        data = self.cleaned_data
        enabled = {"true": True, "false": False}.get(data["migration_enabled"])
        return HostSettings(
            max_live_migrations=data["max_live_migrations"],
            max_storage_migrations=data["max_storage_migrations"],
            performance_option=data["performance_option"] or None,
            auth_type=data["auth_type"] or None,
            migration_enabled=enabled,
        )

    def clean(self):
        data = super().clean()
        if not self.errors and all(v is None for v in vars(self.wanted()).values()):
            raise forms.ValidationError("Choose at least one setting to change.")
        return data


@requires_always(Perm.HOST_SETTINGS)
def host_settings(request, fqdn: str | None = None, cluster: str | None = None):
    targets = _targets(fqdn, cluster)
    form = SettingsForm(request.POST or None, initial={"hosts": [h.fqdn for h in targets]})
    results = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            hosts = list(form.cleaned_data["hosts"].select_related("cluster"))
            results = apply_settings(get_driver(), hosts, form.wanted(), user=request.user, request=request)
        else:
            status = 400
    context = {
        "form": form,
        "targets": targets,
        "cluster": _cluster(cluster),
        "results": results,
        "all_hosts": Host.objects.select_related("cluster").order_by("cluster__name", "name"),
    }
    return render(request, "fabric/host_settings.html", context, status=status)


def _targets(fqdn, cluster) -> list[Host]:
    if fqdn:
        return [get_object_or_404(Host.objects.select_related("cluster"), fqdn=fqdn)]
    if cluster:
        return list(_cluster(cluster).nodes.select_related("cluster").order_by("name"))
    return []


def _cluster(name):
    return get_object_or_404(Cluster, name=name) if name else None
