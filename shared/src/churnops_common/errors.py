"""Error classes that decide what happens to a message: retry it, or park it."""

from __future__ import annotations


class TransientError(RuntimeError):
    """Worth retrying with backoff: a service was briefly unreachable."""


class PermanentError(RuntimeError):
    """Will fail the same way every time: park the message in the dead-letter table."""


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures of Redis, Postgres, S3 or HTTP; everything else is permanent."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DisconnectionError, OperationalError
    from urllib3.exceptions import HTTPError as Urllib3Error

    transient: tuple[type[BaseException], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
        OperationalError,
        DisconnectionError,
        Urllib3Error,
    )
    if isinstance(exc, transient):
        return True
    from minio.error import S3Error, ServerError

    if isinstance(exc, ServerError):
        return True
    return isinstance(exc, S3Error) and exc.code in {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
    }
