"""Start the real streaming job (`spark-submit jobs/stream_ingest.py`) the way an operator would,
in its own process group so a test can kill it with `kill -9` like a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from conveyor.catalog import Catalog
from conveyor.settings import Settings, project_root
from conveyor.spark.session import spark_submit_args
from conveyor.stack.process import is_running, wait_until


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
                stream,
                "--catalog",
                str(catalog.source),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )


def thread_dumps(job: subprocess.Popen[bytes], log: Path, timeout_s: float = 30) -> str:
    """What a stuck job was doing, for a failure message: the Python driver's stacks (SIGUSR1,
    see jobs/stream_ingest.py) and the JVM's threads that run the query, as they reach `log`."""
    import psutil

    if job.poll() is not None:
        return f"(the job had ended with exit code {job.returncode})"
    start = log.stat().st_size
    drivers = [
        child.pid
        for child in psutil.Process(job.pid).children(recursive=True)
        if any("stream_ingest.py" in part for part in child.cmdline())
    ]
    for pid in drivers:
        os.kill(pid, signal.SIGUSR1)
    os.kill(job.pid, signal.SIGQUIT)  # the JVM prints its threads and carries on

    def dumped() -> str:
        with log.open("rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def complete() -> bool:
        text = dumped()
        return "JNI global refs" in text and (not drivers or "most recent call first" in text)

    wait_until(complete, timeout_s, what="the job's thread dumps", raise_on_timeout=False)
    python, _, jvm = dumped().partition("Full thread dump")
    wanted = ("stream execution", "Delta", "delta", "py4j")
    threads = [b for b in jvm.split("\n\n") if any(w in b for w in wanted)]
    return python[-8000:] + "\nJVM threads:\n" + "\n\n".join(threads)[:8000]


def printed_json(output: str) -> Any:
    """The last JSON object a job printed. Under spark-submit the Python driver's stderr (its log
    lines, py4j's goodbye) is merged into stdout, so the object is not necessarily last."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON object in the output:\n{output[-2000:]}")


def kill_group(job: subprocess.Popen[bytes]) -> None:
    """`kill -9` the job's process group (spark-submit's JVM and its Python driver) and return
    once none of them runs: the next ingest then finds the driver's checkpoint lease dead."""
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=60)
    wait_until(lambda: not is_running(job.pid), 60, what=f"process group {job.pid} to die")
