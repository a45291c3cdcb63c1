"""Kerberos constrained delegation of each host, as the console knows it.

Delegation is an attribute of the host's computer account in Active Directory (msDS-AllowedToDelegateTo),
not something a Hyper-V host reports (hyperv.md section 9). So the console holds what an administrator
recorded (unknown until then), and learns "missing" from a move that failed for want of it.
"""

from __future__ import annotations

from fabric.models import Delegation, Host

# A move refused for want of delegation (Kerberos) or of a CredSSP logon on the source (hyperv.md section 7).
DELEGATION_CODES = frozenset({"0x8009030E", "0x8009030D"})


def record_delegation(hosts: list[Host], value: str, *, user=None, request=None) -> list[Host]:
    """An administrator records the hosts' delegation; each change is audited with its value before and after."""
    from audit.log import record

    changed = []
    for host in hosts:
        before = host.kerberos_delegation
        if before == value:
            continue
        host.kerberos_delegation = value
        host.save(update_fields=["kerberos_delegation"])
        details = {"before": {"kerberos_delegation": before}, "after": {"kerberos_delegation": value}}
        record("host.delegation_recorded", request=request, actor=user, target=host, details=details)
        changed.append(host)
    return changed


def note_delegation_failure(source: Host, code: str) -> bool:
    """A move from source failed with 0x8009030E / 0x8009030D: its delegation is missing (whatever was
    recorded), so pre-flight blocks the next move instead of letting it fail the same way. Audited."""
    if code.upper().replace("0X", "0x") not in DELEGATION_CODES:
        return False
    from audit.log import record

    before = Host.objects.filter(pk=source.pk).values_list("kerberos_delegation", flat=True).first()
    if before in (None, Delegation.MISSING):
        return False
    Host.objects.filter(pk=source.pk).update(kerberos_delegation=Delegation.MISSING)
    source.kerberos_delegation = Delegation.MISSING
    details = {"before": {"kerberos_delegation": before}, "after": {"kerberos_delegation": Delegation.MISSING}}
    record("host.delegation_missing", target=source, details={**details, "code": code})
    return True
