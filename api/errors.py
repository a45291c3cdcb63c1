"""One error shape for every refusal: {"code": ..., "message": ..., "errors": {field: [messages]}}.

Handlers turn ninja's validation errors (400, not 422: bad input is bad input), Django's Http404 and
PermissionDenied, and the domain's refusals into it. Nothing a client sends should reach Django's
500 page: input is validated by the schemas before any query runs. Should a fault of the console's
still raise, the client gets the same shape (code "server_error") and the traceback goes to the log.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from migrations_ui.jobs.batches import BatchRefused
from migrations_ui.jobs.operations import CannotCancel, CannotDecide, Refused

logger = logging.getLogger("django.request")
CODES = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large"}  # fmt: skip
TOO_LARGE = "The request's body is larger than the console accepts (DATA_UPLOAD_MAX_MEMORY_SIZE); send less at once."
UNAUTHENTICATED = "Sign in, or send 'Authorization: Bearer <token>' with a token made at /account/tokens/."


class ErrorOut(Schema):
    code: str
    message: str
    errors: dict[str, list[str]] = {}


# Every operation documents these, so a client (and schemathesis) knows each answer's shape.
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: dict | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code or CODES.get(status, "error")
        self.errors = {field: [str(m) for m in messages] for field, messages in (errors or {}).items()}


def bad_input(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", {field: [message]})


def invalid_form(form) -> ApiError:
    """A page's form refused the input: 400 with its messages per field (__all__: the whole form)."""
    errors = {field: [str(m) for m in messages] for field, messages in form.errors.items()}
    summary = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
    return ApiError(400, f"Invalid input ({summary}).", errors)


def body(code: str, message: str, errors: dict | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


def _field(loc) -> str:
    # ("query", "limit") -> "limit"; ("body", "payload", "vhds", 0, "source") -> "vhds.0.source"
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "payload", "header", "cookie", "form")]
    return ".".join(parts) or "__all__"


def install(api) -> None:
    def respond(request, status: int, payload: dict):
        return api.create_response(request, payload, status=status)

    @api.exception_handler(ApiError)
    def api_error(request, exc: ApiError):
        return respond(request, exc.status, body(exc.code, exc.message, exc.errors))

    @api.exception_handler(ValidationError)
    def validation(request, exc: ValidationError):
        errors: dict[str, list[str]] = {}
        for error in exc.errors:
            errors.setdefault(_field(error.get("loc", ())), []).append(str(error.get("msg", "invalid")))
        summary = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
        return respond(request, 400, body("invalid", f"Invalid input ({summary}).", errors))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        from audit.log import record_refusal

        bearer = request.headers.get("Authorization", "")[:7].lower() == "bearer "
        record_refusal("token_refused" if bearer else "anonymous_refused", request)
        return respond(request, 401, body("unauthenticated", UNAUTHENTICATED))

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        return respond(request, exc.status_code, body(CODES.get(exc.status_code, "error"), exc.message))

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, body("not_found", str(exc) or "Not found."))

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return respond(request, 403, body("forbidden", str(exc) or "Your role does not allow this."))

    @api.exception_handler(Refused)
    def refused(request, exc: Refused):
        # Field errors keyed by rule id: a script can tell which rule stands in the way.
        errors: dict[str, list[str]] = {}
        for finding in exc.findings:
            errors.setdefault(finding.rule, []).append(finding.message)
        # create_job's own checks of typed input (paths, options) are bad input, not a rule's refusal.
        if set(errors) == {"invalid-input"}:
            return respond(request, 400, body("invalid", str(exc), {"input": errors["invalid-input"]}))
        return respond(request, 409, body("refused", str(exc), errors))

    @api.exception_handler(CannotCancel)
    def cannot_cancel(request, exc):
        return respond(request, 409, body("conflict", str(exc)))

    @api.exception_handler(CannotDecide)
    def cannot_decide(request, exc):
        # The job left state unknown between the check and the decision (a recovery's answer).
        return respond(request, 409, body("conflict", str(exc)))

    @api.exception_handler(BatchRefused)
    def batch_refused(request, exc):
        return respond(request, 409, body("refused", str(exc)))

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request, exc):
        # Raised while the body is read: over Django's size limit (413) or with too many fields.
        if isinstance(exc, RequestDataTooBig):
            return respond(request, 413, body("too_large", TOO_LARGE))
        return respond(request, 400, body("invalid", str(exc) or "Bad request."))

    @api.exception_handler(Exception)
    def server_error(request, exc):
        # Django's own 500 page is HTML, which a script cannot read; the log keeps the traceback.
        logger.error("Internal Server Error: %s", request.path, exc_info=exc)
        return respond(request, 500, body("server_error", "The console failed on this request; its log has the cause."))
