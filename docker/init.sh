#!/usr/bin/env bash
# One-shot provisioning of the docker-compose stack; every step is idempotent, so `docker compose
# up` may run it again at any time. Endpoints come from the CONVEYOR_* variables compose sets.
#   1. Airflow's secrets (generated once, kept in the airflow-home volume, read via *_CMD)
#   2. Airflow's metadata database (airflow db migrate)
#   3. Airflow connections conveyor_kafka, conveyor_spark and conveyor_lake (added when missing;
#      edits are kept)
#   4. the lake and checkpoint roots on HDFS
#   5. Kafka topics from the catalog (conveyor topics apply)
set -euo pipefail

secrets="${AIRFLOW_HOME}/secrets"
mkdir -p "$secrets"
umask 077
new_secret() {
    [ -s "$secrets/$1" ] || python -c "$2" > "$secrets/$1"
}
new_secret jwt_secret 'import secrets; print(secrets.token_urlsafe(32))'
new_secret api_secret 'import secrets; print(secrets.token_urlsafe(32))'
new_secret fernet_key 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'
echo "init: Airflow secrets in $secrets"

airflow db migrate
echo "init: Airflow metadata database migrated"

add_connection() {
    if airflow connections get "$1" >/dev/null 2>&1; then
        echo "init: connection $1 exists (left as it is)"
    else
        airflow connections add "$1" --conn-json "$2"
    fi
}
add_connection conveyor_kafka \
    "{\"conn_type\": \"kafka\", \"extra\": {\"bootstrap.servers\": \"${CONVEYOR_KAFKA_BOOTSTRAP}\"}}"
add_connection conveyor_spark \
    "{\"conn_type\": \"spark\", \"host\": \"${CONVEYOR_SPARK_MASTER}\"}"
add_connection conveyor_lake "$(python -c '
import json
from conveyor.settings import get_settings
s = get_settings()
print(json.dumps({"conn_type": "hdfs", "host": s.fs_uri,
                  "extra": {"lake_path": s.lake_path, "checkpoint_path": s.checkpoint_path}}))
')"

python - <<'PY'
from conveyor.lake import webhdfs
from conveyor.settings import get_settings

settings = get_settings()
for path in (settings.lake_path, settings.checkpoint_path):
    webhdfs(settings, path, "MKDIRS", method="PUT")
    print(f"init: {settings.fs_uri}{path} ready")
PY

conveyor topics apply
echo "init: done"
