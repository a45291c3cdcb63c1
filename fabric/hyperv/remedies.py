"""What an operator should do about a Hyper-V failure, by its code (hyperv.md sections 7 and 9).

Real messages carry their codes anywhere in the text ("... security package (0x8009030E). Failed to
authenticate ..."), often several: the most specific one names the failure. Event 21502 is Hyper-V's
generic "migration failed" and says nothing about the cause on its own.

The simulator raises these remedies with its refusals; the pypsrp driver uses them when a real
host's error record carries no recommended action of its own. They stay English where they are
recorded (a job's error_remedy); marked for the catalogue, pages show them translated.
"""

import re

from django.utils.translation import gettext_noop

REMEDY_LIMIT = gettext_noop("Wait for a running migration to finish (the console queues the move)")
REMEDY_MEMORY = gettext_noop("Pick another host or free memory on the destination")
REMEDY_SWITCH = gettext_noop("Create the virtual switch on the destination or reconnect the adapter")
REMEDY_DELEGATION = gettext_noop(
    "Set Kerberos constrained delegation on both hosts' computer accounts to the other host for cifs and "
    'Microsoft Virtual System Migration Service, with "use any authentication protocol" (not Kerberos only)'
)
REMEDY_NETWORK = gettext_noop("Check the firewall (port 6600) and the migration networks of both hosts")
REMEDY_DRIVE_LETTERS = gettext_noop("Align the system drive letters and paths of the nodes")
REMEDY_POSSIBLE_OWNER = gettext_noop("Add the destination to the possible owners of the VM's cluster role")
REMEDY_VERSION = gettext_noop("Upgrade the destination host, or pick a host that supports this version")
REMEDY_PROCESSOR = gettext_noop(
    "Turn the VM off and enable processor compatibility (Set-VMProcessor -CompatibilityForMigrationEnabled)"
)
REMEDY_GENERIC = gettext_noop(
    "Read the Hyper-V-VMMS event log of both hosts around the failure for its cause, fix it and try again"
)

REMEDIES = {
    "21501": REMEDY_LIMIT,
    "0x800705AA": REMEDY_MEMORY,
    "33012": REMEDY_SWITCH,
    "0x8009030E": REMEDY_DELEGATION,
    "0x8009030D": REMEDY_DELEGATION,
    "0x8007271D": REMEDY_NETWORK,
    "0x8007274C": REMEDY_NETWORK,
    "0x8007274D": REMEDY_NETWORK,
    "0x80072746": REMEDY_NETWORK,
    "0x80071398": REMEDY_POSSIBLE_OWNER,
    "20413": REMEDY_DRIVE_LETTERS,
    "10698": REMEDY_VERSION,
}
GENERIC_CODES = frozenset({"21502"})  # "migration failed": the cause is elsewhere in the text, or unknown
# A code in parentheses, anywhere: an HRESULT (0x8009030E) or an event / message id (21501, 33012).
_CODE = re.compile(r"\((0x[0-9A-Fa-f]{8}|\d{3,6})\)")
_TRAILING_CODE = re.compile(r"\s*\((0x[0-9A-Fa-f]{8}|\d{3,6})\)\s*$")
# The processor refusal has no code of its own (hyperv.md section 7: "hardware ... not compatible").
_PROCESSOR_TEXT = re.compile(r"not compatible with the hardware|hardware .{0,80}not compatible", re.IGNORECASE)


def _normal(code: str) -> str:
    return "0x" + code[2:].upper() if code.lower().startswith("0x") else code


def remedy_for(code: str, text: str = "") -> str:
    """The remedy for a code; for the generic 21502 (or no known code), what the text itself tells."""
    remedy = REMEDIES.get(_normal(code), "")
    if remedy:
        return remedy
    if _PROCESSOR_TEXT.search(text):
        return REMEDY_PROCESSOR
    return REMEDY_GENERIC if code in GENERIC_CODES else ""


def codes_in(text: str) -> list[str]:
    """Every code written in parentheses in a message, in order."""
    return [_normal(m.group(1)) for m in _CODE.finditer(text)]


def most_specific(codes: list[str]) -> str | None:
    """The code that names the failure best: one with a remedy of its own, else an HRESULT, else any
    code but the generic 21502, else 21502; None for none."""
    if not codes:
        return None
    specific = [c for c in codes if c not in GENERIC_CODES]
    return next(
        (c for c in specific if c in REMEDIES),
        next((c for c in specific if c.startswith("0x")), specific[0] if specific else codes[0]),
    )


def diagnose(text: str, fallback_code: str) -> tuple[str, str, str]:
    """(code, message, remedy) of a failure's text: the most specific code in it (else fallback_code),
    the text without a code that only closes it, and the remedy for that code."""
    code = most_specific(codes_in(text)) or fallback_code
    trailing = _TRAILING_CODE.search(text)
    message = text[: trailing.start()] if trailing else text
    return code, message, remedy_for(code, text)
