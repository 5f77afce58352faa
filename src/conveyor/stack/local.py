"""The embedded stack: real Kafka, HDFS and Airflow as local process groups under CONVEYOR_HOME.

`up` is idempotent (running components are left alone), `down` stops what `up` started by process
group and waits until it is gone, data survives `down`/`up`, and `up(fresh=True)` starts empty.
State (process groups, ports, endpoints, secrets) lives in `$CONVEYOR_HOME/stack.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from conveyor import webhdfs
from conveyor.settings import LOOPBACK, Settings, write_secret
from conveyor.stack import change_capture, components, security
from conveyor.stack.components import Launch, Topology
from conveyor.stack.process import (
    ComponentStartError,
    free_port,
    is_running,
    port_is_free,
    spawn,
    stop_group,
    stop_groups,
    wait_until,
)

AIRFLOW_PORT_NAMES = ("airflow", "airflow_worker_logs", "airflow_trigger_logs")
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

    def topology(self, state: dict[str, Any] | None = None) -> Topology:
        """The topology this stack was started with (1 broker, 1 DataNode if never started)."""
        recorded = (state or self._read_state()).get("topology") or {}
        return Topology(
            int(recorded.get("brokers", 1)),
            int(recorded.get("datanodes", 1)),
            bool(recorded.get("secure", False)),
        )

    def _wanted_topology(self, state: dict[str, Any], fresh: bool) -> Topology:
        """Settings' counts where given, else the recorded ones; a change needs an empty home."""
        recorded = self.topology(state)
        secure = self.settings.stack_secure
        wanted = Topology(
            self.settings.stack_brokers or recorded.brokers,
            self.settings.stack_datanodes or recorded.datanodes,
            recorded.secure if secure is None else secure,
        )
        has_data = (self.home / "kafka").exists() or (self.home / "hdfs").exists()
        if wanted != recorded and has_data and not fresh:
            raise ComponentStartError(
                f"the stack in {self.home} was made {_describe(recorded)}; "
                f"{_describe(wanted)} needs a new cluster: run `conveyor stack up --fresh` "
                "with the new options (it deletes the stack's data), or set CONVEYOR_HOME to "
                "another folder"
            )
        return wanted

    def optional_sets(self, state: dict[str, Any] | None = None) -> list[str]:
        """The optional component sets this stack was started with (e.g. ["cdc"])."""
        return list((state or self._read_state()).get("with") or [])

    def _wanted_sets(self, state: dict[str, Any], topology: Topology) -> list[str]:
        """The recorded optional sets plus those settings ask for (`--with`): a set, once
        started, stays until `--fresh`."""
        asked = [s.strip() for s in (self.settings.stack_with or "").split(",") if s.strip()]
        wanted = self.optional_sets(state) + [
            s for s in asked if s not in self.optional_sets(state)
        ]
        change_capture.optional_components(wanted)  # names an unknown set
        if change_capture.CDC in wanted and topology.secure:
            raise ComponentStartError(
                "the CDC components (--with cdc) run on the plaintext stack only for now: "
                "start them on a stack made without --secure"
            )
        return wanted

    def up(self, fresh: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        """Start every component that is not running; on failure stop what this call started."""
        say = progress or (lambda _msg: None)
        if fresh:
            self.down(progress=say)
            self._wipe()
        state = self._read_state()
        topology = self._wanted_topology(state, fresh)
        state["topology"] = topology.as_dict()
        state["with"] = self._wanted_sets(state, topology)
        running = {n for n, c in state["components"].items() if is_running(c["pgid"])}
        names = [
            *topology.port_names(),
            *AIRFLOW_PORT_NAMES,
            *change_capture.optional_components(state["with"]),
        ]
        if not running:
            state["ports"] = self._choose_ports(state.get("ports", {}), names)
        else:
            # components join a running stack (`--with cdc`): ports only for the new ones
            missing = [name for name in names if name not in state["ports"]]
            state["ports"].update(self._choose_ports({}, missing, taken=state["ports"].values()))
        state["secrets"] = self._secrets(state.get("secrets", {}))
        self._write_airflow_password(state["secrets"].pop("airflow_password", None))
        state.setdefault("kafka_cluster_id", components.kafka_cluster_id())
        ports = state["ports"]
        state["endpoints"] = self._endpoints(ports, topology)
        if change_capture.CDC in state["with"]:
            state["endpoints"].update(change_capture.endpoints(self.settings, ports))
        self._write_state(state)
        started: list[str] = []
        try:
            for group in self._launch_groups(state, running, say):
                wanted = [launch for launch in group if launch.name not in running]
                for launch in group:
                    if launch.name in running:
                        say(f"{launch.name}: already running")
                self._start(wanted, state, say, started)
                if any(launch.name.startswith("datanode-") for launch in wanted):
                    self._make_lake_dirs(ports, topology)
        except BaseException:
            for name in reversed(started):
                stop_group(state["components"][name]["pgid"])
                state["components"].pop(name, None)
            self._write_state(state)
            raise
        state["started_at"] = state.get("started_at") if not started else time.time()
        self._write_state(state)
        return self.status()

    def _launch_groups(
        self, state: dict[str, Any], running: set[str], say: Progress
    ) -> Iterator[list[Launch]]:
        """Launches in start order, a group at a time: a group's processes start together and
        are waited for together (a Kafka quorum elects no leader until most of its nodes run;
        the brokers and the NameNode need nothing of each other, nor do Airflow's parts).
        Airflow's metadata database is migrated, and its connections registered, while the
        first group starts. Built lazily, so each group sees the earlier ones up."""
        topology = self.topology(state)
        if topology.secure:
            say("security: CA, broker certificate and principals in " + str(self._security.root))
            security.ensure(self.home)
        airflow = not {f"airflow-{p}" for p in components.AIRFLOW_PARTS} <= running
        prepared = self._prepare_airflow(state, say) if airflow else None
        first = [self._launch(name, state) for name in (*topology.kafka_names(), "namenode")]
        yield first
        yield [self._launch(name, state) for name in topology.datanode_names()]
        if prepared is not None:
            prepared.result()  # the migration's or the registration's error, if any
            env = self.airflow_env(state)
            yield [
                components.airflow_launch(self.settings, env, p) for p in components.AIRFLOW_PARTS
            ]
        optional = change_capture.optional_components(self.optional_sets(state))
        yield [self._launch(name, state) for name in optional]  # Connect needs Kafka only

    def _prepare_airflow(self, state: dict[str, Any], say: Progress) -> Future[None]:
        """Migrate Airflow's metadata database and register the connections, in the background
        (two Python processes that need no other component)."""
        env = self.airflow_env(state)
        conns = components.stack_connections(self.settings, state["endpoints"])

        def prepare() -> None:
            say("airflow: migrating the metadata database")
            components.airflow_migrate(env)
            say("airflow: registering the connections, one per role")
            components.airflow_register_connections(env, conns)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airflow-prepare")
        try:
            return pool.submit(prepare)
        finally:
            pool.shutdown(wait=False)  # the task runs on; its future answers

    def _launch(self, name: str, state: dict[str, Any]) -> Launch:
        """The launch of one component: a Kafka node, the NameNode, a DataNode or an Airflow
        process."""
        topology = self.topology(state)
        ports = state["ports"]
        if name in topology.kafka_names():
            return components.kafka_launch(
                self.settings,
                ports,
                topology,
                components.node_index(name),
                state["kafka_cluster_id"],
            )
        if name == "namenode":
            return components.namenode_launch(self.settings, ports, topology)
        if name in topology.datanode_names():
            return components.datanode_launch(
                self.settings, ports, topology, components.node_index(name)
            )
        parts = {f"airflow-{part}": part for part in components.AIRFLOW_PARTS}
        if name in parts:
            return components.airflow_launch(self.settings, self.airflow_env(state), parts[name])
        optional = change_capture.optional_components(self.optional_sets(state))
        if name == "postgres" and name in optional:
            return change_capture.postgres_launch(self.settings, ports)
        if name == "connect" and name in optional:
            return change_capture.connect_launch(self.settings, ports, topology)
        known = [*topology.kafka_names(), "namenode", *topology.datanode_names(), *parts]
        known += optional
        raise ComponentStartError(
            f"no component named {name!r} can be started alone; this stack has: " + ", ".join(known)
        )

    def _start(
        self, launches: list[Launch], state: dict[str, Any], say: Progress, started: list[str]
    ) -> None:
        """Spawn every launch of a group, then wait until each is healthy."""
        for launch in launches:
            for port in launch.ports:
                if not port_is_free(port):
                    raise ComponentStartError(
                        f"{launch.name} cannot start: port {LOOPBACK}:{port} is already in use "
                        f"(free it, or set another port, e.g. CONVEYOR_KAFKA_PORT / "
                        f"CONVEYOR_HDFS_PORT / CONVEYOR_AIRFLOW_PORT)"
                    )
        began = time.monotonic()
        for launch in launches:
            say(f"{launch.name}: starting")
            pgid = spawn(launch.command, launch.log_file, launch.env, cwd=launch.cwd)
            state["components"][launch.name] = {
                "pgid": pgid,
                "log": str(launch.log_file),
                "ports": list(launch.ports),
                "started": time.time(),
            }
            started.append(launch.name)
            self._write_state(state)
        for launch in launches:
            pgid = state["components"][launch.name]["pgid"]

            def ready(launch: Launch = launch, pgid: int = pgid) -> bool:
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

    def _choose_ports(
        self, previous: dict[str, int], names: list[str], taken: Iterable[int] = ()
    ) -> dict[str, int]:
        """Fixed ports from settings; otherwise last run's ports when free, else fresh free ones
        (never one of taken)."""
        fixed = {
            "kafka_0": self.settings.kafka_port,
            "namenode": self.settings.hdfs_port,
            "airflow": self.settings.airflow_port,
        }
        chosen: dict[str, int] = {}
        taken = set(taken)
        for name in names:
            if fixed.get(name):
                chosen[name] = fixed[name]
            elif previous.get(name) and port_is_free(previous[name]):
                chosen[name] = previous[name]
            else:
                port = free_port()
                while port in chosen.values() or port in taken:
                    port = free_port()
                chosen[name] = port
        return chosen

    @staticmethod
    def _secrets(previous: dict[str, str]) -> dict[str, str]:
        import base64

        wanted = {
            "jwt_secret": lambda: secrets.token_urlsafe(32),
            "api_secret": lambda: secrets.token_urlsafe(32),
            "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        return {k: previous.get(k) or make() for k, make in wanted.items()}

    def _endpoints(self, ports: dict[str, int], topology: Topology) -> dict[str, str]:
        hdfs = f"hdfs://{LOOPBACK}:{ports['namenode']}"
        secured = {}
        if topology.secure:
            secured = {
                "kafka_security_protocol": security.PROTOCOL,
                "kafka_sasl_mechanism": security.MECHANISM,
                "kafka_ca_file": str(self._security.ca_pem),
                "kafka_credentials_file": str(self._security.credentials_file),
                **{f"kafka_{r}_username": p for r, p in security.ROLE_PRINCIPALS.items()},
            }
        return {
            **secured,
            "kafka_bootstrap": components.kafka_bootstrap(ports, topology),
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

    def _write_airflow_password(self, legacy: str | None) -> None:
        """The Airflow admin password lives only in Airflow's 0600 passwords file (older stacks
        kept it in stack.json: it moves over once)."""
        user = self.settings.airflow_user
        password = self.airflow_password() or legacy or secrets.token_urlsafe(12)
        write_secret(self.password_file, json.dumps({user: password}))

    def airflow_password(self) -> str | None:
        """The Airflow admin user's password, or None before the first `up`."""
        try:
            known: dict[str, str] = json.loads(self.password_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return known.get(self.settings.airflow_user)

    @property
    def password_file(self) -> Path:
        return self.home / "airflow" / "passwords.json"

    @property
    def _security(self) -> security.SecurityFiles:
        return security.security_files(self.home)

    def _make_lake_dirs(self, ports: dict[str, int], topology: Topology) -> None:
        """/lake and /checkpoints; on the secured stack made by the HDFS superuser and handed
        to Conveyor's user with mode 750."""
        http = f"http://{LOOPBACK}:{ports['namenode_http']}"
        user = webhdfs.hdfs_user()
        for path in (self.settings.lake_path, self.settings.checkpoint_path):
            if topology.secure:
                components.hdfs_mkdirs(http, path, components.HDFS_SUPERUSER, owner=user)
            else:
                components.hdfs_mkdirs(http, path, user)

    def _wipe(self) -> None:
        children = ["kafka", "hdfs", "airflow", "logs", "security", "stack.json"]
        children += ["postgres", "connect"]
        children += [p.name for p in self.home.glob("kafka-*")]
        for child in children:
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
        topology = self.topology(state)
        quorums = (topology.kafka_names(), topology.datanode_names())
        for group in _stop_rounds(reversed(list(state["components"])), quorums):
            pgids = {name: state["components"][name]["pgid"] for name in group}
            live = [name for name, pgid in pgids.items() if is_running(pgid)]
            for name in live:
                say(f"{name}: stopping")
            stop_groups([pgids[name] for name in live])
            stopped.extend(live)
            for name in group:
                state["components"].pop(name)
        if state.get("ports"):
            self._write_state(state)
        return stopped

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. to rehearse an outage); `up` starts it again."""
        state = self._read_state()
        info = self._component(state, name)
        stop_group(info["pgid"])
        _wait_ports_released(name, info)
        state["components"].pop(name)
        self._write_state(state)

    def kill_component(self, name: str) -> None:
        """`kill -9` one component's process group and wait until it is gone; `status` shows
        it stopped until `start_component` (or `up`) starts it again."""
        state = self._read_state()
        info = self._component(state, name)
        pgid = info["pgid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        wait_until(lambda: not is_running(pgid), 30.0, what=f"{name} to exit")
        _wait_ports_released(name, info)

    def start_component(self, name: str, progress: Progress | None = None) -> None:
        """Start one stopped component of this stack (same ports, same data) and wait until
        it is healthy."""
        say = progress or (lambda _msg: None)
        state = self._read_state()
        info = state["components"].get(name)
        if info is not None and is_running(info["pgid"]):
            say(f"{name}: already running")
            return
        self._start([self._launch(name, state)], state, say, [])

    def _component(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        info: dict[str, Any] | None = state["components"].get(name)
        if info is None:
            known = ", ".join(state["components"]) or "none"
            raise ComponentStartError(
                f"no component named {name!r} was started by this stack (it has: {known})"
            )
        return info

    def status(self) -> dict[str, Any]:
        """Component states and endpoints; the keys CI and users script against are stable."""
        state = self._read_state()
        comps = [
            {
                "name": name,
                "role": components.role_of(name),
                "ports": info.get("ports", []),
                "pgid": info["pgid"],
                "state": "running" if is_running(info["pgid"]) else "stopped",
                "log": info["log"],
            }
            for name, info in state["components"].items()
        ]
        endpoints = state.get("endpoints", {})
        return {
            "home": str(self.home),
            "running": bool(comps) and all(c["state"] == "running" for c in comps),
            "topology": self.topology(state).as_dict(),
            "components": comps,
            **endpoints,
            "airflow_user": self.settings.airflow_user,
            "airflow_password": self.airflow_password(),
            "airflow_password_file": str(self.password_file),
        }


def _describe(topology: Topology) -> str:
    secure = ", secured" if topology.secure else ""
    return f"with {topology.brokers} broker(s) and {topology.datanodes} DataNode(s){secure}"


def _stop_rounds(names: Iterable[str], together: Iterable[list[str]]) -> Iterator[list[str]]:
    """`names` in stop order, cut into groups that stop at once: the members of one list in
    `together` (a Kafka quorum, the DataNodes) that follow each other form one group, every other
    name is a group of its own. Stopped one by one, the last Kafka node has no quorum to leave
    and waits out its SIGKILL (30 s)."""
    kin = {name: i for i, members in enumerate(together) for name in members}
    group: list[str] = []
    for name in names:
        if group and (name not in kin or kin.get(group[0]) != kin[name]):
            yield group
            group = []
        group.append(name)
    if group:
        yield group


def _wait_ports_released(name: str, info: dict[str, Any]) -> None:
    """Wait until a stopped component's listening ports can be bound again, so starting it
    right after does not meet its own last socket."""
    ports = info.get("ports", [])
    wait_until(
        lambda: all(port_is_free(port) for port in ports), 30.0, what=f"{name}'s ports to close"
    )
