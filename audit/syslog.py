"""Audit events as syslog messages: RFC 5424, framed by octet counting (RFC 6587). Pure: no Django,
no sockets (audit/forward.py sends).

One message per event. The MSG is the event's record as the JSON Lines export writes it (sequence,
every hashed field, prev_hash, hash), so a SIEM can recompute the chain from what it received.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

APP_NAME = "hvmc"  # RFC 5424 APP-NAME: the Hyper-V migration console
MSGID = "audit"
# RFC 5424 section 6.2.1.
FACILITIES = {
    "auth": 4,
    "user": 1,
    "authpriv": 10,
    "audit": 13,  # "log audit"
    **{f"local{n}": 16 + n for n in range(8)},
}
NOTICE, WARNING = 5, 4


def severity(outcome: str) -> int:
    """A change that happened is a notice; a refusal or a failure a warning."""
    return NOTICE if outcome == "success" else WARNING


def timestamp(moment: datetime) -> str:
    """RFC 5424 TIMESTAMP in UTC with microseconds (TIME-SECFRAC allows six digits)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header_field(value: str, max_length: int) -> str:
    """A header field as RFC 5424 allows it (printable US-ASCII, no space, bounded), or "-" (NILVALUE)."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:max_length]
    return cleaned or "-"


def message(record: dict, moment: datetime, *, facility: str, hostname: str, procid: str) -> bytes:
    """One RFC 5424 message: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG.

    Structured data is the NILVALUE: an SD-ID of our own would need an IANA enterprise number, and
    the MSG carries sequence and hash anyway. The MSG is JSON with non-ASCII escaped, so it is plain
    ASCII and needs no BOM."""
    pri = FACILITIES[facility] * 8 + severity(record.get("outcome", ""))
    head = " ".join(
        [
            f"<{pri}>1",
            timestamp(moment),
            header_field(hostname, 255),
            APP_NAME,
            header_field(procid, 128),
            MSGID,
            "-",
        ]
    )
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return f"{head} {body}".encode("ascii")


def frame(msg: bytes) -> bytes:
    """RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG."""
    return b"%d %s" % (len(msg), msg)


def unframe(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete messages at the start of buffer, and what is left of it (a receiver's side: the
    tests' receivers use it)."""
    messages = []
    while b" " in buffer:
        length, _, rest = buffer.partition(b" ")
        if not length.isdigit():
            raise ValueError(f"not octet-counted: {buffer[:20]!r}")
        if len(rest) < int(length):
            break
        messages.append(rest[: int(length)])
        buffer = rest[int(length) :]
    return messages, buffer
