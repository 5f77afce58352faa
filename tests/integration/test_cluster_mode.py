"""Cluster mode for real, without Docker: a Spark standalone master and worker on loopback.

The ingest job is submitted with `spark-submit --master spark://...` exactly as on a cluster: jars
through --jars, the conveyor package through --py-files (a zip built here), and executors whose
Python cannot see the driver's editable install. Its tables must equal a local-mode run's on the
same events. The master, the worker and the submits use spark-defaults.conf rendered from the
shared template (`conveyor render-config --target local`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, table_uri
from conveyor.config_targets import SPARK_DEFAULTS, local_files, write_files
from conveyor.produce import send_events, stream_samples
from conveyor.settings import LOOPBACK, Settings
from conveyor.spark.session import spark_submit_args
from conveyor.stack.process import free_port, is_running, log_tail, spawn, stop_group, wait_until
from tests.catalogs import catalog_variant, provision, stream_named
from tests.conftest import REPO
from tests.jobs import printed_json

# columns that differ between two landings of the same events: when and where they were read
LANDING_COLUMNS = ("topic", "partition", "offset", "kafka_timestamp", "ingest_time", "ingest_date")
SUBMIT_TIMEOUT_S = 600


@dataclass(frozen=True)
class StandaloneCluster:
    """A running master and worker, and what a submit needs to use them like a real cluster."""

    master_url: str
    master_ui: str
    worker_dir: Path
    conf_dir: Path
    executor_python: Path
    package_zip: Path

    def state(self) -> dict[str, Any]:
        """The master's own view (workers, running and completed applications)."""
        try:
            with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=3) as response:
                state: dict[str, Any] = json.load(response)
                return state
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            return {}

    def submit_settings(self) -> Settings:
        """Settings for a submit: this master, small executors, the executors' own Python."""
        return Settings(
            spark_master=self.master_url,
            spark_extra_conf={
                "spark.executor.memory": "512m",
                "spark.executor.cores": "1",
                "spark.cores.max": "1",
                "spark.pyspark.python": str(self.executor_python),
                "spark.pyspark.driver.python": sys.executable,
            },
        )

    def submit(self, application: Path, *args: str, py_files: bool = True) -> str:
        """spark-submit application to the master; returns stdout, fails with the driver's log."""
        settings = self.submit_settings()
        command = [str(Path(sys.executable).parent / "spark-submit"), *spark_submit_args(settings)]
        if py_files:
            command += ["--py-files", str(self.package_zip)]
        env = {
            **os.environ,
            "SPARK_CONF_DIR": str(self.conf_dir),
            "SPARK_LOCAL_IP": LOOPBACK,
            # the job builds its session from settings: it must name the same master
            "CONVEYOR_SPARK_MASTER": self.master_url,
            "PYSPARK_PYTHON": str(self.executor_python),
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }
        result = subprocess.run(
            [*command, str(application), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=SUBMIT_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, f"spark-submit failed:\n{result.stderr[-4000:]}"
        return result.stdout


def _package_zip(folder: Path) -> Path:
    """src/conveyor as a zip, the way a cluster receives the package (--py-files)."""
    target = folder / "conveyor.zip"
    source = REPO / "src"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((source / "conveyor").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(source).as_posix())
    return target


def _executor_python(folder: Path) -> Path:
    """The same interpreter in a venv that sees this venv's site-packages as a plain path entry:
    pyspark and the other libraries import, but the editable install of conveyor (a .pth file
    there, not processed from a plain path) does not, so executors need --py-files for it."""
    home = folder / "executor-venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
    site = next(home.glob("lib/python*/site-packages"))
    (site / "driver-libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home / "bin" / "python"


def _daemon(
    root: Path, name: str, main: str, args: list[str], env: dict[str, str]
) -> tuple[int, Path]:
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    log = root / f"{name}.log"
    return spawn([str(spark_class), main, *args], log, env), log


def _wait_for(condition: Any, what: str, groups: list[tuple[int, Path]]) -> None:
    def ready() -> bool:
        for pgid, log in groups:
            if not is_running(pgid):
                raise AssertionError(
                    f"{log.stem} exited while waiting for {what}:\n{log_tail(log)}"
                )
        return bool(condition())

    wait_until(ready, 120, what=what)


@pytest.fixture(scope="module")
def standalone(
    stack: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StandaloneCluster]:
    """One master and one worker (1 core, 1 GiB) on loopback, stopped by process group."""
    import pyspark

    root = tmp_path_factory.mktemp("standalone")
    write_files(local_files(Settings()), root)
    conf_dir = (root / SPARK_DEFAULTS).parent
    ports: list[int] = []
    while len(ports) < 4:
        port = free_port()
        if port not in ports:
            ports.append(port)
    master_port, master_ui_port, worker_port, worker_ui_port = ports
    env = {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_CONF_DIR": str(conf_dir),
        "SPARK_LOCAL_IP": LOOPBACK,
        "SPARK_DAEMON_MEMORY": "256m",
    }
    cluster = StandaloneCluster(
        master_url=f"spark://{LOOPBACK}:{master_port}",
        master_ui=f"http://{LOOPBACK}:{master_ui_port}",
        worker_dir=root / "work",
        conf_dir=conf_dir,
        executor_python=_executor_python(root),
        package_zip=_package_zip(root),
    )
    master_args = ["--host", LOOPBACK, "--port", str(master_port)]
    master_args += ["--webui-port", str(master_ui_port)]
    worker_args = ["--host", LOOPBACK, "--port", str(worker_port)]
    worker_args += ["--webui-port", str(worker_ui_port), "--cores", "1", "--memory", "1g"]
    worker_args += ["--work-dir", str(cluster.worker_dir), cluster.master_url]
    groups: list[tuple[int, Path]] = []
    try:
        master_main = "org.apache.spark.deploy.master.Master"
        groups.append(_daemon(root, "master", master_main, master_args, env))
        worker_main = "org.apache.spark.deploy.worker.Worker"
        groups.append(_daemon(root, "worker", worker_main, worker_args, env))
        _wait_for(
            lambda: cluster.state().get("aliveworkers", 0) >= 1,
            "the worker to register with the master",
            groups,
        )
        yield cluster
    finally:
        for pgid, _ in reversed(groups):
            stop_group(pgid)


def _without_landing(frame: Any) -> Any:
    return frame.drop(*[c for c in LANDING_COLUMNS if c in frame.columns])


def _table(spark: Any, settings: Settings, catalog: Catalog, stream: str, layer: Layer) -> Any:
    return spark.read.format("delta").load(table_uri(settings, catalog.stream(stream).table(layer)))


def test_ingest_on_a_standalone_cluster_equals_a_local_run(
    standalone: StandaloneCluster, settings: Settings, spark: Any, tmp_path: Path
) -> None:
    from pyspark.testing import assertDataFrameEqual

    from conveyor.ingest.stream import ingest_stream

    on_cluster = catalog_variant(tmp_path / "cluster")
    in_process = catalog_variant(tmp_path / "local")
    cluster_stream = stream_named(on_cluster, "clicks")
    local_stream = stream_named(in_process, "clicks")
    for catalog in (on_cluster, in_process):
        provision(settings, catalog)
    records = list(
        stream_samples(
            on_cluster.stream(cluster_stream),
            300,
            seed=21,
            bad_fraction=0.05,
            duplicate_fraction=0.05,
        )
    )
    for catalog, name in ((on_cluster, cluster_stream), (in_process, local_stream)):
        send_events(settings, catalog.stream(name).topic.name, records)

    stdout = standalone.submit(
        REPO / "jobs" / "stream_ingest.py",
        cluster_stream,
        "--available-now",
        "--json",
        "--catalog",
        str(on_cluster.source),
    )
    totals = printed_json(stdout)
    assert (totals["stream"], totals["rows_read"]) == (cluster_stream, len(records))

    # it ran on the cluster: the master finished the application, the worker ran its executor
    app_name = f"conveyor-ingest-{cluster_stream}"
    wait_until(
        lambda: app_name in {a["name"] for a in standalone.state().get("completedapps", [])},
        30,
        what=f"the master to list {app_name} as completed",
    )
    assert list(standalone.worker_dir.glob("app-*/*/stderr")), "no executor ran on the worker"

    summary = ingest_stream(spark, settings, in_process, local_stream, available_now=True)
    assert summary.total("rows_read") == len(records)

    bronze = _table(spark, settings, on_cluster, cluster_stream, Layer.BRONZE)
    assert bronze.select("partition", "offset").distinct().count() == len(records)
    for layer in (Layer.SILVER, Layer.QUARANTINE):
        cluster_rows = _table(spark, settings, on_cluster, cluster_stream, layer)
        local_rows = _table(spark, settings, in_process, local_stream, layer)
        assert local_rows.count() > 0, layer
        assertDataFrameEqual(
            _without_landing(cluster_rows), _without_landing(local_rows), checkRowOrder=False
        )


PROBE = '''
"""Report, from an executor, where its Python finds conveyor."""
import importlib
import importlib.util
import json
import sys

from pyspark.sql import SparkSession


def where(_rows):
    shipped = [p for p in sys.path if p.endswith("conveyor.zip")]
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if p not in shipped]
    importlib.invalidate_caches()
    found_without_zip = importlib.util.find_spec("conveyor") is not None
    sys.path[:] = saved
    importlib.invalidate_caches()
    import conveyor
    from conveyor.stack import config_files

    yield json.dumps({
        "module": conveyor.__file__,
        "shipped": shipped,
        "found_without_zip": found_without_zip,
        "prefix": sys.prefix,
        "template_lines": len(config_files.render("kafka-log4j2.properties", {}).splitlines()),
    })


spark = SparkSession.builder.appName("conveyor-probe").getOrCreate()
print("PROBE " + spark.sparkContext.parallelize([0], 1).mapPartitions(where).collect()[0])
spark.stop()
'''


def test_executors_import_conveyor_from_the_shipped_package(
    standalone: StandaloneCluster, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    stdout = standalone.submit(probe)
    line = next(x for x in stdout.splitlines() if x.startswith("PROBE "))
    seen = json.loads(line.removeprefix("PROBE "))
    assert seen["shipped"], "--py-files did not reach the executor's sys.path"
    assert "conveyor.zip" in seen["module"]
    assert not seen["found_without_zip"], "executors could import conveyor without --py-files"
    assert Path(seen["prefix"]) == standalone.executor_python.parent.parent
    assert seen["template_lines"] > 1  # package data (templates) is readable from the zip
