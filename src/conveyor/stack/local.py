"""The embedded stack: real Kafka, HDFS and Airflow as local process groups under CONVEYOR_HOME.

`up` is idempotent (running components are left alone), `down` stops what `up` started by process
group and waits until it is gone, data survives `down`/`up`, and `up(fresh=True)` starts empty.
State (process groups, ports, endpoints, secrets) lives in `$CONVEYOR_HOME/stack.json`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conveyor.settings import LOOPBACK, Settings
from conveyor.stack import components
from conveyor.stack.components import Launch
from conveyor.stack.process import (
    ComponentStartError,
    free_port,
    is_running,
    port_is_free,
    spawn,
    stop_group,
    wait_until,
)

PORT_NAMES = (
    "kafka",
    "kafka_controller",
    "namenode",
    "namenode_http",
    "datanode",
    "datanode_http",
    "datanode_ipc",
    "airflow",
    "airflow_worker_logs",
    "airflow_trigger_logs",
)
Progress = Callable[[str], None]


class LocalStack:
    """Start, inspect and stop the embedded stack described by settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home

    # ------------------------------------------------------------ state

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.settings.state_file.read_text())
            return state
        except (FileNotFoundError, json.JSONDecodeError):
            return {"components": {}, "ports": {}, "secrets": {}, "endpoints": {}}

    def _write_state(self, state: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(self.settings.state_file)

    # ------------------------------------------------------------ up

    def up(self, fresh: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        """Start every component that is not running; on failure stop what this call started."""
        say = progress or (lambda _msg: None)
        if fresh:
            self.down(progress=say)
            self._wipe()
        state = self._read_state()
        running = {n for n, c in state["components"].items() if is_running(c["pgid"])}
        if not running:
            state["ports"] = self._choose_ports(state.get("ports", {}))
        state["secrets"] = self._secrets(state.get("secrets", {}))
        ports = state["ports"]
        state["endpoints"] = self._endpoints(ports)
        self._write_state(state)
        started: list[str] = []
        try:
            for launch in self._launches(state, running, say):
                if launch.name in running:
                    say(f"{launch.name}: already running")
                    continue
                self._start(launch, state, say)
                started.append(launch.name)
                if launch.name == "datanode":
                    self._make_lake_dirs(ports)
        except BaseException:
            for name in reversed(started):
                stop_group(state["components"][name]["pgid"])
                state["components"].pop(name, None)
            self._write_state(state)
            raise
        state["started_at"] = state.get("started_at") if not started else time.time()
        self._write_state(state)
        return self.status()

    def _launches(
        self, state: dict[str, Any], running: set[str], say: Progress
    ) -> Iterator[Launch]:
        """Launch descriptions in start order, built lazily so each sees the earlier ones up."""
        ports = state["ports"]
        yield components.kafka_launch(self.settings, ports)
        yield components.namenode_launch(self.settings, ports)
        yield components.datanode_launch(self.settings, ports)
        env = self.airflow_env(state)
        self._write_airflow_password(state)
        if not {f"airflow-{p}" for p in components.AIRFLOW_PARTS} <= running:
            say("airflow: migrating the metadata database")
            yield from components.airflow_launches(self.settings, env)

    def _start(self, launch: Launch, state: dict[str, Any], say: Progress) -> None:
        for port in launch.ports:
            if not port_is_free(port):
                raise ComponentStartError(
                    f"{launch.name} cannot start: port {LOOPBACK}:{port} is already in use "
                    f"(free it, or set another port, e.g. CONVEYOR_KAFKA_PORT / "
                    f"CONVEYOR_HDFS_PORT / CONVEYOR_AIRFLOW_PORT)"
                )
        say(f"{launch.name}: starting")
        began = time.monotonic()
        pgid = spawn(launch.command, launch.log_file, launch.env, cwd=launch.cwd)
        state["components"][launch.name] = {
            "pgid": pgid,
            "log": str(launch.log_file),
            "started": time.time(),
        }
        self._write_state(state)

        def ready() -> bool:
            if not is_running(pgid):
                raise ComponentStartError(
                    components.failure_message(launch, "exited while starting")
                )
            return launch.healthy()

        try:
            wait_until(ready, self.settings.stack_start_timeout_s, what=f"{launch.name} health")
        except TimeoutError as exc:
            raise ComponentStartError(components.failure_message(launch, str(exc))) from exc
        say(f"{launch.name}: healthy after {time.monotonic() - began:.1f}s")

    def _choose_ports(self, previous: dict[str, int]) -> dict[str, int]:
        """Fixed ports from settings; otherwise last run's ports when free, else fresh free ones."""
        fixed = {
            "kafka": self.settings.kafka_port,
            "namenode": self.settings.hdfs_port,
            "airflow": self.settings.airflow_port,
        }
        chosen: dict[str, int] = {}
        for name in PORT_NAMES:
            if fixed.get(name):
                chosen[name] = fixed[name]
            elif previous.get(name) and port_is_free(previous[name]):
                chosen[name] = previous[name]
            else:
                port = free_port()
                while port in chosen.values():
                    port = free_port()
                chosen[name] = port
        return chosen

    @staticmethod
    def _secrets(previous: dict[str, str]) -> dict[str, str]:
        import base64

        wanted = {
            "airflow_password": lambda: secrets.token_urlsafe(12),
            "jwt_secret": lambda: secrets.token_urlsafe(32),
            "api_secret": lambda: secrets.token_urlsafe(32),
            "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        return {k: previous.get(k) or make() for k, make in wanted.items()}

    def _endpoints(self, ports: dict[str, int]) -> dict[str, str]:
        hdfs = f"hdfs://{LOOPBACK}:{ports['namenode']}"
        return {
            "kafka_bootstrap": f"{LOOPBACK}:{ports['kafka']}",
            "hdfs_uri": hdfs,
            "namenode_http": f"http://{LOOPBACK}:{ports['namenode_http']}",
            "lake_uri": hdfs + self.settings.lake_path,
            "checkpoint_uri": hdfs + self.settings.checkpoint_path,
            "airflow_url": f"http://{LOOPBACK}:{ports['airflow']}",
        }

    def airflow_env(self, state: dict[str, Any] | None = None) -> dict[str, str]:
        """The Airflow environment of this stack (for dag.test() and the airflow CLI)."""
        state = state or self._read_state()
        if not state.get("ports"):
            raise ComponentStartError(
                "the embedded stack was never started: run `conveyor stack up`"
            )
        return components.airflow_env(
            self.settings, state["ports"], state["secrets"], state["endpoints"]
        )

    def _write_airflow_password(self, state: dict[str, Any]) -> None:
        path = self.password_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({self.settings.airflow_user: state["secrets"]["airflow_password"]})
        )
        os.chmod(path, 0o600)

    @property
    def password_file(self) -> Path:
        return self.home / "airflow" / "passwords.json"

    def _make_lake_dirs(self, ports: dict[str, int]) -> None:
        http = f"http://{LOOPBACK}:{ports['namenode_http']}"
        user = os.environ.get("USER", "conveyor")
        for path in (self.settings.lake_path, self.settings.checkpoint_path):
            components.hdfs_mkdirs(http, path, user)

    def _wipe(self) -> None:
        for child in ("kafka", "hdfs", "airflow", "logs", "stack.json"):
            target = self.home / child
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

    # ------------------------------------------------------------ down / status

    def down(self, progress: Progress | None = None) -> list[str]:
        """Stop every recorded component (Airflow first, Kafka last) and wait until gone."""
        say = progress or (lambda _msg: None)
        state = self._read_state()
        stopped = []
        for name in reversed(list(state["components"])):
            info = state["components"][name]
            if is_running(info["pgid"]):
                say(f"{name}: stopping")
                stop_group(info["pgid"])
                stopped.append(name)
            state["components"].pop(name)
        if state.get("ports"):
            self._write_state(state)
        return stopped

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. to rehearse an outage); `up` starts it again."""
        state = self._read_state()
        info = state["components"].get(name)
        if info is None:
            raise ComponentStartError(f"no component named {name!r} was started by this stack")
        stop_group(info["pgid"])
        state["components"].pop(name)
        self._write_state(state)

    def status(self) -> dict[str, Any]:
        """Component states and endpoints; the keys CI and users script against are stable."""
        state = self._read_state()
        comps = {
            name: {
                "state": "running" if is_running(info["pgid"]) else "stopped",
                "pgid": info["pgid"],
                "log": info["log"],
            }
            for name, info in state["components"].items()
        }
        endpoints = state.get("endpoints", {})
        return {
            "home": str(self.home),
            "running": bool(comps) and all(c["state"] == "running" for c in comps.values()),
            "components": comps,
            **endpoints,
            "airflow_user": self.settings.airflow_user,
            "airflow_password": state.get("secrets", {}).get("airflow_password"),
            "airflow_password_file": str(self.password_file),
        }
