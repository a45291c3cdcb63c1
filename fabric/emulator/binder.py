"""Running a PSRP pipeline's commands as an emulated host: parameter binding, statements, the context.

Only cmdlets are accepted, and the few constant scripts a host knows by their exact text (values
bound as their parameters): any other script text fails the pipeline (the console never builds one).
A cmdlet of Microsoft's help binds exactly by its facts (cmdlet_facts.json, made by
reference_facts.py): names and aliases case-insensitively or by an unambiguous prefix, positions,
types, pipeline input by value and by property name, one parameter set (the default one when
several fit), mandatory parameters. Failures carry PowerShell's error ids (NamedParameterNotFound,
AmbiguousParameter, ParameterAlreadyBound, MissingArgument, PositionalParameterNotFound,
CannotConvertArgument[NoMessage], AmbiguousParameterSet, MissingMandatoryParameter,
InputObjectNotBound). Commands outside the reference bind by their registration's lists.
Errors a cmdlet writes are non-terminating (error records, the pipeline completes); binding errors
and unknown commands are terminating (the pipeline fails), as on a real host.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from psrpcore.types import ErrorCategory, ErrorRecord, ProgressRecordType, PSObject

from fabric.emulator.conversion import SYSTEM, convert, matches_exactly
from fabric.emulator.records import code_message, error_record, plain, prop
from fabric.hyperv.api import HostUnreachable, HyperVError
from fabric.hyperv.reference_facts import FACTS_FILE

if TYPE_CHECKING:
    from fabric.emulator.shell import PipelineRun
    from fabric.sim.simulator import Fabric
    from fabric.sim.store import FabricStore

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
    binding: Binding | None = None

    @property
    def parameter_set(self) -> str:
        """The parameter set the command bound to (empty for commands outside the reference)."""
        return self.binding.parameter_set if self.binding else ""

    @property
    def received(self) -> dict[str, Any]:
        """The parameters as the client sent them (names as given, plain values): for the record."""
        return self.binding.received if self.binding else {}

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


@dataclass
class Binding:
    """A command bound to its cmdlet: values by parameter name (aliases and prefixes resolved, a switch
    True or False), the parameter set PowerShell would choose, the parameters as the client sent them
    (for the record), and the pipeline objects that bound (None when the command is first)."""

    params: dict[str, Any]
    parameter_set: str
    received: dict[str, Any]
    inputs: list | None = None
    refused: list = field(default_factory=list)


@cache
def facts() -> dict:
    """The binding facts of Microsoft's help (reference_facts.py); the binder binds by them."""
    return json.loads(FACTS_FILE.read_text(encoding="utf-8"))


@cache
def _by_name() -> dict[str, dict]:
    return {name.lower(): spec for name, spec in facts()["cmdlets"].items()}


def cmdlet_facts(name: str) -> dict | None:
    """A cmdlet's facts (its name in any case), None for a command outside the reference."""
    return _by_name().get(name.lower())


def bind(cmdlet: Cmdlet, parameters: list[tuple[str | None, Any]], inputs: list | None = None) -> Binding:
    """Bind as PowerShell does: by the cmdlet's facts from the help when it has them, else by the
    registration's own lists (commands outside the reference: CIM, Where-Object, DNS, known scripts)."""
    received = _received(parameters)
    spec = cmdlet_facts(cmdlet.name)
    if spec is None:
        return Binding(_bind_listed(cmdlet, parameters), "", received, inputs)
    return _Binder(cmdlet, spec).bind(parameters, inputs, received)


class _Binder:
    """One command's binding by the facts, after PowerShell's ParameterBinderController: named
    arguments, then positional ones, type conversion, pipeline input, parameter set, mandatory ones."""

    def __init__(self, cmdlet: Cmdlet, spec: dict):
        self.cmdlet = cmdlet
        self.spec = spec
        common = facts()["common_parameters"]
        self.params = {**{n: {**common[n], "sets": {}} for n in spec["common"]}, **spec["parameters"]}
        self.default = spec["default_set"]

    def fail(self, error_id: str, message: str, target: Any = None) -> Terminating:
        return Terminating(_binding_error(self.cmdlet, message, error_id, target))

    def in_set(self, name: str, set_name: str) -> bool:
        sets = self.params[name]["sets"]
        return not sets or set_name in sets  # common parameters are in every set

    def bind(self, parameters, inputs: list | None, received: dict) -> Binding:
        bound: dict[str, Any] = {}
        positional = []
        for raw, value in parameters:
            if raw is None:
                positional.append(value)
                continue
            name = self.name_of(raw)
            if name in bound:
                raise self.fail(
                    "ParameterAlreadyBound",
                    f"Cannot bind parameter because parameter '{name}' is specified more than once. To provide "
                    "multiple values to parameters that can accept multiple values, use the array syntax. For "
                    'example, "-parameter value1,value2,value3".',
                )
            bound[name] = self.switch_or_value(name, value)
        sets = self.narrow(list(self.spec["sets"]), bound)
        for value in positional:
            name = self.positional(sets, bound, value)
            bound[name] = value
            sets = self.narrow(sets, bound)
        for name, value in bound.items():
            failure = convert(name, value, self.params[name]["type"], self.params[name].get("values"))
            if failure:
                raise self.fail(*failure, target=value)
        if inputs is None:
            chosen = self.resolve(sets, bound)
            self.check_mandatory(chosen, bound)
            return Binding(bound, chosen, received)
        return self.bind_pipeline(sets, bound, inputs, received)

    def name_of(self, raw: str) -> str:
        """A parameter by its name or alias, or an unambiguous prefix of them (case-insensitive)."""
        key = raw.lstrip("-").lower()
        names = {n.lower(): n for n in self.params} | {
            a.lower(): n for n, p in self.params.items() for a in p["aliases"]
        }
        if key in names:
            return names[key]
        matches = sorted({n for k, n in names.items() if k.startswith(key)})
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise self.fail(
                "AmbiguousParameter",
                f"Parameter cannot be processed because the parameter name '{raw.lstrip('-')}' is ambiguous. "
                f"Possible matches include: {' '.join('-' + m for m in matches)}.",
            )
        raise self.fail("NamedParameterNotFound", f"A parameter cannot be found that matches parameter name '{raw}'.")

    def switch_or_value(self, name: str, value: Any) -> Any:
        if self.params[name]["type"] == "SwitchParameter":
            return True if value is None else value
        if value is None:
            raise self.fail(
                "MissingArgument",
                f"Missing an argument for parameter '{name}'. Specify a parameter of type "
                f"'{SYSTEM.get(self.params[name]['type'], self.params[name]['type'])}' and try again.",
            )
        return value

    def narrow(self, sets: list[str], bound: dict) -> list[str]:
        """The sets every bound parameter belongs to; none left: the call fits no set."""
        left = [s for s in sets if all(self.in_set(n, s) for n in bound)]
        if not left:
            raise self.fail("AmbiguousParameterSet", AMBIGUOUS_SET)
        return left

    def positional(self, sets: list[str], bound: dict, value: Any) -> str:
        """The unbound parameter at the lowest position of the remaining sets that takes the value: the
        default set's first, then the others' (a string does not bind to a CimSession at that position)."""
        order = sorted(sets, key=lambda s: s != self.default)
        slots = sorted(
            (p["sets"][s]["position"], order.index(s), n)
            for n, p in self.params.items()
            if n not in bound
            for s in sets
            if s in p["sets"] and p["sets"][s]["position"] is not None
        )
        if not slots:
            message = f"A positional parameter cannot be found that accepts argument '{value}'."
            raise self.fail("PositionalParameterNotFound", message)
        candidates = [n for position, _, n in slots if position == slots[0][0]]
        for name in candidates:
            if self.fits(name, value, exact=False):
                return name
        return candidates[0]  # its conversion error is what PowerShell reports

    def missing(self, set_name: str, bound: dict) -> list[str]:
        return [n for n, p in self.params.items() if n not in bound and p["sets"].get(set_name, {}).get("mandatory")]

    def resolve(self, sets: list[str], bound: dict) -> str:
        """One set, or the default among several, or the only one with all its mandatory parameters."""
        if len(sets) == 1:
            return sets[0]
        if self.default in sets:
            return self.default
        complete = [s for s in sets if not self.missing(s, bound)]
        if len(complete) != 1:
            raise self.fail("AmbiguousParameterSet", AMBIGUOUS_SET)
        return complete[0]

    def check_mandatory(self, chosen: str, bound: dict) -> None:
        # A remote host has no one to prompt: PowerShell reports the missing ones instead.
        missing = self.missing(chosen, bound)
        if missing:
            raise self.fail(
                "MissingMandatoryParameter",
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            )

    def bind_pipeline(self, sets: list[str], bound: dict, inputs: list, received: dict) -> Binding:
        """Each object binds to a parameter taking pipeline input (by value, then by property name;
        without coercion first); one that binds nowhere is refused with a non-terminating error."""
        takers = [s for s in sets if any(self.pipes(n, s) for n in self.params if n not in bound)]
        sets = takers or sets
        accepted, chosen, params, refused = [], "", dict(bound), []
        for obj in inputs:
            found = self.bind_object(obj, sets, bound)
            if found is None:
                refused.append(obj)
                continue
            if not accepted:
                got, left = found
                params = {**bound, **got}
                chosen = self.resolve(left, params)
                self.check_mandatory(chosen, params)
            accepted.append(obj)
        return Binding(params, chosen or self.resolve_quietly(sets), received, accepted, refused)

    def resolve_quietly(self, sets: list[str]) -> str:
        return self.default if self.default in sets else sets[0]

    def pipes(self, name: str, set_name: str, kind: str | None = None) -> bool:
        p = self.params[name]
        return set_name in p["sets"] and bool(p["pipeline"]) and (kind is None or kind in p["pipeline"])

    def bind_object(self, obj: Any, sets: list[str], bound: dict) -> tuple[dict, list[str]] | None:
        order = sorted(sets, key=lambda s: s != self.default)
        for kind, exact in (("ByValue", True), ("ByPropertyName", True), ("ByValue", False), ("ByPropertyName", False)):
            for set_name in order:
                got = {}
                for name in self.params:
                    if name in bound or not self.pipes(name, set_name, kind):
                        continue
                    value = obj if kind == "ByValue" else self.property_of(obj, name)
                    if value is not None and self.fits(name, value, exact):
                        got[name] = value
                if got:
                    return got, [s for s in sets if all(self.in_set(n, s) for n in got)]
        return None

    def property_of(self, obj: Any, name: str) -> Any:
        for key in (name, *self.params[name]["aliases"]):
            value = prop(obj, key) if isinstance(obj, PSObject) and not isinstance(obj, dict) else None
            if value is not None:
                return value
        return None

    def fits(self, name: str, value: Any, exact: bool) -> bool:
        p = self.params[name]
        if exact:
            return matches_exactly(value, p["type"])
        return convert(name, value, p["type"], p.get("values")) is None


AMBIGUOUS_SET = "Parameter set cannot be resolved using the specified named parameters."


def _bind_listed(cmdlet: Cmdlet, parameters: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """Parameter name -> value by the registration's lists; a switch given without a value is True."""
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


def _binding_error(cmdlet: Cmdlet, message: str, error_id: str, target: Any = None) -> ErrorRecord:
    """A ParameterBindingException's record: category InvalidArgument, id "<id>,<cmdlet class>"."""
    return error_record(
        error_id,
        message,
        command_class=cmdlet.command_class,
        category=ErrorCategory.InvalidArgument,
        target=None if target is None else plain(target),
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
        piped = None if objects is None else _input_shape(objects)
        try:
            binding = bind(cmdlet, received, objects)
        except Terminating:
            _log(side, fqdn, user, cmdlet.name, _received(received), piped, "refused: parameter binding")
            raise
        ctx = Context(side, fqdn, user, run, cmdlet, binding=binding)
        for obj in binding.refused:
            ctx.write_error(_binding_error(cmdlet, INPUT_NOT_BOUND, "InputObjectNotBound", obj))
        if objects is not None and not binding.inputs:
            # Nothing reached it through the pipeline: PowerShell never runs its record processing.
            _log(side, fqdn, user, cmdlet.name, binding.received, piped, "ok: no input", set_name=binding.parameter_set)
            objects = []
            continue
        started = time.monotonic()
        if side.latency and ctx.wait(side.latency) is False:
            return
        try:
            objects = list(cmdlet.func(ctx, binding.params, binding.inputs) or [])
        finally:
            result = "ok" if not ctx.errors else "error: " + ", ".join(ctx.errors)
            seconds = time.monotonic() - started
            _log(side, fqdn, user, cmdlet.name, binding.received, piped, result, seconds, binding.parameter_set)
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


INPUT_NOT_BOUND = (
    "The input object cannot be bound to any parameters for the command either because the command does not take "
    "pipeline input or the input and its properties do not match any of the parameters that take pipeline input."
)


def _input_shape(objects: list) -> dict[str, Any]:
    """What came through the pipeline, for the wire log: the first object's type and property names."""
    first = objects[0] if objects else None
    names = list(first.PSObject.type_names) if isinstance(first, PSObject) and not isinstance(first, dict) else []
    props = []
    if names:
        props = [p.name for p in (*first.PSObject.extended_properties, *first.PSObject.adapted_properties)]
    return {"count": len(objects), "type": names[0] if names else type(first).__name__, "properties": props}


def _log(side, fqdn, user, cmdlet, params, piped, result, seconds: float = 0.0, set_name: str = "") -> None:
    entry = {"host": fqdn, "user": user, "cmdlet": cmdlet, "params": params, "result": result}
    if piped is not None:
        entry["input"] = piped
    if set_name:
        entry["parameter_set"] = set_name
    log.debug("%s %s %s -> %s", fqdn, cmdlet, params, result)
    if side.on_command is not None:
        side.on_command(entry)


# --- helpers for cmdlets ---------------------------------------------------------------------------


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
