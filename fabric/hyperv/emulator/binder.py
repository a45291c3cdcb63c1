"""Running a PSRP pipeline's commands as an emulated host: parameter binding, statements, the context.

Only cmdlets are accepted, and the few constant scripts a host knows by their exact text (values
bound as their parameters): any other script text fails the pipeline (the console never builds one).
Parameters bind by name, case-insensitively (an unambiguous prefix works, as in PowerShell);
positional arguments take the cmdlet's positional parameters in order. Errors a cmdlet writes are
non-terminating (error records, the pipeline completes); binding errors and unknown commands are
terminating (the pipeline fails), as on a real host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psrpcore.types import ErrorCategory, ErrorRecord, ProgressRecordType

from fabric.hyperv.api import HostUnreachable, HyperVError
from fabric.hyperv.emulator.records import code_message, error_record, plain

if TYPE_CHECKING:
    from fabric.hyperv.emulator.shell import PipelineRun
    from fabric.hyperv.simstore import FabricStore
    from fabric.hyperv.simulator import Fabric

log = logging.getLogger(__name__)


class Terminating(Exception):
    """A terminating error: the pipeline fails with this record."""

    def __init__(self, record: ErrorRecord):
        super().__init__(str(record.Exception.Message))
        self.record = record


@dataclass(frozen=True)
class Cmdlet:
    name: str
    func: Callable[..., list]
    params: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    command_class: str = ""
    changes: bool = False  # recorded in the fabric's record by the cmdlet itself


@dataclass
class HostSide:
    """What every endpoint of one emulator shares: the fabric, options and the wire log."""

    store: FabricStore
    progress_interval: float = 1.0
    on_command: Callable[[dict[str, Any]], None] | None = None
    latency: float = 0.0  # seconds a host spends in each cmdlet (WMI on a real host); for benchmarks


@dataclass
class Context:
    """One command's view of its host and pipeline."""

    side: HostSide
    fqdn: str
    user: str
    run: PipelineRun
    cmdlet: Cmdlet
    errors: list[str] = field(default_factory=list)

    def session(self) -> AbstractContextManager[Fabric]:
        return self.side.store.session()

    @property
    def stopped(self) -> bool:
        return self.run.stop_requested.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep unless the pipeline is stopped; False once it is."""
        return not self.run.stop_requested.wait(seconds)

    def output(self, obj: Any) -> None:
        self.run.write(lambda p: p.write_output(obj))

    def progress(self, activity: str, percent: int, completed: bool = False) -> None:
        self.run.write(
            lambda p: p.write_progress(
                activity,
                0,
                "Completed" if completed else f"{percent}%",
                percent_complete=percent,
                record_type=ProgressRecordType.Completed if completed else ProgressRecordType.Processing,
            )
        )

    def write_error(self, record: ErrorRecord) -> None:
        self.errors.append(str(record.FullyQualifiedErrorId).split(",")[0])
        self.run.write(
            lambda p: p.write_error(
                record.Exception,
                record.CategoryInfo,
                record.TargetObject,
                record.FullyQualifiedErrorId,
                record.ErrorDetails,
            )
        )

    def error(self, error_id: str, message: str, *, category=ErrorCategory.InvalidOperation, target=None, remedy=""):
        self.write_error(
            error_record(
                error_id,
                message,
                command_class=self.cmdlet.command_class,
                category=category,
                target=target,
                recommended_action=remedy,
                exception="cluster" if "FailoverClusters" in self.cmdlet.command_class else "hyperv",
                activity=self.cmdlet.name,
            )
        )

    def hyperv_error(self, exc: HyperVError, target: Any = None) -> None:
        """A refusal of the simulated Hyper-V as the error record the real cmdlet writes."""
        error_id, message = code_message(exc.code, exc.message)
        self.error(error_id, message, category=_category(exc), target=target, remedy=exc.remedy)


def _category(exc: HyperVError) -> ErrorCategory:
    if isinstance(exc, HostUnreachable):
        return ErrorCategory.ConnectionError
    return {
        "NotFound": ErrorCategory.ObjectNotFound,
        "ObjectNotFound": ErrorCategory.ObjectNotFound,
        "InvalidParameter": ErrorCategory.InvalidArgument,
        "21501": ErrorCategory.LimitsExceeded,
        "0x800705AA": ErrorCategory.ResourceUnavailable,
        "0x8009030E": ErrorCategory.SecurityError,
    }.get(exc.code, ErrorCategory.InvalidOperation)


def bind(cmdlet: Cmdlet, parameters: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Parameter name -> value; a switch given without a value is True."""
    known = {name.lower(): name for name in (*cmdlet.params, *cmdlet.switches)}
    bound: dict[str, Any] = {}
    positional = list(cmdlet.positional)
    for raw_name, value in parameters:
        if raw_name is None:
            if not positional:
                raise Terminating(
                    _binding_error(
                        cmdlet,
                        f"A positional parameter cannot be found that accepts argument '{value}'.",
                        "PositionalParameterNotFound",
                    )
                )
            bound[positional.pop(0)] = value
            continue
        key = raw_name.lstrip("-").lower()
        name = known.get(key)
        if name is None:
            matches = [n for k, n in known.items() if k.startswith(key)]
            if len(matches) != 1:
                raise Terminating(
                    _binding_error(
                        cmdlet,
                        f"A parameter cannot be found that matches parameter name '{raw_name}'.",
                        "NamedParameterNotFound",
                    )
                )
            name = matches[0]
        if name in cmdlet.switches:
            value = True if value is None else bool(value)
        elif value is None:
            raise Terminating(_binding_error(cmdlet, f"Missing an argument for parameter '{name}'.", "MissingArgument"))
        if name in positional:
            positional.remove(name)
        bound[name] = value
    return bound


def _binding_error(cmdlet: Cmdlet, message: str, error_id: str) -> ErrorRecord:
    return error_record(
        error_id,
        message,
        command_class=cmdlet.command_class,
        category=ErrorCategory.InvalidArgument,
        exception="binding",
        activity=cmdlet.name,
    )


def run_pipeline(
    side: HostSide,
    fqdn: str,
    user: str,
    run: PipelineRun,
    metadata: Any,
    cmdlets: dict[str, Cmdlet],
    scripts: dict[str, Cmdlet] | None = None,
) -> None:
    """Execute every statement of a CreatePipeline; a terminating error fails the pipeline."""
    statements: list[list[Any]] = [[]]
    for command in metadata.commands:
        statements[-1].append(command)
        if command.end_of_statement:
            statements.append([])
    try:
        for statement in (s for s in statements if s):
            if run.stop_requested.is_set():
                return
            _run_statement(side, fqdn, user, run, statement, cmdlets, scripts or {})
    except Terminating as exc:
        run.fail(exc.record)


def _run_statement(
    side: HostSide,
    fqdn: str,
    user: str,
    run: PipelineRun,
    commands: list[Any],
    cmdlets: dict[str, Cmdlet],
    scripts: dict[str, Cmdlet],
) -> None:
    objects: list | None = None
    for command in commands:
        name = str(command.command_text)
        # A known constant script (its exact text) runs like a cmdlet whose parameters are the script's.
        cmdlet = scripts.get(name) if command.is_script else cmdlets.get(name.lower())
        if cmdlet is not None and not _module_installed(side, fqdn, cmdlet):
            cmdlet = None  # without the FailoverClusters module its cmdlets do not exist on the host
        if command.is_script and cmdlet is None:
            _log(side, fqdn, user, name, {"script": name}, None, "refused: script")
            raise Terminating(
                error_record(
                    "ScriptsNotAccepted",
                    "This Hyper-V host accepts cmdlets with typed parameters only; script text is refused.",
                    category=ErrorCategory.PermissionDenied,
                    exception="notfound",
                )
            )
        if cmdlet is None:
            _log(side, fqdn, user, name, {}, None, "refused: unknown command")
            raise Terminating(
                error_record(
                    "CommandNotFoundException",
                    f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
                    "program. Check the spelling of the name, or if a path was included, verify that the path is "
                    "correct and try again.",
                    category=ErrorCategory.ObjectNotFound,
                    target=name,
                    exception="notfound",
                )
            )
        received = [(n, v) for n, v in command.parameters]
        try:
            params = bind(cmdlet, received)
        except Terminating:
            _log(side, fqdn, user, cmdlet.name, _received(received), objects, "refused: parameter binding")
            raise
        ctx = Context(side, fqdn, user, run, cmdlet)
        started = time.monotonic()
        if side.latency and ctx.wait(side.latency) is False:
            return
        try:
            objects = list(cmdlet.func(ctx, params, objects) or [])
        finally:
            result = "ok" if not ctx.errors else "error: " + ", ".join(ctx.errors)
            _log(side, fqdn, user, cmdlet.name, _received(received), objects, result, time.monotonic() - started)
    for obj in objects or []:
        if not run.write(lambda p, obj=obj: p.write_output(obj)):
            return


def _module_installed(side: HostSide, fqdn: str, cmdlet: Cmdlet) -> bool:
    """Whether the module of this cmdlet is on the host (only FailoverClusters may be missing)."""
    if "FailoverClusters" not in cmdlet.command_class:
        return True
    with side.store.session() as fabric:
        host = fabric.hosts.get(fqdn)
        return host is None or host.failover_clustering_installed


def _received(parameters: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Parameters as the client sent them (a switch without a value is recorded as True)."""
    out: dict[str, Any] = {}
    for i, (name, value) in enumerate(parameters):
        out[name.lstrip("-") if name else f"arg{i}"] = True if value is None else plain(value)
    return out


def _log(side, fqdn, user, cmdlet, params, objects, result, seconds: float = 0.0) -> None:
    entry = {"host": fqdn, "user": user, "cmdlet": cmdlet, "params": params, "result": result}
    log.debug("%s %s %s -> %s", fqdn, cmdlet, params, result)
    if side.on_command is not None:
        side.on_command(entry)


# --- helpers for cmdlets ---------------------------------------------------------------------------


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
