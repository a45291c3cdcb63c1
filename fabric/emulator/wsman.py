"""WS-Management envelopes as the emulator reads and writes them (MS-WSMV, the subset PSRP uses).

A request is one SOAP envelope: its header names the action (Create, Command, Send, Receive, Signal,
Delete, Get), the shell (a ShellId selector), the operation timeout and the message id the answer
must relate to. Answers and faults are built here so the server code deals in plain values.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTIONS = {
    TRANSFER + "Create": "Create",
    TRANSFER + "Delete": "Delete",
    TRANSFER + "Get": "Get",
    SHELL + "Command": "Command",
    SHELL + "Send": "Send",
    SHELL + "Receive": "Receive",
    SHELL + "Signal": "Signal",
}
RESPONSE_ACTIONS = {
    "Create": TRANSFER + "CreateResponse",
    "Delete": TRANSFER + "DeleteResponse",
    "Get": TRANSFER + "GetResponse",
    "Command": SHELL + "CommandResponse",
    "Send": SHELL + "SendResponse",
    "Receive": SHELL + "ReceiveResponse",
    "Signal": SHELL + "SignalResponse",
}
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"

# The fault WinRM answers a Receive with when nothing arrived within OperationTimeout; clients poll again.
TIMED_OUT_CODE = 2150858793
# An unknown shell (closed, or never created here).
INVALID_SELECTORS_CODE = 2150858843

SIGNAL_CTRL_C = "powershell/signal/crtl_c"  # sic: the protocol's spelling
SIGNAL_TERMINATE = SHELL + "signal/terminate"
COMMAND_DONE = SHELL + "CommandState/Done"
COMMAND_RUNNING = SHELL + "CommandState/Running"


class WSManFault(Exception):
    """A request the service refuses: becomes an s:Fault with the WSManFault code clients read."""

    def __init__(self, code: int, subcode: str, message: str, http_status: int = 500):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.http_status = http_status


@dataclass
class Request:
    action: str  # short name: Create, Command, Send, Receive, Signal, Delete, Get
    message_id: str
    resource_uri: str
    operation_timeout: float
    max_envelope_size: int
    selectors: dict[str, str] = field(default_factory=dict)
    body: ET.Element | None = None  # the first child of s:Body


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(text: str | None, default: float) -> float:
    """xs:duration as WS-Man uses it (PT20S, PT20.000S, PT1M)."""
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def parse_request(data: bytes) -> Request:
    try:
        root = ET.fromstring(data)  # noqa: S314 - the peer is authenticated; DTDs are not expanded by expat
    except ET.ParseError as exc:
        raise WSManFault(2150858817, "w:SchemaValidationError", f"The request is not well-formed XML: {exc}") from None
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None or body is None:
        raise WSManFault(2150858817, "w:SchemaValidationError", "The SOAP envelope has no header or body")

    def text(path: str) -> str:
        element = header.find(path, NS)
        return (element.text or "").strip() if element is not None else ""

    action_uri = text("wsa:Action")
    action = ACTIONS.get(action_uri)
    if action is None:
        raise WSManFault(2150858754, "w:ActionNotSupported", f"The action {action_uri!r} is not supported")
    selectors = {
        element.get("Name", ""): (element.text or "").strip()
        for element in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    try:
        max_envelope = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    return Request(
        action=action,
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        operation_timeout=parse_duration(text("wsman:OperationTimeout"), 60.0),
        max_envelope_size=max_envelope,
        selectors=selectors,
        body=next(iter(body), None),
    )


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def envelope(action_uri: str, relates_to: str, *children: ET.Element) -> bytes:
    root = ET.Element(q("s", "Envelope"))
    header = ET.SubElement(root, q("s", "Header"))
    ET.SubElement(header, q("wsa", "Action")).text = action_uri
    ET.SubElement(header, q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, q("wsa", "RelatesTo")).text = relates_to
    ET.SubElement(header, q("wsa", "To")).text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    body = ET.SubElement(root, q("s", "Body"))
    for child in children:
        body.append(child)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False)


def response(request: Request, *children: ET.Element) -> bytes:
    return envelope(RESPONSE_ACTIONS[request.action], request.message_id, *children)


def fault_envelope(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    body = ET.Element(q("s", "Fault"))
    code = ET.SubElement(body, q("s", "Code"))
    ET.SubElement(code, q("s", "Value")).text = "s:Receiver"
    sub = ET.SubElement(code, q("s", "Subcode"))
    ET.SubElement(sub, q("s", "Value")).text = fault.subcode
    reason = ET.SubElement(body, q("s", "Reason"))
    ET.SubElement(reason, q("s", "Text"), {q("xml", "lang"): "en-US"}).text = fault.message
    detail = ET.SubElement(body, q("s", "Detail"))
    wsman_fault = ET.SubElement(detail, q("wsmanfault", "WSManFault"), {"Code": str(fault.code), "Machine": machine})
    ET.SubElement(wsman_fault, q("wsmanfault", "Message")).text = fault.message
    return envelope(FAULT_ACTION, relates_to, body)


def timed_out() -> WSManFault:
    return WSManFault(
        TIMED_OUT_CODE,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
    )


def unknown_shell(shell_id: str) -> WSManFault:
    return WSManFault(
        INVALID_SELECTORS_CODE,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server.",
    )


def created(request: Request, endpoint_url: str, shell_id: str, owner: str, client_ip: str) -> bytes:
    """CreateResponse: the ShellId selector (clients address every later request with it) and the shell."""
    resource = ET.Element(q("wst", "ResourceCreated"))
    ET.SubElement(resource, q("wsa", "Address")).text = endpoint_url
    params = ET.SubElement(resource, q("wsa", "ReferenceParameters"))
    ET.SubElement(params, q("wsman", "ResourceURI")).text = request.resource_uri
    selectors = ET.SubElement(params, q("wsman", "SelectorSet"))
    ET.SubElement(selectors, q("wsman", "Selector"), {"Name": "ShellId"}).text = shell_id
    return response(request, resource, shell_element(request.resource_uri, shell_id, owner, client_ip))


def shell_element(resource_uri: str, shell_id: str, owner: str, client_ip: str) -> ET.Element:
    shell = ET.Element(q("rsp", "Shell"))
    for name, value in (
        ("ShellId", shell_id),
        ("ResourceUri", resource_uri),
        ("Owner", owner),
        ("ClientIP", client_ip),
        ("IdleTimeOut", "PT7200.000S"),
        ("InputStreams", "stdin pr"),
        ("OutputStreams", "stdout"),
        ("ShellRunTime", "P0DT0H0M0S"),
        ("ShellInactivity", "P0DT0H0M0S"),
    ):
        ET.SubElement(shell, q("rsp", name)).text = value
    return shell


def command_response(request: Request, command_id: str) -> bytes:
    element = ET.Element(q("rsp", "CommandResponse"))
    ET.SubElement(element, q("rsp", "CommandId")).text = command_id
    return response(request, element)


def receive_response(request: Request, data: bytes, command_id: str | None, done: bool) -> bytes:
    import base64

    element = ET.Element(q("rsp", "ReceiveResponse"))
    attrs = {"Name": "stdout"}
    if command_id:
        attrs["CommandId"] = command_id
    ET.SubElement(element, q("rsp", "Stream"), attrs).text = base64.b64encode(data).decode()
    if command_id:
        state = COMMAND_DONE if done else COMMAND_RUNNING
        ET.SubElement(element, q("rsp", "CommandState"), {"CommandId": command_id, "State": state})
    return response(request, element)


def simple_response(request: Request, tag: str | None) -> bytes:
    """Send, Signal and Delete answers carry no data."""
    return response(request) if tag is None else response(request, ET.Element(q("rsp", tag)))
