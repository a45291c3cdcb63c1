"""Codes and remedies read from real Hyper-V messages: the code sits anywhere in the text, and the
generic 21502 ("migration failed") says nothing about the cause (hyperv.md section 9)."""

from types import SimpleNamespace

from fabric.hyperv.psrp_parse import job_error
from fabric.hyperv.psrp_session import to_error
from fabric.hyperv.remedies import REMEDY_DELEGATION, REMEDY_GENERIC, REMEDY_PROCESSOR, diagnose

# The shape of a real Move-VM failure: the code mid-text, more sentences after it.
DELEGATION = (
    "Virtual machine migration operation for 'web01' failed at migration source 'HV01'. "
    "The Virtual Machine Management Service failed to establish a connection for a Virtual Machine "
    "migration with host 'HV02': No credentials are available in the security package (0x8009030E). "
    "Failed to authenticate the connection at the source host: no suitable credentials available."
)


def record(message: str, fq_error: str = "OperationFailed,Microsoft.HyperV.PowerShell.Commands.MoveVM"):
    return SimpleNamespace(details_message=message, fq_error=fq_error, action="")


def test_a_code_in_the_middle_of_an_error_record_is_its_code_with_its_remedy():
    error = to_error(record(DELEGATION), "hv01.contoso.test")

    assert error.code == "0x8009030E"
    assert error.remedy == REMEDY_DELEGATION
    assert error.message == DELEGATION  # nothing cut off: the code does not close the text


def test_a_code_in_the_middle_of_a_jobs_error_description_is_its_code():
    error = job_error({"ErrorDescription": DELEGATION, "ErrorCode": 32768})

    assert (error.code, error.remedy) == ("0x8009030E", REMEDY_DELEGATION)


def test_21502_alone_is_generic_not_the_processor_remedy():
    text = "Virtual machine migration operation for 'web01' failed at migration source 'HV01'. (21502)"

    code, message, remedy = diagnose(text, "OperationFailed")
    job = job_error({"ErrorDescription": "Migration did not succeed.", "ErrorCode": 21502})

    assert (code, remedy) == ("21502", REMEDY_GENERIC)
    assert message.endswith("'HV01'.")  # a code that only closes the text is not repeated in it
    assert (job.code, job.remedy) == ("21502", REMEDY_GENERIC)


def test_the_most_specific_code_wins_over_21502_wherever_each_stands():
    text = f"Migration failed (21502). {DELEGATION} Event (20417) follows."

    assert diagnose(text, "x")[0] == "0x8009030E"
    assert diagnose("The migration limit was reached (21501) (21502)", "x")[0] == "21501"
    assert diagnose("Failed (21502): unknown failure (0x80004005)", "x")[0] == "0x80004005"


def test_a_processor_refusal_is_known_by_its_text_under_the_generic_code():
    text = (
        "The virtual machine 'web01' is using processor-specific features not supported on physical "
        "computer 'HV02'. The hardware on the destination computer is not compatible with the hardware "
        "requirements of this virtual machine. (21502)"
    )

    assert diagnose(text, "x")[1:] == (text[: -len(" (21502)")], REMEDY_PROCESSOR)
