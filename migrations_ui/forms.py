"""The wizards' input: validated here, so views only read cleaned data."""

from datetime import timedelta
from typing import NamedTuple

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from fabric.models import Host, PerformanceOption, VirtualMachine
from migrations_ui.preflight.paths import disallowed_path, path_problem
from migrations_ui.preflight.rules import share_path_finding
from utilities.texts import localized

MOST_SELECTED = 500  # VMs in one selection


def _clean_path(value: str, required: bool) -> str:
    if not value and not required:
        return ""
    if problem := path_problem(value):
        raise forms.ValidationError(localized(problem))
    return value


def _file_name(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


class MoveForm(forms.Form):
    """Migrate virtual machine: destination host, storage path for Live (VSM), performance option."""

    to = forms.CharField(max_length=255, required=False)
    storage_path = forms.CharField(max_length=400, required=False, strip=False)
    performance = forms.ChoiceField(
        choices=[("", gettext_lazy("Host default")), *PerformanceOption.choices], required=False
    )

    def __init__(self, *args, vm: VirtualMachine, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm

    def clean_to(self) -> Host | None:
        fqdn = self.cleaned_data["to"]
        if not fqdn:
            return None
        host = Host.objects.select_related("cluster").filter(fqdn=fqdn).first()
        if host is None:
            raise forms.ValidationError(_("There is no host %(host)s in the inventory.") % {"host": fqdn})
        if host.pk == self.vm.host_id:
            raise forms.ValidationError(
                _("%(host)s is where %(vm)s runs already; choose another host, or migrate its storage.")
                % {"host": host.name, "vm": self.vm.name}
            )
        return host

    def clean_storage_path(self) -> str:
        return _clean_path(self.cleaned_data["storage_path"], required=False)


class StorageMoveForm(forms.Form):
    """Migrate storage: the whole VM or selected VHDs to one folder on the same host."""

    WHOLE, SELECTED = "whole", "selected"
    mode = forms.ChoiceField(
        choices=[(WHOLE, gettext_lazy("The whole virtual machine")), (SELECTED, gettext_lazy("Selected virtual disks"))]
    )
    storage_path = forms.CharField(max_length=400, required=False, strip=False)
    vhd = forms.MultipleChoiceField(required=False)
    add_default_location = forms.BooleanField(required=False)

    def __init__(self, *args, disks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vhd"].choices = [(d.path, d.path) for d in disks]

    def clean_storage_path(self) -> str:
        return _clean_path(self.cleaned_data["storage_path"], required=True)

    def clean(self):
        data = super().clean()
        if data.get("mode") == self.SELECTED and not data.get("vhd"):
            self.add_error("vhd", _("Select at least one virtual disk, or move the whole virtual machine."))
        return data

    def vhds(self) -> tuple[tuple[str, str], ...]:
        """Each selected VHD into the destination folder, under its own file name."""
        if self.cleaned_data["mode"] != self.SELECTED:
            return ()
        folder = self.cleaned_data["storage_path"].rstrip("\\")
        return tuple((src, folder + "\\" + _file_name(src)) for src in self.cleaned_data["vhd"])

    def add_location(self) -> str:
        return self.cleaned_data["storage_path"] if self.cleaned_data["add_default_location"] else ""

    def target(self) -> str:
        """One destination for everything when the whole VM moves."""
        return self.cleaned_data["storage_path"] if self.cleaned_data["mode"] == self.WHOLE else ""


class Folders(NamedTuple):
    """Where a Live (VSM) move of a selection may put the VM's files: its destination's default VM
    folder ("" if the inventory has none) and the host's other storage locations."""

    host: str  # the destination's name, for messages
    default: str
    others: tuple[str, ...]

    @classmethod
    def of(cls, host: Host) -> "Folders":
        # Only folders create_job accepts: a move refused there would be left out of the batch.
        usable = (loc.path for loc in host.storage_locations.all() if _usable(loc.path))
        return cls(host.name, host.vm_path, tuple(p for p in usable if p != host.vm_path))

    def offers(self, path: str) -> bool:
        return path in (self.default, *self.others)


def _usable(path: str) -> bool:
    """The checks create_job makes of a typed path (path_problem, the FQDN of a share, no system folder)."""
    return not (path_problem(path) or share_path_finding(path) or disallowed_path(path))


def folder_field(vm_id: str) -> str:
    return f"path_{vm_id}"


class SelectionForm(forms.Form):
    vm = forms.TypedMultipleChoiceField(coerce=str, required=False)  # choices are checked in clean_vm
    to = forms.ModelChoiceField(Host.objects.select_related("cluster"), to_field_name="fqdn", required=False)
    move_stopped = forms.BooleanField(required=False)
    name = forms.CharField(max_length=200, required=False)

    def __init__(self, data):
        super().__init__(data)
        self.fields["vm"].valid_value = lambda value: True

    def clean_vm(self):
        guids = list(dict.fromkeys(self.cleaned_data["vm"]))
        if not guids:
            raise forms.ValidationError(_("Select at least one VM in the VM list."))
        if len(guids) > MOST_SELECTED:
            raise forms.ValidationError(_("At most %(n)s VMs can be moved at once.") % {"n": MOST_SELECTED})
        try:
            vms = list(VirtualMachine.objects.select_related("host").filter(guid__in=guids, removed=False))
        except Exception:  # a value that is not a UUID
            raise forms.ValidationError(_("The selection holds a value that is not a VM id.")) from None
        if len(vms) != len(guids):
            gone = len(guids) - len(vms)
            raise forms.ValidationError(
                ngettext(
                    "%(n)s selected VM is no longer in the inventory.",
                    "%(n)s selected VMs are no longer in the inventory.",
                    gone,
                )
                % {"n": gone}
            )
        return vms

    def clean_folders(self, offered: dict[str, Folders]) -> dict[str, str]:
        """The folder chosen for each Live (VSM) move of the plan (VM id -> path; none: the default),
        checked against what its destination offers; an error at the field otherwise. A choice for a
        VM the plan does not copy is ignored: its files do not move."""
        chosen = {}
        for vm_id, folders in offered.items():
            name = folder_field(vm_id)
            self.fields[name] = forms.CharField(required=False)  # so that add_error can name it
            path = self.data.get(name, "")
            if not path:
                continue
            if folders.offers(path):
                chosen[vm_id] = path
            elif problem := path_problem(path):
                self.add_error(name, localized(problem))
            else:
                self.add_error(
                    name,
                    _("%(path)s is not a storage location of %(host)s; choose one of its folders.")
                    % {"path": path, "host": folders.host},
                )
        return chosen


# The browser's own date-and-time picker; it sends what it shows, in the operator's zone.
LOCAL_TIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class WindowForm(forms.Form):
    """When a maintenance window starts and by when its moves must have started, read in the
    operator's time zone (TimeZoneMiddleware) from the browser's date-and-time fields."""

    starts_at = forms.DateTimeField(label=gettext_lazy("Start at"), widget=LOCAL_TIME)
    deadline = forms.DateTimeField(
        label=gettext_lazy("Deadline"),
        required=False,
        widget=LOCAL_TIME,
        help_text=gettext_lazy("Moves not started by then are not started; moves already running finish. Empty: none."),
    )

    def clean_starts_at(self):
        starts_at = self.cleaned_data["starts_at"]
        if starts_at < timezone.now() - timedelta(minutes=1):
            raise forms.ValidationError(_("This time has passed: give a time to come."))
        return starts_at

    def clean(self):
        data = super().clean()
        starts_at, deadline = data.get("starts_at"), data.get("deadline")
        if starts_at and deadline and deadline <= starts_at:
            self.add_error("deadline", _("The deadline must come after the start."))
        return data
