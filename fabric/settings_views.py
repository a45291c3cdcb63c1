"""Administrators change live-migration settings: one host, every node of a cluster, or a selection,
and a cluster's MaximumParallelMigrations, in one action."""

import re

from django import forms
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from access import Perm, requires_always
from fabric.delegation import record_delegation
from fabric.driver import get_driver
from fabric.host_settings import (
    apply_cluster_cap,
    apply_settings,
    change_locations,
    normal_subnets,
    path_problem,
    subnets_problems,
)
from fabric.hyperv.api import HostSettings
from fabric.models import AuthType, Cluster, Delegation, Host, PerformanceOption, StorageLocation
from utilities.texts import localized

BLANK = [("", _("— unchanged —"))]
_SEPARATORS = re.compile(r"[\s,;]+")


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(text.strip()) if w]


class SettingsForm(forms.Form):
    hosts = forms.ModelMultipleChoiceField(queryset=Host.objects.all(), to_field_name="fqdn", required=False)
    cluster_max_parallel = forms.IntegerField(
        required=False, min_value=0, max_value=64, label=_("Cluster MaximumParallelMigrations")
    )
    max_live_migrations = forms.IntegerField(
        required=False, min_value=0, max_value=64, label=_("Simultaneous live migrations")
    )
    max_storage_migrations = forms.IntegerField(
        required=False, min_value=0, max_value=64, label=_("Simultaneous storage migrations")
    )
    performance_option = forms.ChoiceField(
        required=False, choices=BLANK + PerformanceOption.choices, label=_("Performance option")
    )
    auth_type = forms.ChoiceField(required=False, choices=BLANK + AuthType.choices, label=_("Authentication"))
    # Not a host setting: Active Directory holds it, the console keeps what an administrator records.
    kerberos_delegation = forms.ChoiceField(
        required=False, choices=BLANK + Delegation.choices, label=_("Kerberos constrained delegation (recorded)")
    )
    migration_enabled = forms.ChoiceField(
        required=False, choices=[*BLANK, ("true", _("Enabled")), ("false", _("Disabled"))], label=_("Live migration")
    )
    use_any_network = forms.ChoiceField(
        required=False,
        choices=[*BLANK, ("true", _("Use any available network")), ("false", _("Use only the listed subnets"))],
        label=_("Migration networks"),
    )
    add_networks = forms.CharField(required=False, label=_("Add subnets"), help_text=_("CIDR, e.g. 10.20.0.0/24"))
    remove_networks = forms.MultipleChoiceField(
        required=False, label=_("Remove subnets"), widget=forms.CheckboxSelectMultiple
    )
    vm_path = forms.CharField(required=False, max_length=260, label=_("Default folder for VM files"))
    vhd_path = forms.CharField(required=False, max_length=260, label=_("Default folder for virtual disks"))
    add_location = forms.CharField(required=False, max_length=260, label=_("Add a storage location"))
    remove_locations = forms.MultipleChoiceField(
        required=False, label=_("Remove storage locations"), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, cluster=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster
        if cluster is None or cluster.max_parallel_migrations is None:
            # A cluster without the property (WS2016/2019) has no cap to set (hyperv.md section 9).
            del self.fields["cluster_max_parallel"]
        networks = sorted({s for h in Host.objects.only("migration_networks") for s in h.migration_networks})
        self.fields["remove_networks"].choices = [(s, s) for s in networks]
        added = StorageLocation.objects.filter(is_default=False).values_list("path", flat=True).distinct()
        self.fields["remove_locations"].choices = [(p, p) for p in sorted(set(added))]

    def clean_add_networks(self):
        subnets = _words(self.cleaned_data["add_networks"])
        if problems := subnets_problems(subnets):
            raise forms.ValidationError(problems)
        return normal_subnets(subnets)

    def _clean_path(self, name):
        path = self.cleaned_data[name].strip()
        if path and (problem := path_problem(path)):
            raise forms.ValidationError(localized(problem))
        return path or None

    def clean_vm_path(self):
        return self._clean_path("vm_path")

    def clean_vhd_path(self):
        return self._clean_path("vhd_path")

    def clean_add_location(self):
        return self._clean_path("add_location")

    def wanted(self) -> HostSettings:
        data = self.cleaned_data
        yes_no = {"true": True, "false": False}
        return HostSettings(
            max_live_migrations=data["max_live_migrations"],
            max_storage_migrations=data["max_storage_migrations"],
            performance_option=data["performance_option"] or None,
            auth_type=data["auth_type"] or None,
            migration_enabled=yes_no.get(data["migration_enabled"]),
            use_any_network=yes_no.get(data["use_any_network"]),
            add_networks=data["add_networks"],
            remove_networks=tuple(data["remove_networks"]),
            vm_path=data["vm_path"],
            vhd_path=data["vhd_path"],
        )

    def cluster_value(self):
        return self.cleaned_data.get("cluster_max_parallel")

    def host_changes(self) -> bool:
        data = self.cleaned_data
        return not self.wanted().is_empty() or bool(
            data["add_location"] or data["remove_locations"] or data["kerberos_delegation"]
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if not self.host_changes() and self.cluster_value() is None:
            raise forms.ValidationError(_("Choose at least one setting to change."))
        if self.host_changes() and not data["hosts"]:
            raise forms.ValidationError(_("Choose the hosts to apply the settings to."))
        return data


@requires_always(Perm.HOST_SETTINGS)
def host_settings(request, fqdn: str | None = None, cluster: str | None = None):
    targets = _targets(fqdn, cluster)
    the_cluster = _cluster(cluster)
    form = SettingsForm(request.POST or None, cluster=the_cluster, initial={"hosts": [h.fqdn for h in targets]})
    outcome = {}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            outcome = _apply(request, form)
        else:
            status = 400
    context = {
        "form": form,
        "targets": targets,
        "cluster": the_cluster,
        "current": _targets(fqdn, cluster),  # read again: after a change, what the hosts read back
        **outcome,
        "all_hosts": Host.objects.select_related("cluster").order_by("cluster__name", "name"),
    }
    return render(request, "fabric/host_settings.html", context, status=status)


def _apply(request, form: SettingsForm) -> dict:
    """The cluster first (its cap bounds the nodes), then each host, then the storage locations."""
    driver, user, data = get_driver(), request.user, form.cleaned_data
    out = {}
    if form.cluster_value() is not None:
        value = form.cluster_value()
        out["cluster_result"] = apply_cluster_cap(driver, form.cluster, value, user=user, request=request)
        form.cluster.refresh_from_db()
    hosts = list(data["hosts"].select_related("cluster"))
    if not form.wanted().is_empty():
        out["results"] = apply_settings(driver, hosts, form.wanted(), user=user, request=request)
    if data["kerberos_delegation"]:
        out["delegation_recorded"] = record_delegation(hosts, data["kerberos_delegation"], user=user, request=request)
    if data["add_location"] or data["remove_locations"]:
        add = [data["add_location"]] if data["add_location"] else []
        out["locations_done"] = change_locations(hosts, add, data["remove_locations"], user=user, request=request)
    return out


def _targets(fqdn, cluster) -> list[Host]:
    hosts = Host.objects.select_related("cluster").prefetch_related("storage_locations")
    if fqdn:
        return [get_object_or_404(hosts, fqdn=fqdn)]
    if cluster:
        return list(hosts.filter(cluster=_cluster(cluster)).order_by("name"))
    return []


def _cluster(name):
    return get_object_or_404(Cluster, name=name) if name else None
