"""One PowerShell Remoting shell (a runspace pool) and the pipelines running in it.

psrpcore's ServerRunspacePool holds the protocol state; it is not thread-safe, so each shell has one
lock (a Condition) that every access takes: requests feeding it, pipeline threads writing output,
Receive requests waiting for data. Outgoing PSRP data is drained into one queue per target (the pool,
or a pipeline) right after it is produced, as whole payloads of capped fragments, so a Receive for
one pipeline never carries another's data and never splits a fragment.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from xml.etree import ElementTree

from psrpcore import (
    CreatePipelineEvent,
    GetAvailableRunspacesEvent,
    PSRPEvent,
    ResetRunspaceStateEvent,
    ServerPipeline,
    ServerRunspacePool,
    SetMaxRunspacesEvent,
    SetMinRunspacesEvent,
)
from psrpcore._payload import PSRPMessage, PSRPPayload, StreamType, create_message
from psrpcore._pipeline import PowerShell
from psrpcore.types import ErrorRecord, PSInvocationState, PSRPMessageType, RunspacePoolState
from psrpcore.types import deserialize as read_clixml

from fabric.emulator import clixml_writer, wsman

log = logging.getLogger(__name__)

# pypsrp reads whole fragments from each Receive; 32 KB fragments keep answers well inside the
# client's MaxEnvelopeSize (153,600 bytes by default, base64 adds a third).
FRAGMENT_SIZE = 32 * 1024

Runner = Callable[["PipelineRun", object], None]

# CreatePipeline messages read so far, by their CLIXML: a client sends the same pipeline to many hosts
# (the console's inventory: 14 statements, the same bytes for every host), and reading it, then building
# the pipeline's metadata from it, was a sixth of an emulator process's CPU in bench/sync.py. Shared by
# the process's pools; bounded.
_READ: dict[bytes, tuple[object, PowerShell]] = {}
_READ_MAX = 256


class _RunspacePool(ServerRunspacePool):
    """psrpcore's server pool, with a CreatePipeline message read once per process and text.

    What is kept is the message as read and the pipeline metadata psrpcore builds from it, shared by the
    pipelines sent the same bytes: nothing writes to either (the binder reads the commands and their
    parameters). A message holding a secure string is read each time: its bytes depend on the pool's
    session key.
    """

    def _process_message(self, message: PSRPMessage) -> PSRPEvent:
        if message.message_type != PSRPMessageType.CreatePipeline:
            return super()._process_message(message)
        data = bytes(message.data)
        if b"<SS" in data:
            return super()._process_message(message)
        read = _READ.get(data)
        if read is None:
            # The client authenticated: its CLIXML is read as psrpcore reads it.
            element = ElementTree.fromstring(data)  # noqa: S314
            ps_object = read_clixml(
                element, self._cipher, our_capability=self.our_capability, their_capability=self.their_capability
            )
            read = (ps_object, PowerShell.FromPSObjectForRemoting(ps_object))
            if len(_READ) >= _READ_MAX:
                _READ.clear()
            _READ[data] = read
        event = PSRPEvent.create(message.message_type, read[0], message.runspace_pool_id, message.pipeline_id)
        self.pipeline_table[message.pipeline_id].metadata = read[1]  # psrpcore's _process_CreatePipeline
        return event

    def prepare_message(
        self,
        message: object,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        """psrpcore's, with the cmdlets' output objects written by clixml_writer (the same bytes)."""
        data = clixml_writer.write(message) if message_type == PSRPMessageType.PipelineOutput else None
        if data is None:
            return super().prepare_message(message, message_type, pipeline_id, stream_type)
        packed = create_message(self._is_client, message_type, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(
                message_type, bytearray(packed), self.runspace_pool_id, pipeline_id, self._fragment_counter, stream_type
            )
        )


class Shell:
    """A runspace pool opened by one client; pipelines run in threads of their own."""

    def __init__(
        self, shell_id: str, owner: str, client_ip: str, resource_uri: str, runner: Runner, auth: str = "basic"
    ):
        self.id = shell_id.upper()
        self.owner = owner
        self.auth = auth  # how the client logged on: basic, ntlm, kerberos or credssp (cmdlets may ask)
        self.client_ip = client_ip
        self.resource_uri = resource_uri
        self.runner = runner
        self.pool = _RunspacePool()
        self.cond = threading.Condition()  # the shell's one lock
        self.out: dict[uuid.UUID | None, deque[bytes]] = {None: deque()}
        self.runs: dict[uuid.UUID, PipelineRun] = {}
        self.closed = False
        self.used_at = time.monotonic()

    def touch(self) -> None:
        self.used_at = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the client last used the shell; a pipeline still running keeps it busy."""
        if any(not run.finished for run in self.runs.values()):
            return 0.0
        return time.monotonic() - self.used_at

    # --- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes, pipeline_id: uuid.UUID | None = None) -> None:
        """PSRP fragments from the client (creationXml, Command arguments, Send)."""
        with self.cond:
            self.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
            while (event := self.pool.next_event()) is not None:
                self._on_event(event)
            self.drain()

    def create_pipeline(self, command_id: str, first_fragment: bytes) -> None:
        """Command: the pipeline must exist before its CreatePipeline message is processed."""
        pipeline_id = uuid.UUID(command_id)
        with self.cond:
            if pipeline_id in self.runs:
                raise wsman.WSManFault(2150858880, "w:AlreadyExists", f"Command {command_id} already exists")
            self.runs[pipeline_id] = PipelineRun(self, ServerPipeline(self.pool, pipeline_id))
            self.out[pipeline_id] = deque()
        self.feed(first_fragment, pipeline_id)

    def _on_event(self, event: object) -> None:
        if isinstance(event, CreatePipelineEvent):
            # The metadata psrpcore built from the message (event.pipeline would build it again).
            self.runs[event.pipeline_id].start(self.pool.pipeline_table[event.pipeline_id].metadata)
        elif isinstance(event, (SetMaxRunspacesEvent, SetMinRunspacesEvent, ResetRunspaceStateEvent)):
            self.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, GetAvailableRunspacesEvent):
            busy = sum(1 for run in self.runs.values() if not run.finished)
            self.pool.runspace_availability_response(event.ci, max(0, self.pool.max_runspaces - busy))

    def drain(self) -> None:
        """Move what psrpcore queued into the per-target queues; wake waiting Receives. Lock held."""
        while (payload := self.pool.data_to_send(FRAGMENT_SIZE)) is not None:
            self.out.setdefault(payload.pipeline_id, deque()).append(payload.data)
        self.cond.notify_all()

    # --- output --------------------------------------------------------------------------------

    def receive(self, command_id: str | None, operation_timeout: float, max_bytes: int) -> tuple[bytes, bool]:
        """Data for the pool or one pipeline: (payload bytes, pipeline done).

        Waits for data; when none comes, raises the WS-Man timeout fault a little before the client's
        OperationTimeout, as WinRM does, so the client polls again instead of timing out its socket.
        """
        pipeline_id = uuid.UUID(command_id) if command_id else None
        wait = operation_timeout * 0.8 if operation_timeout < 5 else operation_timeout - 1.0
        deadline = time.monotonic() + max(0.05, wait)
        with self.cond:
            while True:
                queue = self.out.get(pipeline_id)
                if queue is None or self.closed:
                    raise wsman.WSManFault(2150858843, "w:InvalidSelectors", f"No command {command_id} in this shell")
                if queue:
                    chunks = [queue.popleft()]
                    total = len(chunks[0])
                    while queue and total + len(queue[0]) <= max_bytes:
                        total += len(queue[0])
                        chunks.append(queue.popleft())
                    run = self.runs.get(pipeline_id) if pipeline_id else None
                    return b"".join(chunks), bool(run and run.finished and not queue)
                run = self.runs.get(pipeline_id) if pipeline_id else None
                if run is not None and run.finished:
                    return b"", True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise wsman.timed_out()
                self.cond.wait(remaining)

    # --- signals and closing -------------------------------------------------------------------

    def signal(self, command_id: str, code: str) -> None:
        pipeline_id = uuid.UUID(command_id)
        with self.cond:
            run = self.runs.get(pipeline_id)
            if run is None:
                return  # already terminated: signals are idempotent for the client
            if code == wsman.SIGNAL_CTRL_C:
                run.stop_locked()
            elif code == wsman.SIGNAL_TERMINATE:
                run.stop_locked()
                run.pipeline.close()
                del self.runs[pipeline_id]
                self.out.pop(pipeline_id, None)
            self.drain()

    def close(self) -> None:
        with self.cond:
            for run in self.runs.values():
                run.stop_locked()
            self.closed = True
            self.runs.clear()
            self.cond.notify_all()


class PipelineRun:
    """One pipeline: its commands run in a thread and write through these methods (each takes the lock)."""

    def __init__(self, shell: Shell, pipeline: ServerPipeline):
        self.shell = shell
        self.pipeline = pipeline
        self.stop_requested = threading.Event()
        self.finished = False
        self.thread: threading.Thread | None = None

    def start(self, metadata: object) -> None:
        """Lock held: mark running, then execute the commands in a thread of their own."""
        self.pipeline.start()
        self.thread = threading.Thread(
            target=self._run, args=(metadata,), name=f"psrp-pipeline-{self.pipeline.pipeline_id}", daemon=True
        )
        self.thread.start()

    def _run(self, metadata: object) -> None:
        try:
            self.shell.runner(self, metadata)
        except Exception as exc:  # an emulator bug must end the pipeline, not hang the client
            log.exception("pipeline %s failed", self.pipeline.pipeline_id)
            from fabric.emulator.records import error_record

            self.fail(error_record("InternalError", f"The emulator failed: {exc}", category=9))
        else:
            self.complete()

    @property
    def running(self) -> bool:
        return self.pipeline.state == PSInvocationState.Running and not self.shell.closed

    def write(self, action: Callable[[ServerPipeline], None]) -> bool:
        """Run a pipeline write (output, error, progress) if the pipeline still runs; False once stopped."""
        with self.shell.cond:
            if not self.running or self.shell.pool.state != RunspacePoolState.Opened:
                return False
            action(self.pipeline)
            self.shell.drain()
            return True

    def complete(self) -> None:
        with self.shell.cond:
            if self.running:
                self.pipeline.complete()
            self.finished = True
            self.shell.drain()

    def fail(self, error: ErrorRecord) -> None:
        """A terminating error: the pipeline ends Failed with the error record (pypsrp sets had_errors)."""
        with self.shell.cond:
            if self.running:
                # psrpcore's ServerPipeline has no public "failed" transition; _change_state emits the
                # PipelineState message with the error record, as PowerShell does.
                self.pipeline._change_state(PSInvocationState.Failed, error)
            self.finished = True
            self.shell.drain()

    def stop_locked(self) -> None:
        """Ctrl-C: the pipeline stops; what it started on the host (a migration job) goes on."""
        self.stop_requested.set()
        if self.pipeline.state in (PSInvocationState.Running, PSInvocationState.Stopping):
            self.pipeline.stop()
        self.finished = True
