"""The SDK's one error type, built from the server's JSON error bodies."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import httpx

# What a status means when the body names no code (a proxy's HTML page, an empty body).
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "INVALID_STATE",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "TEMPORARILY_UNAVAILABLE",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "TEMPORARILY_UNAVAILABLE",
}


class FlywheelError(Exception):
    """An error from the Flywheel server (or from the SDK before a request is sent).

    Attributes:
        code: The server's error code (``PERMISSION_DENIED``, ``RESOURCE_DOES_NOT_EXIST``, ``INVALID_PARAMETER_VALUE``, …),
            ``UNAVAILABLE`` when the server cannot be reached, or a pipeline's final status (``FAILED``, ``CANCELED``,
            ``TERMINATED``, ``TIMED_OUT``) from :func:`flywheel.wait`.
        message: What went wrong, as the server said it.
        status: The HTTP status, or ``None`` when no response came back.
        field: The request field the server blamed, when it named one.
        details: The decoded body (a pipeline's status for pipeline failures), when there is one.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None, *, field: Optional[str] = None, details: Any = None) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.field = field
        self.details = details
        super().__init__(f"{code}{f' (HTTP {status})' if status else ''}: {message}")

    def __reduce__(self) -> Tuple[Any, ...]:  # keeps the error picklable (multiprocessing, pytest-xdist)
        return (_rebuild, (self.code, self.message, self.status, self.field, self.details))


def _rebuild(code: str, message: str, status: Optional[int], field: Optional[str], details: Any) -> FlywheelError:
    return FlywheelError(code, message, status, field=field, details=details)


class FlywheelTimeout(FlywheelError, TimeoutError):
    """:func:`flywheel.wait` gave up before the pipeline ended (code ``DEADLINE_EXCEEDED``); the pipeline runs on."""


def error_from_response(response: httpx.Response) -> FlywheelError:
    """The error a non-2xx response carries: Flywheel's ``{"error": {code, message, field}}`` or MLflow's ``{error_code, message}``."""
    status = response.status_code
    fallback_code = _STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict) and (nested.get("code") or nested.get("message")):
            return FlywheelError(str(nested.get("code") or fallback_code), str(nested.get("message") or response.reason_phrase), status,
                                 field=nested.get("field"), details=body)
        if body.get("error_code") or body.get("message"):
            return FlywheelError(str(body.get("error_code") or fallback_code), str(body.get("message") or response.reason_phrase), status, details=body)
        if isinstance(nested, str):
            return FlywheelError(fallback_code, nested, status, details=body)
    text = (response.text or "").strip()
    message = text[:500] if text else response.reason_phrase or f"HTTP {status}"
    try:
        where = f"{response.request.method} {response.request.url.path}: "
    except RuntimeError:  # a response built without a request
        where = ""
    return FlywheelError(fallback_code, f"{where}{message}", status)
