"""The benchmarks' way of running a `conveyor` command as a user would: a process of its own."""

from __future__ import annotations

import subprocess
import sys


def run_conveyor(env: dict[str, str], *args: str, timeout: float = 7200) -> str:
    """Run `conveyor ARGS` with `env`; return its stdout, or stop the benchmark with its output."""
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise SystemExit(f"conveyor {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout
