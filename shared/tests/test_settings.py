from __future__ import annotations

import pytest
from pydantic import SecretStr

from churnops_common.settings import ConfigError, Settings, get_settings


def test_embedded_is_the_default_and_needs_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURNOPS_MODE", raising=False)
    settings = get_settings()
    assert settings.churnops_mode == "embedded"
    assert settings.monitoring_url().startswith("sqlite:///")
    assert settings.psi_threshold == 0.2
    assert settings.baseline_share == 0.2


def test_stack_mode_refuses_missing_and_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURNOPS_MODE", "stack")
    monkeypatch.setenv("MINIO_ROOT_USER", "minioadmin")
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", "a-real-long-secret")
    with pytest.raises(ConfigError) as err:
        get_settings()
    message = str(err.value)
    assert "POSTGRES_PASSWORD" in message
    assert "MINIO_ROOT_USER" in message
    assert "MINIO_ROOT_PASSWORD" not in message
    assert "a-real-long-secret" not in message


def test_stack_mode_with_real_secrets_builds_postgres_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CHURNOPS_MODE": "stack",
        "POSTGRES_PASSWORD": "s3cr3t-pg",
        "POSTGRES_HOST": "postgres",
        "MINIO_ROOT_USER": "churnops",
        "MINIO_ROOT_PASSWORD": "s3cr3t-minio",
    }.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert settings.monitoring_url().startswith("postgresql+psycopg://churnops:")
    assert "@postgres:5432/churnops" in settings.monitoring_url()
    assert "s3cr3t" not in repr(settings)


def test_every_deployment_variable_is_a_setting() -> None:
    """The variables compose, .env.example and the manifests set are all settings."""
    fields = {name.lower() for name in Settings.model_fields} | {
        (f.alias or "").lower() for f in Settings.model_fields.values()
    }
    for variable in (
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "MLFLOW_POSTGRES_DB",
        "AIRFLOW__CORE__FERNET_KEY",
        "_AIRFLOW_WWW_USER_USERNAME",
        "_AIRFLOW_WWW_USER_PASSWORD",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_S3_ENDPOINT_URL",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "S3_ARTIFACT_BUCKET",
        "MINIO_MODELS_BUCKET",
        "MINIO_REPORTS_BUCKET",
        "MINIO_PREDICTIONS_BUCKET",
        "TARGET_COLUMN",
        "ID_COLUMN",
        "OPTUNA_N_TRIALS",
        "PSI_THRESHOLD",
        "PR_AUC_SHADOW_THRESHOLD",
        "BASELINE_SHARE",
    ):
        assert variable.lower() in fields, variable


def test_env_example_documents_every_deployment_variable() -> None:
    from pathlib import Path

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for variable in (
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "PSI_THRESHOLD",
        "BASELINE_SHARE",
        "AIRFLOW__CORE__FERNET_KEY",
        "MLFLOW_S3_ENDPOINT_URL",
    ):
        assert f"{variable}=" in example


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("BASELINE_SHARE", "1.5")
    with pytest.raises(ValidationError, match="baseline_share"):
        Settings()


def test_services_and_drop_use_their_own_s3_users() -> None:
    settings = Settings(
        minio_root_user="root",
        minio_root_password="root-secret",  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )
    assert settings.s3_credentials() == settings.upload_credentials() == ("root", "root-secret")
    scoped = settings.model_copy(
        update={
            "minio_service_user": "svc",
            "minio_service_password": SecretStr("svc-secret"),
            "minio_upload_user": "up",
            "minio_upload_password": SecretStr("up-secret"),
        }
    )
    assert scoped.s3_credentials() == ("svc", "svc-secret")
    assert scoped.upload_credentials() == ("up", "up-secret")
    stack = scoped.model_copy(
        update={"churnops_mode": "stack", "postgres_password": SecretStr("pg-long-secret")}
    )
    assert stack.missing_stack_secrets() == []
    assert (
        "MINIO_SERVICE_PASSWORD"
        in stack.model_copy(
            update={"minio_service_password": SecretStr("")}
        ).missing_stack_secrets()
    )
