"""Which class archive a Spark driver maps: one per java and jar set, only once it is built."""

from __future__ import annotations

from pathlib import Path

from conveyor.jars import MARKER, MODULE, MODULE_JAR
from conveyor.settings import Settings
from conveyor.spark.jvm_options import (
    C1_ONLY,
    JVM_OPTIONS,
    archive_file,
    driver_java_options,
)


def _settings(tmp_path: Path) -> Settings:
    spark_jars = tmp_path / "jars" / "spark"
    spark_jars.mkdir(parents=True)
    (spark_jars / "delta-spark-4.4.0.jar").write_bytes(b"one")
    (spark_jars / MARKER).write_text("{}")
    module = tmp_path / "jars" / MODULE
    module.mkdir()
    (module / MODULE_JAR).write_bytes(b"ours")
    return Settings(jars_dir=tmp_path / "jars", hdfs_uri="file:///")


def test_a_driver_maps_the_archive_only_once_it_is_built(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archive = archive_file(settings)
    assert archive is not None and archive.parent == settings.jars_dir / "class-archive"
    assert driver_java_options(settings) == JVM_OPTIONS
    archive.parent.mkdir()
    archive.write_bytes(b"archive")
    assert driver_java_options(settings) == f"{JVM_OPTIONS} -XX:SharedArchiveFile={archive}"


def test_another_jar_set_looks_for_another_archive(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    before = archive_file(settings)
    (settings.jars_dir / "spark" / "delta-spark-4.4.0.jar").write_bytes(b"other build")
    assert archive_file(settings) != before
    rebuilt = archive_file(settings)
    (settings.jars_dir / MODULE / MODULE_JAR).write_bytes(b"our code changed")
    assert archive_file(settings) != rebuilt


def test_no_resolved_jars_means_no_archive(tmp_path: Path) -> None:
    settings = Settings(jars_dir=tmp_path / "nothing", hdfs_uri="file:///")
    assert archive_file(settings) is None
    assert driver_java_options(settings) == JVM_OPTIONS


def test_the_c1_setting_reaches_the_driver_and_the_executors_with_the_same_archive(
    tmp_path: Path,
) -> None:
    from conveyor.spark.session import spark_conf

    tiered, c1 = (
        _settings(tmp_path),
        _settings(tmp_path / "c1").model_copy(update={"spark_jit": "c1"}),
    )
    assert C1_ONLY not in spark_conf(tiered)["spark.driver.extraJavaOptions"]
    conf = spark_conf(c1)
    assert conf["spark.driver.extraJavaOptions"] == f"{JVM_OPTIONS} {C1_ONLY}"
    assert conf["spark.executor.extraJavaOptions"] == f"{JVM_OPTIONS} {C1_ONLY}"
    archive = archive_file(c1)
    assert archive is not None
    archive.parent.mkdir()
    archive.write_bytes(b"archive")
    assert driver_java_options(c1).endswith(f"{C1_ONLY} -XX:SharedArchiveFile={archive}")
