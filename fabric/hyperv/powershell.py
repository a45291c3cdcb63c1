"""PowerShell semantics both sides need: the driver checks a name the way a host will read it."""

from __future__ import annotations

import re


def wildcard(pattern: str) -> re.Pattern[str]:
    """A PowerShell wildcard pattern (* ? [a-z], backtick escapes) as a case-insensitive regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "`" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


# No cmdlet sets a cluster's MaximumParallelMigrations: it is a property of the cluster object. The
# script text is a constant (the host emulator accepts exactly this text and nothing else); the
# cluster's name and the value enter as typed parameters, never as text.
SET_CLUSTER_PARALLEL_MIGRATIONS = (
    "param([string]$Cluster, [int]$Value)\n(Get-Cluster -Name $Cluster).MaximumParallelMigrations = $Value"
)
