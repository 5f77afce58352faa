"""The secured embedded stack, end to end: SASL_SSL (SCRAM-SHA-512) Kafka with ACLs from the
catalog, HDFS permissions, and no password anywhere it can leak.

One secured stack for the run (tests/secure/conftest.py). A sampler reads every process's
command line and environment all through the run (short-lived ones included: spark-submit, the
DAG's task runners, kcat), and the last test scans every file under $CONVEYOR_HOME and Spark's
event log; the passwords are looked for plain, URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, load_catalog, table_uri
from conveyor.delta_rs import read_rows
from conveyor.settings import Settings
from conveyor.stack import security
from conveyor.stack.process import wait_for
from tests.catalogs import catalog_variant, stream_named
from tests.secure.conftest import EVENT_LOG

EVENTS = 3000
# files made to hold a secret: each must be 0600 (relative to $CONVEYOR_HOME)
SECRET_FILES = (
    "security/credentials.json",
    "security/store.password",
    "airflow/passwords.json",
    "security/broker.properties",
    "secrets/kafka-ingest.properties",
)


def _secrets(home: Path) -> dict[str, str]:
    """name -> password: the three principals, the Airflow admin, the keystores."""
    files = security.security_files(home)
    found = {f"kafka:{name}": value for name, value in files.credentials().items()}
    found["airflow:admin"] = next(
        iter(json.loads((home / "airflow/passwords.json").read_text()).values())
    )
    found["keystore"] = files.store_password()
    return found


def _forms(secret: str) -> list[bytes]:
    """The secret as bytes plain, URL-encoded and base64-encoded (the stable middle of its
    encoding at each of the three alignments it can have inside a longer base64 text)."""
    raw = secret.encode()
    forms = {
        raw,
        urllib.parse.quote(secret, safe="").encode(),
        urllib.parse.quote_plus(secret).encode(),
    }
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        forms.add(encoded[4 if shift else 0 : -4])
    return sorted(forms)


class ProcSampler:
    """Reads /proc/*/cmdline and /proc/*/environ of every process, again and again, and
    records any secret found (and which commands it saw, so the scan cannot be vacuous)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.forms = {name: _forms(value) for name, value in secrets.items()}
        self.hits: list[str] = []
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.05)

    def sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            for part in ("cmdline", "environ"):
                try:
                    data = (entry / part).read_bytes()
                except OSError:
                    continue
                if part == "cmdline":
                    self.seen.add(data.replace(b"\0", b" ").decode(errors="replace")[:300])
                for name, forms in self.forms.items():
                    if any(form in data for form in forms):
                        self.hits.append(f"{name} in /proc/{entry.name}/{part}")
        self.samples += 1

    def saw(self, fragment: str) -> bool:
        return any(fragment in command for command in self.seen)


@pytest.fixture(scope="session")
def sampler(stack: dict[str, Any]) -> Iterator[ProcSampler]:
    home = Path(str(stack["home"]))
    secrets = _secrets(home)
    watcher = ProcSampler(secrets)
    # a control: a process holding a password (URL-encoded) in its environment is caught
    bait = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        env={**os.environ, "BAIT": urllib.parse.quote(secrets["kafka:conveyor"], safe="")},
    )
    try:
        watcher.sample()
    finally:
        assert bait.stdin is not None
        bait.stdin.close()
        bait.wait(timeout=30)
    assert f"kafka:conveyor in /proc/{bait.pid}/environ" in watcher.hits, watcher.hits
    watcher.hits.clear()
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture(scope="session")
def catalog(stack: dict[str, Any]) -> Catalog:
    return load_catalog(Path(os.environ["CONVEYOR_CATALOG"]))


OUTPUTS: list[str] = []
"""Everything the CLI printed in this run (messages included), scanned by the last test."""


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    OUTPUTS.append(result.stdout + result.stderr)
    return result


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's error, unwrapped; asserts it failed with one clear line and no trace."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert (
        "Traceback" not in output and "\tat org." not in output and "Exception in" not in output
    ), output
    message = " ".join(result.stderr.split())
    assert message.startswith("error: "), output
    return message


def _silver_ids(settings: Settings, catalog: Catalog, stream: str) -> list[str]:
    uri = table_uri(settings, catalog.stream(stream).table(Layer.SILVER))
    return [row["event_id"] for row in read_rows(uri, ["event_id"])]


def _bronze(settings: Settings, catalog: Catalog, stream: str) -> int:
    """Records in bronze, each Kafka coordinate once."""
    uri = table_uri(settings, catalog.stream(stream).table(Layer.BRONZE))
    coordinates = [(r["partition"], r["offset"]) for r in read_rows(uri, ["partition", "offset"])]
    assert len(coordinates) == len(set(coordinates))
    return len(coordinates)


def _landed(settings: Settings, catalog: Catalog, stream: str) -> int:
    silver = len(_silver_ids(settings, catalog, stream))
    uri = table_uri(settings, catalog.stream(stream).table(Layer.QUARANTINE))
    return silver + len(read_rows(uri, ["kafka_offset"]))


# ---------------------------------------------------------------- the pipeline over SASL_SSL


def test_topics_acls_produce_ingest_and_lag_over_sasl_ssl(
    stack: dict[str, Any], catalog: Catalog, sampler: ProcSampler, tmp_path: Path
) -> None:
    assert stack["kafka_security_protocol"] == "SASL_SSL"
    assert stack["kafka_sasl_mechanism"] == "SCRAM-SHA-512"
    credentials = Path(stack["kafka_credentials_file"])
    assert credentials.stat().st_mode & 0o777 == 0o600
    settings = Settings()
    stream = stream_named(catalog, "clicks")
    topic = catalog.stream(stream).topic.name

    plan = json.loads(_cli("topics", "plan", "--json").stdout)
    assert plan["acls"]["enforced"] is True
    assert f"User:producer may WRITE topic {topic}" in plan["acls"]["missing"]
    assert f"User:conveyor may READ topic {topic}" in plan["acls"]["missing"]
    applied = _cli("topics", "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = json.loads(_cli("topics", "plan", "--json").stdout)
    assert again["acls"]["missing"] == [] and again["has_changes"] is False, again

    produced = _cli("produce", stream, "--count", str(EVENTS), "--bad-fraction", "0.05")
    assert produced.returncode == 0, produced.stdout + produced.stderr
    ingest = _cli("ingest", stream, "--available-now", "--json")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    totals = json.loads(ingest.stdout.strip().splitlines()[-1])
    assert totals["rows_read"] == EVENTS, totals
    # an independent reader (delta-rs) sees every event once, in silver or quarantine
    ids = _silver_ids(settings, catalog, stream)
    assert len(ids) == len(set(ids)) == totals["silver_rows"]
    assert _landed(settings, catalog, stream) == EVENTS
    assert _bronze(settings, catalog, stream) == EVENTS

    # lag 0, by Kafka's own kafka-consumer-groups tool logged in as `conveyor` (Debian's kcat
    # links librdkafka 2.0.2, whose SCRAM a Kafka 4 broker refuses)
    lag = _group_lag(stack, catalog.stream(stream).monitoring_group, tmp_path)
    assert {row["topic"] for row in lag} == {topic}, lag
    assert len(lag) == catalog.stream(stream).topic.partitions, lag
    assert sum(row["end"] for row in lag) == EVENTS, lag
    assert all(row["lag"] == 0 and row["current"] == row["end"] for row in lag), lag


def _group_lag(stack: dict[str, Any], group: str, folder: Path) -> list[dict[str, Any]]:
    """kafka-consumer-groups --describe, its credentials in a 0600 command-config file."""
    from conveyor import jars
    from conveyor.settings import get_settings

    password = json.loads(Path(stack["kafka_credentials_file"]).read_text())["conveyor"]
    config = security.write_secret(
        folder / "client.properties",
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="conveyor" password="{password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={stack['kafka_ca_file']}\n",
    )
    classpath = jars.classpath_dir(get_settings().jars_dir, "kafka") / "*"
    tool = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
    login = ["--bootstrap-server", stack["kafka_bootstrap"], "--command-config", str(config)]
    java = [str(jars.java_binary()), "-Xmx128m", "-cp", str(classpath), tool]
    result = subprocess.run(
        [*java, *login, "--describe", "--group", group],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = []
    for line in result.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 6 and cells[0] == group:
            rows.append(
                {
                    "topic": cells[1],
                    "partition": int(cells[2]),
                    "current": int(cells[3]),
                    "end": int(cells[4]),
                    "lag": int(cells[5]),
                }
            )
    return rows


# ---------------------------------------------------------------- bad input, one clear line


@pytest.fixture(scope="module")
def untouched(stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A catalog whose stream was never ingested: a refused ingest must leave no trace."""
    return catalog_variant(tmp_path_factory.mktemp("untouched"), edit=None)


def _traces(settings: Settings, catalog: Catalog) -> list[str]:
    """The stream's tables and checkpoint folders that exist on HDFS."""
    from conveyor.webhdfs import webhdfs

    found = []
    for stream in catalog.streams.values():
        paths = [f"{settings.lake_path}/{stream.table(layer).path}" for layer in Layer]
        paths.append(f"{settings.checkpoint_path}/{stream.name}")
        for path in paths:
            try:
                webhdfs(settings, path, "GETFILESTATUS")
            except FileNotFoundError:
                continue
            found.append(path)
    return found


def test_a_wrong_password_is_one_line_and_touches_nothing(
    stack: dict[str, Any], untouched: Catalog, tmp_path: Path
) -> None:
    wrong = security.write_secret(
        tmp_path / "wrong.json",
        json.dumps({"admin": "not-it", "conveyor": "not-it", "producer": "not-it"}),
    )
    stream = untouched.stream_names[0]
    env = {"CONVEYOR_KAFKA_CREDENTIALS_FILE": str(wrong), "CONVEYOR_CATALOG": str(untouched.source)}
    message = _one_line(_cli("ingest", stream, "--available-now", env=env))
    assert stack["kafka_bootstrap"] in message, message
    assert "SCRAM-SHA-512" in message and "'conveyor'" in message, message
    assert "refused the login" in message, message
    assert "not-it" not in message
    plan = _one_line(_cli("topics", "plan", env=env))
    assert "'admin'" in plan and "refused the login" in plan, plan
    assert _traces(Settings(), untouched) == []


def test_a_principal_without_the_acl_is_told_which_operation_was_denied(
    stack: dict[str, Any], catalog: Catalog
) -> None:
    stream = stream_named(catalog, "clicks")
    topic = catalog.stream(stream).topic.name
    as_producer = {"CONVEYOR_KAFKA_SASL_USERNAME": "producer"}
    message = _one_line(_cli("ingest", stream, "--available-now", env=as_producer))
    assert f"denied principal 'producer' READ on topic '{topic}'" in message, message
    # and the ingest principal may not write
    message = _one_line(
        _cli("produce", stream, "--count", "1", env={"CONVEYOR_KAFKA_PRODUCE_USERNAME": "conveyor"})
    )
    assert f"denied principal 'conveyor' WRITE on topic '{topic}'" in message, message


def test_plaintext_clients_and_a_foreign_ca_are_refused(
    stack: dict[str, Any], catalog: Catalog, tmp_path: Path
) -> None:
    stream = stream_named(catalog, "clicks")
    plaintext = _one_line(
        _cli(
            "ingest",
            stream,
            "--available-now",
            env={"CONVEYOR_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        )
    )
    assert "closed the connection on a PLAINTEXT request" in plaintext, plaintext
    assert "expects TLS" in plaintext, plaintext
    # kcat, plaintext: no metadata from the TLS listener
    kcat = subprocess.run(
        ["kcat", "-b", stack["kafka_bootstrap"], "-L", "-m", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kcat.returncode != 0, kcat.stdout
    foreign = security.ensure(tmp_path).ca_pem  # another CA, made the same way
    env = {"CONVEYOR_KAFKA_SSL_CAFILE": str(foreign)}
    message = _one_line(_cli("topics", "plan", env=env))
    assert "TLS handshake" in message and str(foreign) in message, message


# ---------------------------------------------------------------- Airflow over SASL_SSL


def test_the_provisioning_and_ingest_dags_run_over_sasl_ssl_with_their_connections(
    stack: dict[str, Any], catalog: Catalog, sampler: ProcSampler
) -> None:
    from conveyor.airflow_api import DONE_STATES, AirflowApi

    settings = Settings()
    stream = stream_named(catalog, "app_logs")
    produced = _cli("produce", stream, "--count", "500")
    assert produced.returncode == 0, produced.stdout + produced.stderr
    api = AirflowApi(stack["airflow_url"], stack["airflow_user"], stack["airflow_password"])
    # the provisioning DAG's hook logs in as admin (conveyor_kafka_admin), the ingest DAG's
    # spark-submit as conveyor (conveyor_kafka_ingest): both from Airflow's database
    runs = {}
    for dag_id in ("conveyor_provision_topics", "conveyor_ingest"):
        wait_for(lambda dag_id=dag_id: api.dag(dag_id), 180, what=f"{dag_id} to be parsed")
        runs[dag_id] = api.trigger(dag_id, {"logical_date": None, "note": "secured stack"})
        api.set_paused(dag_id, False)
    try:
        ended = {
            dag_id: wait_for(
                lambda dag_id=dag_id, run_id=run_id: (
                    (r := api.run(dag_id, run_id))["state"] in DONE_STATES and r
                ),
                900,
                what=f"run {run_id} of {dag_id} to end",
            )
            for dag_id, run_id in runs.items()
        }
    finally:
        for dag_id in runs:
            api.set_paused(dag_id, True)
    assert {d: r["state"] for d, r in ended.items()} == dict.fromkeys(runs, "success"), ended
    assert _bronze(settings, catalog, stream) == 500
    # the Conveyor page's data, as a logged-in user gets it (lag read as admin)
    overview = api.get("/conveyor/api/overview")
    OUTPUTS.append(json.dumps(overview))
    assert stream in OUTPUTS[-1]
    # the sampler watched the DAG's spark-submit come and go
    assert sampler.saw("stream_ingest.py"), "no spark-submit of the DAG was sampled"


# ---------------------------------------------------------------- who may do what


def test_anonymous_callers_are_refused_everywhere_but_health_and_login(
    stack: dict[str, Any],
) -> None:
    base = stack["airflow_url"]
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        spec = json.load(response)
    public = {
        "/api/v2/monitor/health",
        "/api/v2/version",
        "/api/v2/auth/login",
        "/api/v2/auth/logout",
    }
    routes = [
        p for p, ops in spec["paths"].items() if "get" in ops and "{" not in p and p not in public
    ]
    routes += ["/conveyor/", "/conveyor/api/overview"]
    assert len(routes) > 10
    for route in routes:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + route, timeout=30)
        assert refused.value.code in (401, 403), route


def test_hdfs_refuses_another_users_write_to_the_lake(stack: dict[str, Any]) -> None:
    from conveyor.webhdfs import hdfs_user, webhdfs, webhdfs_at

    settings = Settings()
    for path in (settings.lake_path, settings.checkpoint_path):
        status = webhdfs(settings, path, "GETFILESTATUS")["FileStatus"]
        assert (status["owner"], status["permission"]) == (hdfs_user(), "750"), status
        assert status["owner"] != "hdfs"
    with pytest.raises(PermissionError):
        webhdfs_at(
            settings.namenode_http,
            f"{settings.lake_path}/intruder",
            "MKDIRS",
            method="PUT",
            user="mallory",
        )
    with pytest.raises(PermissionError):
        webhdfs_at(settings.namenode_http, "/intruder", "MKDIRS", method="PUT", user="mallory")


# ---------------------------------------------------------------- no secret anywhere (last)


def test_no_password_in_any_process_log_file_or_event_log(
    stack: dict[str, Any], sampler: ProcSampler
) -> None:
    home = Path(str(stack["home"]))
    sampler.sample()  # once more, after everything ran
    assert sampler.samples > 100
    assert sampler.saw("SparkSubmit") or sampler.saw("pyspark"), "no Spark process was sampled"
    assert sampler.hits == [], sampler.hits[:5]
    for relative in SECRET_FILES:
        path = home / relative
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == 0o600, path
    allowed = {home / relative for relative in SECRET_FILES}
    events = list(EVENT_LOG.rglob("*"))
    assert [p for p in events if p.is_file()], f"Spark wrote no event log in {EVENT_LOG}"
    forms = {name: _forms(value) for name, value in _secrets(home).items()}
    leaks = []
    scanned = 0
    for path in [*home.rglob("*"), *events]:
        if not path.is_file() or path in allowed or path.is_symlink():
            continue
        data = path.read_bytes()
        scanned += 1
        for name, variants in forms.items():
            if any(form in data for form in variants):
                leaks.append(f"{name} in {path}")
    # the detector finds what is there: the credentials file holds every Kafka password
    held = (home / "security/credentials.json").read_bytes()
    assert all(any(f in held for f in forms[name]) for name in forms if name.startswith("kafka:"))
    assert scanned > 50
    assert leaks == [], leaks
    said = [
        f"{name} in a CLI output or the page"
        for name, variants in forms.items()
        if any(form.decode() in text for form in variants for text in OUTPUTS)
    ]
    assert len(OUTPUTS) > 10 and said == [], said
    state = (home / "stack.json").read_text()
    assert all(value not in state for value in _secrets(home).values())
