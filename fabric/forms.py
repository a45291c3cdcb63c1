"""The inventory's forms: a host and its credential, a host's live-migration settings."""

import ipaddress
import re

from django import forms
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from fabric.credentials import HostCredential, WinRMAuth
from fabric.host_settings import normal_subnets, path_problem, subnets_problems
from fabric.hyperv.api import Connection, HostSettings
from fabric.models import AuthType, Delegation, Host, PerformanceOption, StorageLocation, Transport
from utilities.texts import localized

BLANK = [("", _("— unchanged —"))]
LIMIT = {
    "min_value": _("At least 1: Hyper-V refuses 0 (to stop migrations to and from a host, disable live migration)."),
    "max_value": _("At most %(limit_value)s."),
}
_SEPARATORS = re.compile(r"[\s,;]+")


# RFC 1123 labels: letters, digits and inner hyphens, 63 at most; the last label is not all digits.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def is_fqdn(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(map(_LABEL.match, labels)) and not labels[-1].isdigit()


def _words(text: str) -> list[str]:
    return [w for w in _SEPARATORS.split(text.strip()) if w]


class HostForm(forms.Form):
    fqdn = forms.CharField(label="FQDN", max_length=255, help_text="hv01.contoso.com")
    address = forms.CharField(
        label=_("Address"),
        max_length=255,
        required=False,
        help_text=_("IP or DNS name WinRM answers on (default: the FQDN)"),
    )
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=5986)
    transport = forms.ChoiceField(label=_("Transport"), choices=Transport.choices, initial=Transport.HTTPS)
    auth = forms.ChoiceField(label=_("Authentication"), choices=WinRMAuth.choices, initial=WinRMAuth.NEGOTIATE)
    username = forms.CharField(label=_("User name"), max_length=255, help_text=_("DOMAIN\\user or user@domain"))
    # render_value=False: a password typed once is never sent back to the browser, not even on errors.
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput(render_value=False), required=False, strip=False
    )

    def __init__(self, *args, editing: Host | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing is not None:
            self.fields["fqdn"].disabled = True
            self.fields["password"].help_text = _(
                "Leave empty to keep the stored password (only while address, port, transport and "
                "authentication stay the same)"
            )

    def clean_fqdn(self) -> str:
        fqdn = self.cleaned_data["fqdn"].strip().lower().rstrip(".")
        if is_ip_address(fqdn):
            # Kerberos, the SMB path rules and the inventory all need the host's name; an address
            # made a host named after its first octet ("127").
            raise forms.ValidationError(
                _(
                    "%(value)s is an IP address, not a host name: give the host's fully qualified name "
                    "(e.g. hv01.contoso.com), and the address under Address if WinRM must use it."
                )
                % {"value": fqdn}
            )
        if not is_fqdn(fqdn):
            raise forms.ValidationError(_("Give the host's fully qualified name, e.g. hv01.contoso.com"))
        if self.editing is None and Host.objects.filter(fqdn=fqdn).exists():
            raise forms.ValidationError(_("This host is already managed: edit it instead."))
        return fqdn

    def clean(self):
        data = super().clean()
        stored = HostCredential.objects.filter(host=self.editing).first() if self.editing is not None else None
        if not data.get("password") and stored is None:
            self.add_error("password", _("A password is needed for a new host."))
        elif not data.get("password") and self._endpoint_changed(data, stored):
            # The stored password goes only where it went before: else anyone who may edit a host
            # could read it back by pointing the host at a listener of their own.
            self.add_error(
                "password",
                _(
                    "Type the password again: the address, port, transport or authentication changed, "
                    "and the stored password is never sent to a new endpoint."
                ),
            )
        return data

    def _endpoint_changed(self, data: dict, stored: HostCredential) -> bool:
        """Whether the form points the stored password anywhere (or any way) it was not sent before."""
        host = self.editing
        before = (host.address or host.fqdn, host.port, host.transport, stored.auth)
        after = (data.get("address") or host.fqdn, data.get("port"), data.get("transport"), data.get("auth"))
        if None in after:
            return False  # that field has its own error already
        return before != after

    @sensitive_variables("password")
    def connection(self) -> Connection:
        """The connection as typed (with the stored password when the field was left empty)."""
        data = self.cleaned_data
        password = data.get("password") or ""
        if not password and self.editing is not None:
            from fabric.credentials import decrypt

            password = decrypt(HostCredential.objects.get(host=self.editing))
        return Connection(
            fqdn=data["fqdn"],
            address=data.get("address") or data["fqdn"],
            port=data["port"],
            transport=data["transport"],
            auth=data["auth"],
            username=data["username"],
            password=password,
        )


class SettingsForm(forms.Form):
    # A host never read is no choice: its values are the model's defaults, not the host's.
    hosts = forms.ModelMultipleChoiceField(queryset=Host.objects.read(), to_field_name="fqdn", required=False)
    # Hyper-V takes no limit below 1 (Set-VMHost's ValidateRange; the cluster refuses the property
    # change), so neither does the form: 0 would only come back as the host's error.
    cluster_max_parallel = forms.IntegerField(
        required=False, min_value=1, max_value=64, label=_("Cluster MaximumParallelMigrations"), error_messages=LIMIT
    )
    max_live_migrations = forms.IntegerField(
        required=False, min_value=1, max_value=64, label=_("Simultaneous live migrations"), error_messages=LIMIT
    )
    max_storage_migrations = forms.IntegerField(
        required=False, min_value=1, max_value=64, label=_("Simultaneous storage migrations"), error_messages=LIMIT
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
