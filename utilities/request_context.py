"""The request being served, for code that is not handed it (signal receivers writing audit
events). The console's middleware sets it; the audit trail reads it."""

from contextvars import ContextVar

current_request: ContextVar = ContextVar("current_request", default=None)
