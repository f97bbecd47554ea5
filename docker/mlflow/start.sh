#!/bin/sh
# Start the MLflow server with basic-auth from environment variables alone. MLflow reads the auth store's database
# URI only from an ini file, so this writes one (readable by this user only) and points MLFLOW_AUTH_CONFIG_PATH at
# it. Required: MLFLOW_BACKEND_STORE_URI, MLFLOW_AUTH_DATABASE_URI, MLFLOW_ARTIFACTS_DESTINATION,
# MLFLOW_AUTH_ADMIN_PASSWORD (first start only), MLFLOW_FLASK_SERVER_SECRET_KEY; for s3:// artifacts also
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for MinIO, MLFLOW_S3_ENDPOINT_URL. It listens on 127.0.0.1 unless
# MLFLOW_HOST says otherwise (a container sets MLFLOW_HOST=0.0.0.0 and publishes the port on loopback; a server
# machine puts a TLS proxy in front, or sets MLFLOW_HOST to the address clients reach).
set -eu
: "${MLFLOW_BACKEND_STORE_URI:?}" "${MLFLOW_AUTH_DATABASE_URI:?}" "${MLFLOW_ARTIFACTS_DESTINATION:?}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?}"
config="${MLFLOW_AUTH_CONFIG_DIR:-$HOME}/basic_auth.ini"
umask 077
cat > "$config" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# Each uncached password check is a deliberately slow hash; cache a verified one for a minute.
auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_TTL_SECONDS:-60}
INI
export MLFLOW_AUTH_CONFIG_PATH="$config"
exec mlflow server --app-name basic-auth \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" --workers "${MLFLOW_WORKERS:-2}" \
  ${MLFLOW_ALLOWED_HOSTS:+--allowed-hosts "$MLFLOW_ALLOWED_HOSTS"} \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
