"""Start the real streaming job (`spark-submit jobs/stream_ingest.py`) the way an operator would,
in its own process group so a test can kill it with `kill -9` like a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conveyor.catalog import Catalog
from conveyor.settings import Settings, project_root
from conveyor.spark.session import spark_submit_args


def start_ingest_job(
    settings: Settings, catalog: Catalog, stream: str, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The continuous ingest of `stream`, output appended to `log`, `env` over this process's."""
    submit = Path(sys.executable).parent / "spark-submit"
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                str(submit),
                *spark_submit_args(settings),
                str(project_root() / "jobs/stream_ingest.py"),
                "--stream",
                stream,
                "--catalog",
                str(catalog.source),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
