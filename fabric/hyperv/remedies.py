"""What an operator should do about a Hyper-V failure, by its code (hyperv.md section 7).

The simulator raises these remedies with its refusals; the pypsrp driver uses them when a real
host's error record carries no recommended action of its own. They stay English where they are
recorded (a job's error_remedy); marked for the catalogue, pages show them translated.
"""

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
    "21502": REMEDY_PROCESSOR,
}


def remedy_for(code: str) -> str:
    return REMEDIES.get(code, REMEDIES.get(code.upper() if code.lower().startswith("0x") else code, ""))
