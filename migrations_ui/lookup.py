"""Finding a VM or host by what an operator types: a name, an FQDN or a GUID."""

import uuid

from fabric.models import Host, VirtualMachine


class NotFound(Exception):
    pass


def find_vm(text: str, queryset=None) -> VirtualMachine:
    queryset = (queryset if queryset is not None else VirtualMachine.objects).filter(removed=False)
    try:
        return queryset.get(guid=uuid.UUID(text))
    except (ValueError, VirtualMachine.DoesNotExist):
        pass
    matches = list(queryset.filter(name=text)[:5])
    if not matches:
        raise NotFound(f"no VM named {text!r}")
    if len(matches) > 1:
        guids = ", ".join(str(vm.guid) for vm in matches)
        raise NotFound(f"several VMs are named {text!r}; give the GUID of one: {guids}")
    return matches[0]


def find_host(text: str) -> Host:
    host = Host.objects.filter(fqdn__iexact=text).first() or Host.objects.filter(name__iexact=text).first()
    if host is None:
        raise NotFound(f"no host named {text!r}")
    return host
