"""Error classes that decide what happens to a message: retry it, or park it."""

from __future__ import annotations

import errno

# An MLflow client error that wraps a failed HTTP call reads like this; its cause is not kept.
_MLFLOW_UNREACHABLE = ("failed with exception", "Max retries exceeded", "Connection refused")
# Busy, or full: a full store is an operator's problem that frees up, not a bad message.
_S3_BUSY = {
    "SlowDown",
    "SlowDownRead",
    "SlowDownWrite",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "XMinioStorageFull",
    "XMinioServerNotInitialized",
}
# Disk full and quota exceeded: retried until someone frees space, never parked.
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class TransientError(RuntimeError):
    """Worth retrying with backoff: a service was briefly unreachable."""


class PermanentError(RuntimeError):
    """Will fail the same way every time: park the message in the dead-letter table."""


class IntegrityError(PermanentError):
    """An artifact is not what was recorded (tampering, or corruption): parked, and alerted."""


def integrity_failure(exc: BaseException) -> IntegrityError | None:
    """The IntegrityError behind an exception, if any (it may be wrapped)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, IntegrityError):
            return current
        current = current.__cause__ or current.__context__
    return None


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures of Redis, Postgres, S3, MLflow or HTTP, here or in the causes.

    Everything else is permanent: retrying a bug or bad data only delays the dead letter.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        if isinstance(current, PermanentError):
            return False
        if _is_transient_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout as RequestsTimeout
    from sqlalchemy.exc import DisconnectionError, OperationalError
    from urllib3.exceptions import HTTPError as Urllib3Error

    transient: tuple[type[BaseException], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
        OperationalError,
        DisconnectionError,
        Urllib3Error,
        RequestsConnectionError,
        RequestsTimeout,
    )
    if isinstance(exc, transient):
        return True
    from minio.error import S3Error, ServerError

    if isinstance(exc, ServerError):
        return True
    if isinstance(exc, S3Error):
        return exc.code in _S3_BUSY
    return _is_botocore_transient(exc) or _is_mlflow_transient(exc)


def _is_botocore_transient(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # the slim images (bridge, Airflow) have no boto
        return False
    return isinstance(exc, BotoConnectionError)


def _is_mlflow_transient(exc: BaseException) -> bool:
    if type(exc).__name__ != "MlflowException" and not any(
        cls.__name__ == "MlflowException" for cls in type(exc).__mro__
    ):
        return False
    code = str(getattr(exc, "error_code", ""))
    if code in {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}:
        return True
    message = str(exc)
    return any(marker in message for marker in _MLFLOW_UNREACHABLE)
