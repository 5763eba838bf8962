#!/bin/sh
# One-shot MinIO bootstrap (the minio-setup service, image quay.io/minio/mc): the buckets the
# platform uses, the notification that feeds the bridge, and two least-privilege users:
#   - the services' user: read/write on the platform's buckets, nothing else (no admin);
#   - the upload user (`churnops drop`): put objects into the landing bucket, nothing else.
# The root key stays here and with MinIO. Idempotent: safe on every `up`.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${MINIO_NOTIFY_TARGET_ID:?}"
: "${MINIO_SERVICE_USER:?}" "${MINIO_SERVICE_PASSWORD:?}"
: "${MINIO_UPLOAD_USER:?}" "${MINIO_UPLOAD_PASSWORD:?}"
alias=churnops
mc alias set "$alias" "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

landing="${MINIO_LANDING_BUCKET:-landing}"
for bucket in "${MINIO_LANDING_BUCKET:-landing}" "${S3_ARTIFACT_BUCKET:-mlflow}" \
    "${MINIO_MODELS_BUCKET:-models}" "${MINIO_REPORTS_BUCKET:-reports}" \
    "${MINIO_PREDICTIONS_BUCKET:-predictions}"; do
    mc mb --ignore-existing "$alias/$bucket"
done

# `--event put` is s3:ObjectCreated:*, which includes CompleteMultipartUpload (large files).
# The target is the Redis one configured on the minio service (MINIO_NOTIFY_REDIS_*_<ID>).
mc event add "$alias/$landing" \
    "arn:minio:sqs::${MINIO_NOTIFY_TARGET_ID}:redis" --event put --ignore-existing
mc event ls "$alias/$landing"

# --- least-privilege users ---------------------------------------------------------------------
policies=$(mktemp -d)
resources=""
for bucket in "${MINIO_LANDING_BUCKET:-landing}" "${S3_ARTIFACT_BUCKET:-mlflow}" \
    "${MINIO_MODELS_BUCKET:-models}" "${MINIO_REPORTS_BUCKET:-reports}" \
    "${MINIO_PREDICTIONS_BUCKET:-predictions}"; do
    resources="$resources\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\","
done
cat > "$policies/services.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads",
             "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
             "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
  "Resource": [${resources%,}]}]}
JSON
cat > "$policies/upload.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
  "Resource": ["arn:aws:s3:::$landing/*"]}]}
JSON

# `user add` on an existing user sets its secret again; `policy create` replaces the document.
grant() { # user secret policy-name policy-file
    mc admin user add "$alias" "$1" "$2" >/dev/null
    mc admin policy create "$alias" "$3" "$4"
    # Attaching a policy the user already has is an error: check first.
    if ! mc admin user info "$alias" "$1" --json | grep -q "\"$3\""; then
        mc admin policy attach "$alias" "$3" --user "$1"
    fi
}
grant "$MINIO_SERVICE_USER" "$MINIO_SERVICE_PASSWORD" churnops-services "$policies/services.json"
grant "$MINIO_UPLOAD_USER" "$MINIO_UPLOAD_PASSWORD" churnops-upload "$policies/upload.json"
rm -rf "$policies"
