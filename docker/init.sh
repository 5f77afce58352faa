#!/usr/bin/env bash
# One-shot provisioning of the docker-compose stack; every step is idempotent, so `docker compose
# up` may run it again at any time. Endpoints come from the CONVEYOR_* variables compose sets.
#   1. Airflow's secrets (generated once, kept in the airflow-home volume, read via *_CMD)
#   2. Airflow's metadata database (airflow db migrate)
#   3. Airflow connections, one per role (conveyor.connections: conveyor_kafka_admin,
#      conveyor_kafka_ingest, conveyor_lake, conveyor_spark; added when missing, edits are kept)
#   4. the lake and checkpoint roots on HDFS (owned by Conveyor's user, 750, when permissions are on)
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

# straight into the metadata database (passwords encrypted with the fernet key); never as
# `airflow connections add` arguments, which any process could read from /proc
python - <<'PY'
from conveyor.connections import airflow_connections, register
from conveyor.settings import get_settings

for line in register(airflow_connections(get_settings()), replace=False):
    print(f"init: {line}")
PY

# with HDFS permissions on (the secure override), the superuser makes them and hands them over
python - <<'PY'
from conveyor.lake import hdfs_user
from conveyor.settings import get_settings
from conveyor.stack.components import hdfs_mkdirs

settings = get_settings()
for path in (settings.lake_path, settings.checkpoint_path):
    if settings.hdfs_superuser:
        hdfs_mkdirs(settings.namenode_http, path, settings.hdfs_superuser, owner=hdfs_user())
    else:
        hdfs_mkdirs(settings.namenode_http, path, hdfs_user())
    print(f"init: {settings.fs_uri}{path} ready")
PY

conveyor topics apply
echo "init: done"
