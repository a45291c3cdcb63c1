"""Windows path checks (pure): UNC share paths and their server part, and what a path may hold.

Hyper-V reaches VM files on an SMB 3.0 share through Kerberos, which needs the file server's FQDN:
`\\\\fs01.contoso.com\\vms`, not `\\\\fs01\\vms` and not an IP address (hyperv.md section 2).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from utilities.texts import Msg

MAX_PATH = 260
LONG_PREFIX = "\\\\?\\"
LONG_UNC_PREFIX = "\\\\?\\unc\\"
_DRIVE = re.compile(r"^[A-Za-z]:\\")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ILLEGAL = set('<>"|*?:')
# Folders of Windows itself (first folder below a drive's root, any drive; 8.3 names too): VM files
# written there can break the host or be removed by its updates. ProgramData is not among them: Hyper-V
# keeps its own default VM folder in C:\ProgramData\Microsoft\Windows\Hyper-V.
SYSTEM_FOLDERS = (
    "windows",
    "program files",
    "program files (x86)",
    "progra~1",
    "progra~2",
    "system volume information",
    "$recycle.bin",
    "recovery",
)
# ADMIN$ is %SystemRoot% (C:\Windows) shared by every Windows server.
_SYSTEM_SHARES = ("admin$",)


@dataclass(frozen=True)
class SharePath:
    """A UNC path taken apart: server as written, share, the rest, and how it was written."""

    server: str
    share: str
    rest: str
    long_form: bool  # \\?\UNC\server\share
    forward_slashes: bool

    @property
    def host(self) -> str:
        """The server name without the trailing dot an absolute DNS name may carry."""
        return self.server[:-1] if self.server.endswith(".") else self.server

    @property
    def server_kind(self) -> str:
        """'fqdn', 'short' or 'ip'."""
        if _is_ip(self.host):
            return "ip"
        return "fqdn" if "." in self.host else "short"

    def with_server(self, server: str) -> str:
        tail = "\\".join(p for p in (self.share, self.rest) if p)
        return f"\\\\{server}\\{tail}"


def _is_ip(name: str) -> bool:
    # Windows writes IPv6 literals in UNC paths as a.b.c.ipv6-literal.net names.
    if name.lower().endswith(".ipv6-literal.net"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def parse_share_path(path: str) -> SharePath | None:
    """The parts of a UNC path (\\\\server\\share\\..., //server/share/..., \\\\?\\UNC\\server\\share\\...),
    or None for anything that is not a share path (a local path such as D:\\VMs)."""
    forward = path.startswith("//")
    text = path.replace("/", "\\") if forward else path
    long_form = text.lower().startswith(LONG_UNC_PREFIX)
    if long_form:
        text = "\\\\" + text[len(LONG_UNC_PREFIX) :]
    elif not text.startswith("\\\\") or text.startswith(LONG_PREFIX):
        return None
    parts = text[2:].split("\\", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return SharePath(
        server=parts[0],
        share=parts[1],
        rest=parts[2].rstrip("\\") if len(parts) > 2 else "",
        long_form=long_form,
        forward_slashes=forward,
    )


def is_local_path(path: str) -> bool:
    """D:\\VMs or \\\\?\\D:\\VMs."""
    if path.lower().startswith(LONG_UNC_PREFIX):
        return False
    if path.startswith(LONG_PREFIX):
        path = path[len(LONG_PREFIX) :]
    return bool(_DRIVE.match(path))


def path_problem(path: str) -> str | None:
    """Why a typed destination path cannot be used at all, or None. Independent of shares and FQDNs."""
    if not path or not path.strip():
        return Msg("Enter a destination path.")
    if _CONTROL.search(path):
        return Msg("The path contains control characters.")
    if path != path.strip():
        return Msg("The path starts or ends with spaces.")
    long_form = path.lower().startswith(LONG_PREFIX)
    if len(path) > MAX_PATH and not long_form:
        return Msg(
            "The path is %(length)s characters long; Windows allows %(limit)s unless written as \\\\?\\...",
            length=len(path),
            limit=MAX_PATH,
        )
    body = path[len(LONG_PREFIX) :] if long_form else path
    if any(c in _ILLEGAL for c in body[2:]):  # past "D:" or the leading backslashes
        return Msg('The path contains a character Windows does not allow in file names (< > " | * ? :).')
    if not (is_local_path(path) or parse_share_path(path)):
        return Msg("Give a local path such as D:\\Hyper-V or a share such as \\\\fileserver.contoso.com\\vms.")
    return None


def _segments(path: str) -> tuple[list[str], bool]:
    """The folders of a local or share path below its drive or share (written with \\ or /, in the
    long form or not), and whether the first one is directly below a drive's root (or an X$ share)."""
    text = path.replace("/", "\\")
    lowered = text.lower()
    if lowered.startswith(LONG_UNC_PREFIX):
        text = "\\\\" + text[len(LONG_UNC_PREFIX) :]
    elif lowered.startswith(LONG_PREFIX):
        text = text[len(LONG_PREFIX) :]
    if text.startswith("\\\\"):
        parts = text[2:].split("\\")
        share = parts[1].lower() if len(parts) > 1 else ""
        if share in _SYSTEM_SHARES:
            return parts[1:], True
        return parts[2:], len(share) == 2 and share.endswith("$")  # C$: the drive's root
    return text.split("\\")[1:], True


def disallowed_path(path: str) -> Msg | None:
    """Why a destination may not receive VM files: a . or .. segment (Windows resolves it to another
    folder than the one shown) or a system folder; None if neither."""
    segments, below_root = _segments(path)
    if any(s.strip() and not s.strip(". ") for s in segments):
        return Msg("contains . or .. segments, which Windows resolves to another folder than the one shown")
    folders = [s for s in segments if s]
    # Windows drops trailing dots and spaces from each folder name: C:\Windows.\ is C:\Windows\.
    if below_root and folders and folders[0].rstrip(". ").lower() in SYSTEM_FOLDERS + _SYSTEM_SHARES:
        return Msg("lies in a Windows system folder (%(folder)s)", folder=folders[0])
    return None
