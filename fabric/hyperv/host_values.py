"""What a Hyper-V host accepts as a migration subnet or a default storage folder (pure).

Both sides use it: the simulated host refuses what Hyper-V would, and the console checks a value
before it asks any host, so a bad value changes nothing anywhere. The console is stricter than the
host on one point: an SMB path must name the file server by its FQDN (hyperv.md section 2), which a
host would accept and then fail on with Kerberos.
"""

from __future__ import annotations

import ipaddress
import re

_DRIVE = re.compile(r"^[A-Za-z]:\\")
_ILLEGAL = set('<>"|*?')


def subnet_problem(subnet: str) -> str | None:
    """Why Add-VMMigrationNetwork would not take this subnet; None when it is a network in CIDR form."""
    text = subnet.strip()
    if "/" not in text:
        return f"'{subnet}' is not a subnet: write it in CIDR form with a prefix length, e.g. 192.168.10.0/24"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"'{subnet}' is not a valid IPv4 or IPv6 subnet (CIDR form, e.g. 192.168.10.0/24)"
        return f"'{subnet}' has host bits set: the subnet is {network}"
    return None


def normal_subnet(subnet: str) -> str:
    """The subnet as Hyper-V lists it (Get-VMMigrationNetwork): the network address and prefix."""
    return str(ipaddress.ip_network(subnet.strip(), strict=True))


def folder_problem(path: str) -> str | None:
    """Why a host would not take this as a default folder: it must be absolute (drive or UNC)."""
    if not path or path != path.strip():
        return f"'{path}' is not a path (empty, or blanks around it)"
    if any(c in _ILLEGAL or ord(c) < 32 for c in path):
        return f"'{path}' holds characters a Windows path cannot"
    if _DRIVE.match(path):
        return None
    if path.startswith("\\\\"):
        parts = path[2:].split("\\")
        if len(parts) >= 2 and parts[0] and parts[1]:
            return None
        return f"'{path}' is not a complete share path: write \\\\server.domain\\share\\folder"
    return (
        f"'{path}' is a relative path: a default folder must be absolute, e.g. D:\\Hyper-V or \\\\fs01.contoso.com\\vms"
    )


# Where a cluster's nodes mount its Cluster Shared Volumes (lower-cased: Windows paths compare so).
CSV_ROOT = "c:\\clusterstorage\\"


def share_server(path: str) -> str | None:
    """The server part of a UNC path as written; None for a local path."""
    if not path.startswith("\\\\"):
        return None
    return path[2:].split("\\")[0]


def server_not_fqdn(server: str) -> bool:
    """A short name or a bare IP address: Kerberos to the share fails (smb-path-not-fqdn)."""
    name = server.rstrip(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return "." not in name
    return True


def processor_vendor(name: str) -> str:
    """ "intel", "amd" or "" (unknown) from a processor's name ("Intel(R) Xeon(R) Gold 6338", "AMD EPYC 7763
    64-Core Processor") or its Win32_Processor Manufacturer (GenuineIntel, AuthenticAMD)."""
    lowered = name.lower()
    if "intel" in lowered:
        return "intel"
    if "amd" in lowered:
        return "amd"
    return ""


def file_name(path: str) -> str:
    return path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]


def renamed_vhd(source: str, destination: str) -> str | None:
    """Why a -Vhds entry (SourceFilePath, DestinationFilePath) is refused, None when it keeps the disk's file
    name: Move-VM and Move-VMStorage need the same virtual hard disk name in both entries (their help, -Vhds).
    The destination is the full path of the file, not a folder."""
    if file_name(source).lower() != file_name(destination).lower():
        return (
            f"The virtual hard disk name must be identical in both entries: '{file_name(source)}' would become "
            f"'{file_name(destination)}' ({source} -> {destination})"
        )
    return None


def share_roots(paths) -> list[tuple[str, str]]:
    """(\\\\server\\share as written, server) of every SMB share the paths lie on, each once (case-insensitive)."""
    roots: dict[str, tuple[str, str]] = {}
    for path in paths:
        if not path or not path.startswith("\\\\") or path.startswith("\\\\?\\"):
            continue
        parts = path[2:].split("\\")
        if len(parts) >= 2 and parts[0] and parts[1]:
            unc = f"\\\\{parts[0]}\\{parts[1]}"
            roots.setdefault(unc.lower(), (unc, parts[0]))
    return list(roots.values())
