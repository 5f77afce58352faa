"""Resolve the JVM classpaths named in `jvm/artifacts.toml` with Maven, once, into local folders.

Each classpath (kafka, hdfs, spark) gets its own folder of jars. A folder is reused while its
artifact list is unchanged (a hash is stored beside the jars), so later runs touch no network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from conveyor.errors import ConveyorError

MARKER = ".resolved.json"
MODULE = "conveyor"
"""The classpath folder of Conveyor's own JVM code (`jvm/decode`), built by `build_module`."""
MODULE_JAR = "conveyor-decode.jar"
_VERSION_SUFFIX = re.compile(r"-\d[\w.]*(?:-\d+)?\.jar$")


class JarResolutionError(ConveyorError):
    """Maven could not resolve some artifacts; the message names them and what is served."""


@dataclass(frozen=True)
class Classpath:
    """One named classpath: the Maven coordinates that make it up."""

    name: str
    artifacts: tuple[str, ...]
    skip_bundled_with_pyspark: bool = False

    def digest(self) -> str:
        payload = json.dumps([self.artifacts, self.skip_bundled_with_pyspark]).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def load_classpaths(artifacts_file: Path) -> dict[str, Classpath]:
    """Read the artifact list; raises ConveyorError naming the file if it is malformed."""
    try:
        raw = tomllib.loads(artifacts_file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConveyorError(f"{artifacts_file}: cannot read the JVM artifact list: {exc}") from exc
    classpaths = {}
    for name, table in raw.items():
        artifacts = table.get("artifacts")
        if not isinstance(artifacts, list) or not all(a.count(":") == 2 for a in artifacts):
            raise ConveyorError(
                f"{artifacts_file}: [{name}].artifacts must be group:artifact:version"
            )
        classpaths[name] = Classpath(
            name, tuple(artifacts), bool(table.get("skip_bundled_with_pyspark", False))
        )
    return classpaths


def java_binary() -> Path | None:
    """The java Spark's launcher and the stack run: $JAVA_HOME/bin/java, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home, "bin", "java") if home else None
    found = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    return Path(found) if found else None


def pyspark_home() -> Path:
    """PySpark's own Spark (its `bin/` and `jars/`), found without importing PySpark."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ConveyorError("PySpark is not installed in this Python: run `make setup`")
    return Path(spec.origin).parent


def classpath_dir(jars_dir: Path, name: str) -> Path:
    return jars_dir / name


def jar_files(jars_dir: Path, name: str) -> list[Path]:
    """The resolved jars of one classpath; raises if `conveyor jars` has not run yet."""
    folder = classpath_dir(jars_dir, name)
    jars = sorted(folder.glob("*.jar"))
    if not jars or not (folder / MARKER).is_file():
        raise ConveyorError(
            f"the '{name}' jars are not resolved in {folder}: run `conveyor jars` (or `make setup`)"
        )
    return jars


def is_current(jars_dir: Path, classpath: Classpath) -> bool:
    marker = classpath_dir(jars_dir, classpath.name) / MARKER
    try:
        return bool(json.loads(marker.read_text()).get("digest") == classpath.digest())
    except (OSError, json.JSONDecodeError):
        return False


def resolve_all(artifacts_file: Path, jars_dir: Path) -> dict[str, str]:
    """Resolve every classpath that is missing or out of date. Returns name -> 'reused'|'resolved'."""
    outcome = {}
    for classpath in load_classpaths(artifacts_file).values():
        if is_current(jars_dir, classpath):
            outcome[classpath.name] = "reused"
            continue
        resolve(classpath, jars_dir)
        outcome[classpath.name] = "resolved"
    return outcome


def resolve(classpath: Classpath, jars_dir: Path) -> Path:
    """Resolve one classpath into jars_dir/<name>/, replacing what was there."""
    target = classpath_dir(jars_dir, classpath.name)
    jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jars_dir, prefix=f".{classpath.name}-") as tmp:
        work = Path(tmp)
        out = work / "jars"
        (work / "pom.xml").write_text(_pom(classpath.name, classpath.artifacts))
        result = _mvn(
            work,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        )
        if result.returncode != 0:
            raise JarResolutionError(_explain_failure(classpath, result.stdout + result.stderr))
        if classpath.skip_bundled_with_pyspark:
            _drop_bundled(out)
        (out / MARKER).write_text(
            json.dumps({"digest": classpath.digest(), "artifacts": list(classpath.artifacts)})
        )
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def artifact_name(jar: str) -> str:
    """'jackson-core-2.13.5.jar' -> 'jackson-core'."""
    return _VERSION_SUFFIX.sub("", jar)


def _drop_bundled(folder: Path) -> None:
    bundled = {artifact_name(p.name) for p in (pyspark_home() / "jars").glob("*.jar")}
    for jar in folder.glob("*.jar"):
        if artifact_name(jar.name) in bundled:
            jar.unlink()


def _pom(name: str, artifacts: tuple[str, ...]) -> str:
    deps = []
    for coordinate in artifacts:
        group, artifact, version = (escape(part) for part in coordinate.split(":"))
        deps.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>conveyor.jars</groupId><artifactId>{escape(name)}</artifactId>"
        "<version>0</version><packaging>pom</packaging>"
        f"<dependencies>{''.join(deps)}</dependencies></project>"
    )


def _mvn(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _mvn_at(work / "pom.xml", *args)


def _mvn_at(pom: Path, *args: str) -> subprocess.CompletedProcess[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError("Maven (`mvn`) is not on PATH; install it to resolve the jars")
    return subprocess.run(
        [mvn, "-B", "-q", "-f", str(pom), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _explain_failure(classpath: Classpath, output: str) -> str:
    """Name the coordinates that failed and the versions Maven does serve nearest to them."""
    failed = [a for a in classpath.artifacts if not _resolves_alone(a)]
    if not failed:
        tail = "\n".join(output.strip().splitlines()[-15:])
        return f"Maven could not resolve the '{classpath.name}' classpath:\n{tail}"
    lines = [f"Maven could not resolve the '{classpath.name}' classpath:"]
    for coordinate in failed:
        served = served_versions(coordinate)
        nearest = ", ".join(served[-5:]) if served else "no versions served"
        lines.append(f"  {coordinate}: not found; served versions (newest last): {nearest}")
    return "\n".join(lines)


def _resolves_alone(coordinate: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pom.xml").write_text(_pom("probe", (coordinate,)))
        return _mvn(Path(tmp), "dependency:resolve", "-DexcludeTransitive=true").returncode == 0


def served_versions(coordinate: str) -> list[str]:
    """Versions the registry lists for group:artifact, oldest first (via a Maven range lookup)."""
    group, artifact, _ = coordinate.split(":")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pom.xml").write_text(_pom("probe", (f"{group}:{artifact}:[0,)",)))
        _mvn(Path(tmp), "dependency:resolve", "-DexcludeTransitive=true")
    repo = Path.home() / ".m2" / "repository" / Path(*group.split(".")) / artifact
    versions: list[str] = []
    for metadata in repo.glob("maven-metadata*.xml"):
        try:
            root = ET.parse(metadata).getroot()
        except ET.ParseError:
            continue
        versions += [v.text for v in root.iter("version") if v.text and v.text not in versions]
    return versions


def module_source(artifacts_file: Path) -> Path:
    """The module's Maven project, beside the artifact list."""
    return artifacts_file.parent / "decode"


def module_sources(source: Path) -> list[Path]:
    """What the module's jar is built from: its POM and Java sources."""
    return [source / "pom.xml", *sorted((source / "src").rglob("*.java"))]


def module_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in module_sources(source):
        digest.update(f"{path.relative_to(source)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def module_jar(jars_dir: Path) -> Path:
    """Conveyor's own jar; raises if `conveyor jars` has not built it yet."""
    jar = classpath_dir(jars_dir, MODULE) / MODULE_JAR
    if not jar.is_file():
        raise ConveyorError(f"{jar} is not built: run `conveyor jars` (or `make setup`)")
    return jar


def build_module(source: Path, jars_dir: Path) -> str:
    """Build Conveyor's JVM module (`mvn package`, in a temporary folder) into
    jars_dir/conveyor/ unless the jar there was built from these very sources: 'reused' or
    'built'. Raises JarResolutionError with Maven's output when the build fails."""
    target = classpath_dir(jars_dir, MODULE)
    digest = module_digest(source)
    try:
        if json.loads((target / MARKER).read_text()).get("digest") == digest:
            return "reused"
    except (OSError, json.JSONDecodeError):
        pass
    jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jars_dir, prefix=f".{MODULE}-") as tmp:
        work = Path(tmp)
        result = _mvn_at(source / "pom.xml", "package", f"-Dconveyor.build.dir={work / 'build'}")
        built = work / "build" / MODULE_JAR
        if result.returncode != 0 or not built.is_file():
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
            raise JarResolutionError(f"Maven could not build {source}:\n{tail}")
        out = work / "out"
        out.mkdir()
        built.rename(out / MODULE_JAR)
        (out / MARKER).write_text(json.dumps({"digest": digest}))
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return "built"
