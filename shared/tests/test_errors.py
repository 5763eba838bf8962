from __future__ import annotations

import pytest

from churnops_common.errors import PermanentError, TransientError, is_transient


def _chained(outer: Exception, cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        TransientError("x"),
        ConnectionRefusedError("redis"),
        TimeoutError("slow"),
        _chained(RuntimeError("wrapped"), ConnectionResetError("peer")),
    ],
)
def test_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("age"),
        ValueError("bad"),
        PermanentError("x"),
        _chained(PermanentError("no"), ConnectionError("but permanent wins")),
    ],
)
def test_permanent(exc: Exception) -> None:
    assert not is_transient(exc)


def test_library_connection_errors_are_transient() -> None:
    import requests
    from botocore.exceptions import EndpointConnectionError
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    assert is_transient(requests.exceptions.ConnectionError("refused"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://minio:9000"))
    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert is_transient(
        MlflowException(
            "API request to http://mlflow:5000/api/2.0/mlflow/runs/create failed with exception "
            "HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded"
        )
    )
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

    assert is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_transient(MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST))


def test_a_full_disk_or_a_full_store_is_transient() -> None:
    import errno

    from minio.error import S3Error

    def s3(code: str) -> S3Error:
        return S3Error(None, code, "message", "resource", "request", "host")  # type: ignore[arg-type]

    assert is_transient(OSError(errno.ENOSPC, "No space left on device"))
    assert is_transient(_chained(RuntimeError("write failed"), OSError(errno.EDQUOT, "quota")))
    assert is_transient(s3("XMinioStorageFull"))
    assert is_transient(s3("SlowDownWrite"))
    assert not is_transient(OSError(errno.ENAMETOOLONG, "File name too long"))
    assert not is_transient(s3("AccessDenied"))
