"""The cluster cmdlets a host refuses to a remote session that did not log on with CredSSP.

Microsoft's help for Move-ClusterVirtualMachineRole and Add-ClusterVirtualMachineRole (reference/
powershell-docs/FailoverClusters) says they "cannot be run remotely without CredSSP authentication
on the server computer": they reach the cluster service with the caller's credentials, a second hop
that a Negotiate/Kerberos/Basic logon cannot make. The other cluster cmdlets the console sends have
no such note. The refusal is the FailoverClusters access-denied error ("You do not have
administrative privileges on the cluster ... Access is denied", as quoted in MicrosoftDocs/azure-docs
issue 42640), written after binding, as the cmdlet itself fails when it opens the cluster.
"""

from __future__ import annotations

import dataclasses

from psrpcore.types import ErrorCategory

from fabric.emulator.binder import Cmdlet, Context

NEEDS_CREDSSP = frozenset({"move-clustervirtualmachinerole", "add-clustervirtualmachinerole"})
ACCESS_DENIED = (
    "You do not have administrative privileges on the cluster. Contact your network administrator to request "
    "access.\n    Access is denied"
)


def cmdlets_for(auth_mode: str, cmdlets: dict[str, Cmdlet]) -> dict[str, Cmdlet]:
    """The cmdlet table of a shell: with CredSSP all of them, otherwise the double-hop ones refuse."""
    if auth_mode == "credssp":
        return cmdlets
    return {
        key: dataclasses.replace(cmdlet, func=_refused) if key in NEEDS_CREDSSP else cmdlet
        for key, cmdlet in cmdlets.items()
    }


def _refused(ctx: Context, params: dict, inputs) -> list:
    target = params.get("VMId") or params.get("Name") or params.get("VirtualMachine")
    ctx.error(
        ctx.cmdlet.name,
        ACCESS_DENIED,
        category=ErrorCategory.PermissionDenied,
        target=None if target is None else str(target),
    )
    return []
