"""docker-compose.yml, the Conveyor image and docker/config, checked without a Docker engine.

The compose file must be valid Compose, wire health-gated start order, pin every image to the
versions the project locks, mount only files that exist, and hand Conveyor only settings it
reads. docker/config must be a fresh render of the templates the embedded stack uses.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from string import Template
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from typer.testing import CliRunner

from conveyor import config_targets
from conveyor.commands import config as config_command
from conveyor.config_targets import COMPOSE, compose_files, spark_defaults, stale_files
from conveyor.settings import Settings
from conveyor.spark.session import spark_conf
from conveyor.stack import change_capture, components
from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
CONFIG_DIR = REPO / "docker" / "config"
SCHEMA = REPO / "tests" / "data" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
CONVEYOR_IMAGE = "conveyor"

# Endpoints a container cannot take from an embedded stack's state file: compose must set them.
ENDPOINT_VARIABLES = (
    "CONVEYOR_KAFKA_BOOTSTRAP",
    "CONVEYOR_HDFS_URI",
    "CONVEYOR_WEBHDFS_URL",
    "CONVEYOR_AIRFLOW_URL",
    "CONVEYOR_SPARK_MASTER",
    # the `cdc` profile's (unused without it)
    "CONVEYOR_CONNECT_URL",
    "CONVEYOR_POSTGRES_HOST",
    "CONVEYOR_POSTGRES_PORT",
    "CONVEYOR_POSTGRES_DATABASE",
    "CONVEYOR_POSTGRES_USER",
    "CONVEYOR_POSTGRES_PASSWORD_FILE",
)
CDC_SERVICES = {"cdc-postgres", "connect"}
# Template placeholders that may differ between the embedded stack and compose: hosts, ports,
# data paths (and the HTTP user, an identity of the host). Anything else must be shared.
PER_HOST_PLACEHOLDERS = {
    "bind_host",
    "advertised_host",
    "controller_host",
    "namenode_host",
    "datanode_host",
    "broker_port",
    "controller_port",
    "namenode_port",
    "namenode_http_port",
    "datanode_port",
    "datanode_http_port",
    "datanode_ipc_port",
    "data_dir",
    "user",
    "fs_uri",
    "spark_jars",
    # the topology: one node in compose, one or three on the embedded stack
    "node_id",
    "quorum_voters",
    "replication",
    "internal_min_isr",
    # plaintext or secured (`stack up --secure`, the compose `secure` profile)
    "client_listener",
    "controller_protocol",
    "permissions",
    # Kafka Connect: its brokers, REST port and plugin folder
    "bootstrap",
    "rest_port",
    "plugin_path",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _jvm_versions() -> dict[str, str]:
    """artifact id -> version, over every classpath of jvm/artifacts.toml."""
    raw = tomllib.loads((REPO / "jvm" / "artifacts.toml").read_text())
    versions = {}
    for table in raw.values():
        for coordinate in table["artifacts"]:
            _, artifact, version = coordinate.split(":")
            versions[artifact] = version
    return versions


def _image_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    return (name, tag) if name and "/" not in tag else (image, "")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _dockerfile_env() -> dict[str, str]:
    """ENV of the runtime stage (the last FROM)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    runtime = text.split("\nFROM ")[-1]
    env = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def _runs_conveyor(service: dict[str, Any]) -> bool:
    """Services whose processes run Conveyor's Python code (Airflow and the init service)."""
    command = service.get("command") or []
    words = command if isinstance(command, list) else command.split()
    return _image_tag(service["image"])[0] == CONVEYOR_IMAGE and "spark-class" not in words


# ---------------------------------------------------------------- the compose file itself


def test_schema_is_the_noted_copy() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert SCHEMA_SHA256 in (REPO / "tests" / "data" / "README.md").read_text()


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert [e.message for e in validator.iter_errors(compose)] == []

    # the check is live: a misspelt key or an unknown start condition is rejected
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["healthchek"] = broken["services"]["kafka"].pop("healthcheck")
    broken["services"]["datanode"]["depends_on"]["namenode"]["condition"] = "service_happy"
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "healthchek" in messages
    assert "service_happy" in messages


def test_the_stack_has_every_component(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "postgres",
        "kafka",
        "namenode",
        "datanode",
        "spark-master",
        "spark-worker",
        "init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        *CDC_SERVICES,
    }
    commands = {name: " ".join(map(str, s.get("command") or [])) for name, s in services.items()}
    for part in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert commands[f"airflow-{part}"].startswith(f"airflow {part}")
    assert "org.apache.spark.deploy.master.Master" in commands["spark-master"]
    assert "org.apache.spark.deploy.worker.Worker" in commands["spark-worker"]
    assert commands["spark-worker"].endswith(COMPOSE.settings().spark_master)
    assert services["init"]["restart"] == "no"


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check.get("test"), f"{name}'s healthcheck has no test"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_start_order_waits_on_health(services: dict[str, dict[str, Any]]) -> None:
    one_shot = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"init"}
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, rule in depends.items():
            wanted = "service_completed_successfully" if other in one_shot else "service_healthy"
            assert rule.get("condition") == wanted, f"{name} -> {other}"
    # Airflow starts only after init provisioned it; init only after what it provisions is up
    for part in ("api-server", "scheduler", "dag-processor", "triggerer"):
        assert "init" in services[f"airflow-{part}"]["depends_on"]
    assert {"postgres", "kafka", "datanode"} <= set(services["init"]["depends_on"])


def test_every_image_is_pinned_and_official(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        _repo, tag = _image_tag(image)
        assert tag, f"{name}: image {image} has no tag"
        assert tag != "latest" and re.match(r"^\d+\.\d+", tag), f"{name}: {image} is not pinned"
        assert "bitnami" not in image.lower(), f"{name}: {image}"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ARG PYTHON_IMAGE="):
            _, tag = _image_tag(line.split("=", 1)[1])
            assert re.match(r"^\d+\.\d+\.\d+-", tag), line


def test_image_versions_equal_the_project_locks(services: dict[str, dict[str, Any]]) -> None:
    jvm = _jvm_versions()
    assert services["kafka"]["image"] == f"apache/kafka:{jvm['kafka_2.13']}"
    # Connect runs Kafka's own worker: the broker's image, the connect-runtime version
    assert services["connect"]["image"] == services["kafka"]["image"]
    assert jvm["connect-runtime"] == jvm["kafka_2.13"]
    for name in ("namenode", "datanode"):
        assert services[name]["image"] == f"apache/hadoop:{jvm['hadoop-hdfs']}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        if _image_tag(service["image"])[0] == CONVEYOR_IMAGE:
            assert service["image"] == f"{CONVEYOR_IMAGE}:{version}", name
            assert service["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}, name


def test_every_mounted_file_exists_and_every_volume_is_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    assert _mounted_volumes(services, declared) == declared


def _mounted_volumes(services: dict[str, dict[str, Any]], declared: set[str]) -> set[str]:
    """The named volumes services mount; asserts every mounted file exists and every named
    volume is declared."""
    used = set()
    for name, service in services.items():
        for mount in service.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    return used


def test_stateful_services_keep_their_data_in_named_volumes(
    services: dict[str, dict[str, Any]],
) -> None:
    data = {
        "postgres": "/var/lib/postgresql/data",
        "kafka": COMPOSE.kafka_data_dir,
        "namenode": COMPOSE.hdfs_data_dir,
        "datanode": COMPOSE.hdfs_data_dir,
        "airflow-scheduler": "/opt/airflow",
        "cdc-postgres": "/var/lib/postgresql/data",
    }
    for name, target in data.items():
        mounts = [m.split(":") for m in services[name]["volumes"]]
        assert any(not src.startswith(".") and dst == target for src, dst, *_ in mounts), name


def test_published_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    published: dict[tuple[str, str], str] = {}
    for name, service in services.items():
        for port in service.get("ports") or []:
            parts = str(port).split(":")
            assert len(parts) == 3, f"{name}: publish {port} on an explicit host address"
            host = (parts[0], parts[1])
            assert host not in published, f"{name} and {published[host]} both publish {host}"
            published[host] = name
    assert ("127.0.0.1", str(COMPOSE.airflow_port)) in published


# ---------------------------------------------------------------- settings and Airflow config


def test_conveyor_variables_are_settings_conveyor_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    fields = set(Settings.model_fields)
    variables = dict(_dockerfile_env())
    for service in services.values():
        variables.update(_environment(service))
    conveyor_vars = {k for k in variables if k.startswith("CONVEYOR_")}
    assert conveyor_vars
    for name in conveyor_vars:
        assert name.removeprefix("CONVEYOR_").lower() in fields, f"{name} is not a setting"


def test_services_running_conveyor_set_every_endpoint(
    services: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = {n for n, s in services.items() if _runs_conveyor(s)}
    assert running == {
        "init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    for name in running:
        env = {**_dockerfile_env(), **_environment(services[name])}
        for variable in ENDPOINT_VARIABLES:
            assert env.get(variable) == COMPOSE.endpoints()[variable], f"{name}: {variable}"
        # what the container's Settings sees, with no embedded stack state to fall back on
        for key in [k for k in os.environ if k.startswith("CONVEYOR_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("CONVEYOR_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "empty-home"))
        seen = Settings()
        assert seen.kafka_servers == "kafka:9092"
        assert seen.fs_uri == "hdfs://namenode:8020"
        assert seen.namenode_http == "http://namenode:9870"
        assert seen.airflow_api == "http://airflow-api-server:8080"
        assert seen.spark_master == "spark://spark-master:7077"
        assert seen.jars_dir == Path(COMPOSE.jars_dir)
        assert seen.connect_rest == "http://connect:8083"
        assert seen.postgres_password_file == Path("/etc/conveyor/cdc-secrets/postgres-password")


def test_image_paths_in_settings_are_copied_into_the_image() -> None:
    text = DOCKERFILE.read_text()
    copied = set(re.findall(r"^COPY .* (/\S+)$", text, flags=re.MULTILINE))
    env = _dockerfile_env()
    for variable in ("CATALOG", "DAGS_FOLDER", "PLUGINS_FOLDER", "JOBS_FOLDER"):
        assert env[f"CONVEYOR_{variable}"] in copied, variable
    assert env["CONVEYOR_JARS_DIR"] == COMPOSE.jars_dir
    assert f"COPY --from=build {COMPOSE.jars_dir} {COMPOSE.jars_dir}" in text
    assert env["CONVEYOR_JVM_ARTIFACTS_FILE"] == "/opt/conveyor/jvm/artifacts.toml"


def test_airflow_variables_name_real_options(services: dict[str, dict[str, Any]]) -> None:
    from airflow.configuration import conf

    sensitive = set(conf.sensitive_config_values)
    for name, service in services.items():
        for variable in _environment(service):
            match = re.fullmatch(r"AIRFLOW__([A-Z_]+?)__([A-Z_]+)", variable)
            if not match:
                continue
            section, key = match.group(1).lower(), match.group(2).lower()
            if key.endswith("_cmd"):
                key = key.removesuffix("_cmd")
                assert (section, key) in sensitive, f"{name}: {variable} cannot be a command"
            options = conf.configuration_description.get(section, {}).get("options", {})
            assert key in options, f"{name}: {variable} is no Airflow option"


def test_init_provisions_the_connections_the_dags_use() -> None:
    from conveyor import connections

    script = (REPO / "docker" / "init.sh").read_text()
    subprocess.run(["bash", "-n", str(REPO / "docker" / "init.sh")], check=True)
    # the ids come from the one module, never spelled out in the DAGs or the plugin
    assert "airflow_connections(get_settings())" in script
    for folder in ("dags", "plugins"):
        for source in (REPO / folder).rglob("*.py"):
            spelled = re.findall(r'"(conveyor_(?:kafka|lake|spark)\w*)"', source.read_text())
            assert spelled == [], (source, spelled)
    assert "airflow db migrate" in script
    assert "conveyor topics apply" in script
    settings = Settings(
        kafka_bootstrap="kafka:9092", hdfs_uri="hdfs://namenode:8020", webhdfs_url="http://nn:9870"
    )
    assert set(connections.airflow_connections(settings)) == set(connections.ALL)


# ---------------------------------------------------------------- the image


def test_dockerfile_installs_exactly_the_locks() -> None:
    text = DOCKERFILE.read_text()
    lock = _lock()
    args = dict(re.findall(r"^ARG (\w+)_VERSION=(\S+)$", text, flags=re.MULTILINE))
    assert args, "the Dockerfile states the versions it expects"
    names = {
        "PYSPARK": "pyspark",
        "PYSPARK_CLIENT": "pyspark-client",
        "AIRFLOW": "apache-airflow",
        "DELTA_SPARK": "delta-spark",
        "KAFKA_PYTHON": "kafka-python",
    }
    assert set(args) == set(names)
    for arg, version in args.items():
        assert lock[names[arg]] == version, f"{arg}_VERSION={version}, lock has {lock[names[arg]]}"
    # the psycopg2 / asyncpg drivers Airflow needs for Postgres come from the same lock
    assert {"psycopg2-binary", "asyncpg"} <= set(lock)
    assert "pip install -r /build/requirements.lock" in text
    assert "pip install --no-deps /build" in text
    assert "COPY jvm/artifacts.toml /opt/conveyor/jvm/artifacts.toml" in text
    assert re.search(
        r"CONVEYOR_JVM_ARTIFACTS_FILE=/opt/conveyor/jvm/artifacts.toml\s+conveyor jars",
        text.replace("\\\n", " "),
    )
    python = re.search(r"python:(\d+)\.(\d+)\.", text)
    assert python and (int(python[1]), int(python[2])) == sys.version_info[:2]


def test_dockerfile_copies_only_what_the_build_context_sends() -> None:
    ignore = (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert "*" in ignore
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources = [w for w in line.split()[1:-1] if not w.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), line
                assert any(source == a or source.startswith(a + "/") for a in allowed), (
                    f"{source} is excluded by Dockerfile.dockerignore"
                )


# ---------------------------------------------------------------- rendered configuration


def test_committed_config_is_a_fresh_render() -> None:
    files = compose_files()
    assert stale_files(files, CONFIG_DIR) == []
    committed = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("*") if p.is_file()}
    assert committed == {f.path for f in files}


def test_compose_mounts_every_rendered_file(services: dict[str, dict[str, Any]]) -> None:
    override = yaml.safe_load((REPO / "docker-compose.secure.yml").read_text())["services"]
    sources = {
        m.split(":")[0].removeprefix("./")
        for s in [*services.values(), *override.values()]
        for m in s.get("volumes") or []
    }
    for item in compose_files():
        path = f"docker/config/{item.path}"
        assert any(path == s or path.startswith(s + "/") for s in sources), path


def _template_pattern(name: str) -> tuple[re.Pattern[str], set[str]]:
    """A regex that matches exactly the renders of a template, capturing each placeholder."""
    text = (REPO / "src/conveyor/stack/templates" / name).read_text()
    parts, seen, last = [], set(), 0
    for match in Template.pattern.finditer(text):
        placeholder = match.group("named") or match.group("braced")
        parts.append(re.escape(text[last : match.start()]))
        parts.append(
            f"(?P={placeholder})" if placeholder in seen else rf"(?P<{placeholder}>[^\n]+?)"
        )
        seen.add(placeholder)
        last = match.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts)), seen


def _local_renders(tmp_path: Path) -> dict[str, str]:
    """The files the embedded stack itself writes (through its own code), by compose path."""
    home = tmp_path / "home"
    settings = Settings(home=home, hdfs_uri="hdfs://127.0.0.1:41001")
    ports = {
        "kafka_0": 41000,
        "kafka_controller_0": 41002,
        "namenode": 41001,
        "namenode_http": 41003,
        "datanode_0": 41004,
        "datanode_http_0": 41005,
        "datanode_ipc_0": 41006,
    }
    # an existing meta.properties makes kafka_launch skip formatting: this renders files only
    (home / "kafka" / "data").mkdir(parents=True)
    (home / "kafka" / "data" / "meta.properties").write_text("")
    topology = components.Topology()
    components.kafka_launch(settings, ports, topology, 0, "unused-cluster-id")
    conf = components.hdfs_conf_dir(settings, ports, topology)
    change_capture.connect_launch(settings, {**ports, "connect": 41007}, topology)
    return {
        "kafka/server.properties": (home / "kafka" / "server.properties").read_text(),
        "kafka/log4j2.properties": (home / "kafka" / "log4j2.properties").read_text(),
        "hadoop/core-site.xml": (conf / "core-site.xml").read_text(),
        "hadoop/hdfs-site.xml": (conf / "hdfs-site.xml").read_text(),
        "hadoop/log4j.properties": (conf / "log4j.properties").read_text(),
        config_targets.SPARK_DEFAULTS: spark_defaults(settings).render(),
        "connect/connect-distributed.properties": (
            home / "connect" / "connect-distributed.properties"
        ).read_text(),
        "connect/log4j2.properties": (home / "connect" / "log4j2.properties").read_text(),
    }


def test_local_and_compose_configs_differ_only_in_hosts_ports_and_paths(
    tmp_path: Path,
) -> None:
    local = _local_renders(tmp_path)
    compose = {
        f.path: (f.template, (CONFIG_DIR / f.path).read_text())
        for f in compose_files()
        if not f.path.split("/")[0].endswith("-secure")  # the secure override's (own test)
    }
    assert set(local) == set(compose)
    for path, (template, compose_text) in compose.items():
        pattern, placeholders = _template_pattern(template)
        assert placeholders <= PER_HOST_PLACEHOLDERS, f"{template}: {placeholders}"
        local_match = pattern.fullmatch(local[path])
        compose_match = pattern.fullmatch(compose_text)
        assert local_match, f"the embedded stack's {path} is not a render of {template}"
        assert compose_match, f"docker/config/{path} is not a render of {template}"
        if placeholders:
            assert local_match.groupdict() != compose_match.groupdict(), path
    # and the differences are the expected ones
    kafka = _template_pattern("kafka-server.properties")[0]
    hosts = kafka.fullmatch(compose["kafka/server.properties"][1])
    assert hosts and hosts["advertised_host"] == COMPOSE.kafka_host


def test_spark_defaults_agree_with_the_session_conf(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, hdfs_uri="hdfs://127.0.0.1:41001")
    rendered: dict[str, str] = {}
    for line in spark_defaults(settings).render().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            rendered[key] = value.strip()
    session = spark_conf(settings)
    for key, value in rendered.items():
        if key == "spark.jars":
            found = [jar for pattern in value.split(",") for jar in glob.glob(pattern)]
            assert sorted(found) == sorted(session[key].split(","))
        elif key.startswith("spark.worker."):
            assert key not in session
        else:
            assert session.get(key) == value, key


# ---------------------------------------------------------------- the command


def test_render_config_writes_checks_and_names_what_is_stale(tmp_path: Path) -> None:
    app = typer.Typer()
    config_command.register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer's subcommand form
    runner = CliRunner()

    result = runner.invoke(app, ["render-config", "--out", str(CONFIG_DIR), "--check"])
    assert result.exit_code == 0, result.output
    assert f"{len(compose_files())} file(s)" in result.output

    out = tmp_path / "config"
    result = runner.invoke(app, ["render-config", "--out", str(out), "--check"])
    assert result.exit_code == 1
    assert "kafka/server.properties" in result.output

    result = runner.invoke(app, ["render-config", "--target", "compose", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.read_text() for p in out.rglob("*") if p.is_file()) == sorted(
        p.read_text() for p in CONFIG_DIR.rglob("*") if p.is_file()
    )

    result = runner.invoke(app, ["render-config", "--target", "k8s", "--out", str(out)])
    assert result.exit_code == 1
    assert "unknown target 'k8s'" in result.output


def test_render_config_for_the_local_target_uses_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = typer.Typer()
    config_command.register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "never-started"))
    monkeypatch.delenv("CONVEYOR_HDFS_URI", raising=False)

    result = runner.invoke(app, ["render-config", "--target", "local", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "hdfs_uri is not configured" in result.output

    monkeypatch.setenv("CONVEYOR_HDFS_URI", "hdfs://127.0.0.1:41001")
    result = runner.invoke(app, ["render-config", "--target", "local", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rendered = (tmp_path / config_targets.SPARK_DEFAULTS).read_text()
    assert "spark.hadoop.fs.defaultFS                       hdfs://127.0.0.1:41001" in rendered
    assert f"{Settings().jars_dir}/spark/*.jar" in rendered


# ---------------------------------------------------------------- the secured override

SECURE_FILE = REPO / "docker-compose.secure.yml"


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services as `docker compose -f base -f override` merges them: mappings merge, a
    service's volumes merge by target, anything else is replaced."""
    merged = copy.deepcopy(base["services"])
    for name, extra in override["services"].items():
        service = merged.setdefault(name, {})
        for key, value in extra.items():
            if key == "environment":
                service[key] = {**_environment(service), **value}
            elif key == "volumes":
                mounts = {m.split(":")[1]: m for m in service.get(key) or []}
                mounts.update({m.split(":")[1]: m for m in value})
                service[key] = list(mounts.values())
            elif isinstance(value, dict) and isinstance(service.get(key), dict):
                service[key] = {**service[key], **value}
            else:
                service[key] = value
    return merged


def test_the_secure_override_is_valid_compose_and_mounts_what_exists(
    compose: dict[str, Any],
) -> None:
    override = yaml.safe_load(SECURE_FILE.read_text())
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(override)] == []
    declared = set(compose.get("volumes") or {}) | set(override.get("volumes") or {})
    services = _merged(compose, override)
    _mounted_volumes(services, declared)
    # the secured broker reads the secured render of the shared templates
    kafka_mounts = dict(m.split(":")[1::-1] for m in services["kafka"]["volumes"])
    assert kafka_mounts["/etc/conveyor/kafka"] == "./docker/config/kafka-secure"
    rendered = (CONFIG_DIR / "kafka-secure" / "server.properties").read_text()
    assert "listeners=SASL_SSL://" in rendered and "CONTROLLER:SSL" in rendered
    assert "allow.everyone.if.no.acl.found=false" in rendered
    assert COMPOSE.kafka_secrets_dir in rendered
    hdfs = (CONFIG_DIR / "hadoop-secure" / "hdfs-site.xml").read_text()
    assert "<name>dfs.permissions.enabled</name><value>true</value>" in hdfs
    for name in ("namenode", "datanode"):
        assert "./docker/config/hadoop-secure/hdfs-site.xml" in " ".join(services[name]["volumes"])


def test_the_secure_override_passes_no_password_and_every_client_a_credentials_file(
    compose: dict[str, Any],
) -> None:
    text = SECURE_FILE.read_text()
    assert not re.search(r"(?i)password\s*[:=]\s*\S", text), "a password in the override"
    override = yaml.safe_load(text)
    services = _merged(compose, override)
    fields = set(Settings.model_fields)
    for name, service in services.items():
        env = _environment(service)
        for key in env:
            if key.startswith("CONVEYOR_"):
                assert key.removeprefix("CONVEYOR_").lower() in fields, f"{name}: {key}"
        if not _runs_conveyor(service) or name == "kafka-secrets":
            continue
        assert env["CONVEYOR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        credentials = env["CONVEYOR_KAFKA_CREDENTIALS_FILE"]
        targets = [m.split(":")[1] for m in service["volumes"]]
        assert any(credentials.startswith(t + "/") for t in targets), (name, credentials)
    # the storage tool takes its SCRAM passwords from a JVM argument file, never arguments
    command = " ".join(services["kafka"]["command"])
    assert "@/etc/conveyor/kafka-secrets/format.args" in command
    assert "--add-scram" not in command
    # the secrets service runs the module that makes the material, for the broker's host name
    assert services["kafka-secrets"]["command"][:3] == [
        "python",
        "-m",
        "conveyor.stack.compose_secrets",
    ]
    assert "kafka" in services["kafka-secrets"]["command"]
    depends = services["kafka"]["depends_on"]["kafka-secrets"]
    assert depends == {"condition": "service_completed_successfully"}


# ---------------------------------------------------------------- the cdc profile


def test_cdc_services_start_only_with_their_profile(services: dict[str, dict[str, Any]]) -> None:
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == CDC_SERVICES
    for name in CDC_SERVICES:
        assert services[name]["profiles"] == ["cdc"], name


def test_cdc_postgres_decodes_logically_with_a_generated_password(
    services: dict[str, dict[str, Any]],
) -> None:
    from conveyor.stack.change_capture import POSTGRES_OPTIONS

    postgres = services["cdc-postgres"]
    command = " ".join(postgres["command"])
    for key, value in POSTGRES_OPTIONS.items():
        assert f"-c {key}={value}" in command, key
    env = _environment(postgres)
    secret = COMPOSE.endpoints()["CONVEYOR_POSTGRES_PASSWORD_FILE"]
    assert env["POSTGRES_PASSWORD_FILE"] == secret
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_USER"] == COMPOSE.postgres_user
    assert env["POSTGRES_DB"] == COMPOSE.postgres_database
    assert "scram-sha-256" in env["POSTGRES_INITDB_ARGS"]
    assert f"cdc-secrets:{COMPOSE.cdc_secrets_dir}" in postgres["volumes"]
    # every Conveyor container reads the password from the same volume
    for name, service in services.items():
        if _runs_conveyor(service):
            assert f"cdc-secrets:{COMPOSE.cdc_secrets_dir}:ro" in service["volumes"], name


def test_connect_runs_the_rendered_worker_with_debezium_as_a_plugin(
    services: dict[str, dict[str, Any]],
) -> None:
    connect = services["connect"]
    assert "connect-distributed.sh /etc/conveyor/connect/connect-distributed.properties" in (
        " ".join(connect["command"])
    )
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in connect["volumes"])
    assert mounts["./docker/config/connect"] == "/etc/conveyor/connect"
    assert mounts["./.jars/connect"].startswith(COMPOSE.connect_plugin_path + "/")
    rendered = (CONFIG_DIR / "connect" / "connect-distributed.properties").read_text()
    assert f"plugin.path={COMPOSE.connect_plugin_path}\n" in rendered
    assert f"bootstrap.servers={COMPOSE.endpoints()['CONVEYOR_KAFKA_BOOTSTRAP']}\n" in rendered
    assert {"kafka", "cdc-postgres"} <= set(connect["depends_on"])


def test_connect_template_names_the_internal_topics_topics_plan_ignores() -> None:
    from conveyor.kafka.internal import CONNECT_GROUP_ID, CONNECT_INTERNAL_TOPICS

    rendered = (CONFIG_DIR / "connect" / "connect-distributed.properties").read_text()
    stored = {
        line.split("=", 1)[1]
        for line in rendered.splitlines()
        if line.split("=", 1)[0].endswith("storage.topic")
    }
    assert stored == set(CONNECT_INTERNAL_TOPICS)
    assert f"group.id={CONNECT_GROUP_ID}\n" in rendered
