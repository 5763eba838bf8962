"""Point MLflow at the right tracking server and artifact store for the mode we run in."""

from __future__ import annotations

import os

from churnops_common.settings import Settings


def configure_mlflow(settings: Settings) -> str:
    """Set the tracking URI (and S3 credentials for artifacts in stack mode); returns the URI."""
    import mlflow

    uri = settings.mlflow_uri()
    if not settings.is_stack:
        settings.churnops_home.mkdir(parents=True, exist_ok=True)
        # Embedded: artifacts under CHURNOPS_HOME, beside the SQLite tracking file.
        os.environ.setdefault("MLFLOW_ARTIFACT_ROOT", str(settings.churnops_home / "mlruns"))
    if settings.mlflow_s3_endpoint_url:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.mlflow_s3_endpoint_url
        os.environ.setdefault("AWS_ACCESS_KEY_ID", settings.minio_root_user)
        os.environ.setdefault(
            "AWS_SECRET_ACCESS_KEY", settings.minio_root_password.get_secret_value()
        )
    mlflow.set_tracking_uri(uri)
    return uri
