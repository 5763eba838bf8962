#!/bin/sh
# One-shot MinIO bootstrap (the minio-setup service, image quay.io/minio/mc): the buckets the
# platform uses, and the notification that feeds the bridge. Idempotent: safe on every `up`.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MINIO_NOTIFY_TARGET_ID:?}"
alias=churnops
mc alias set "$alias" "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

for bucket in "${MINIO_LANDING_BUCKET:-landing}" "${S3_ARTIFACT_BUCKET:-mlflow}" \
    "${MINIO_MODELS_BUCKET:-models}" "${MINIO_REPORTS_BUCKET:-reports}" \
    "${MINIO_PREDICTIONS_BUCKET:-predictions}"; do
    mc mb --ignore-existing "$alias/$bucket"
done

# `--event put` is s3:ObjectCreated:*, which includes CompleteMultipartUpload (large files).
# The target is the Redis one configured on the minio service (MINIO_NOTIFY_REDIS_*_<ID>).
mc event add "$alias/${MINIO_LANDING_BUCKET:-landing}" \
    "arn:minio:sqs::${MINIO_NOTIFY_TARGET_ID}:redis" --event put --ignore-existing
mc event ls "$alias/${MINIO_LANDING_BUCKET:-landing}"
