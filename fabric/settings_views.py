"""Administrators change live-migration settings: one host, every node of a cluster, or a selection,
and a cluster's MaximumParallelMigrations, in one action."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from access import Perm, requires_always
from fabric.delegation import record_delegation
from fabric.driver import get_driver
from fabric.forms import SettingsForm
from fabric.host_settings import (
    apply_cluster_cap,
    apply_settings,
    change_locations,
)
from fabric.models import AuthType, Cluster, Host, PerformanceOption


@requires_always(Perm.HOST_SETTINGS)
def host_settings(request, fqdn: str | None = None, cluster: str | None = None):
    targets = _targets(fqdn, cluster)
    if fqdn and targets[0].last_sync is None:
        # Its "current values" would be the model's defaults, and the change could not be read back.
        text = _("%(host)s has not been read yet: its settings can be changed once a sync reaches it.")
        messages.warning(request, text % {"host": targets[0].name})
        return redirect(targets[0].get_absolute_url())
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
        "all_hosts": Host.objects.read().select_related("cluster").order_by("cluster__name", "name"),
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
        results = apply_settings(driver, hosts, form.wanted(), user=user, request=request)
        out["results"] = results
        out["result_rows"] = [{"result": r, "cells": _changes(r)} for r in results]
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


def _label(choices, value) -> str:
    return choices(value).label if value in choices.values else str(value)


def _cells(values: dict) -> list[str]:
    """A host's settings as the result table shows them, column by column, in the reader's words."""
    networks = _("any") if values["use_any_network"] else ", ".join(values["migration_networks"]) or _("none")
    return [
        str(values["max_live_migrations"]),
        str(values["max_storage_migrations"]),
        _label(PerformanceOption, values["performance_option"]),
        _label(AuthType, values["auth_type"]),
        _("yes") if values["migration_enabled"] else _("no"),
        networks,
        values["vm_path"],
        values["vhd_path"],
    ]


def _changes(result) -> list[tuple[str, str | None]]:
    """Each column's value before, and after where the host reports a change (None: unchanged)."""
    after = _cells(result.after)
    return [(b, a if result.ok and a != b else None) for b, a in zip(_cells(result.before), after, strict=True)]
