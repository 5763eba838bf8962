#!/bin/sh
# One-shot S3 bootstrap for Kubernetes (the minio-setup Job, image quay.io/minio/mc): the buckets
# the platform uses (as docker/minio/setup.sh makes them for compose), a user of the platform's
# own that may touch only those buckets, and the landing bucket's notification to the bridge.
# Idempotent: every `kubectl apply -k` may run it again.
set -eu

: "${MINIO_ADMIN_USER:?}" "${MINIO_ADMIN_PASSWORD:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${MINIO_ENDPOINT:?}" "${MINIO_NOTIFY_TARGET_ID:?}"
scheme=http
if [ "${MINIO_SECURE:-false}" = "true" ]; then scheme=https; fi
alias=churnops
mc alias set "$alias" "$scheme://$MINIO_ENDPOINT" "$MINIO_ADMIN_USER" "$MINIO_ADMIN_PASSWORD" >/dev/null

resources=""
for bucket in "${MINIO_LANDING_BUCKET:-landing}" "${S3_ARTIFACT_BUCKET:-mlflow}" \
    "${MINIO_MODELS_BUCKET:-models}" "${MINIO_REPORTS_BUCKET:-reports}" \
    "${MINIO_PREDICTIONS_BUCKET:-predictions}"; do
    mc mb --ignore-existing "$alias/$bucket"
    resources="$resources\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\","
done

# The platform's user: every S3 action, on its buckets only (not the MinIO admin's powers).
policy="${TMPDIR:-/tmp}/churnops-policy.json"
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":[%s]}]}\n' \
    "${resources%,}" >"$policy"
mc admin policy create "$alias" churnops "$policy"
mc admin user add "$alias" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
# Attaching twice fails with "already in effect" (no grep in the mc image: shell patterns).
if ! out=$(mc admin policy attach "$alias" churnops --user "$MINIO_ROOT_USER" 2>&1); then
    case "$out" in
        *"already"*) ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi

# `--event put` is s3:ObjectCreated:*, which includes CompleteMultipartUpload (large files).
mc event add "$alias/${MINIO_LANDING_BUCKET:-landing}" \
    "arn:minio:sqs::${MINIO_NOTIFY_TARGET_ID}:redis" --event put --ignore-existing
mc event ls "$alias/${MINIO_LANDING_BUCKET:-landing}"
