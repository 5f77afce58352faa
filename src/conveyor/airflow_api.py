"""Airflow's REST API (v2), the few calls Conveyor makes: log in, read a DAG, pause or unpause
it, trigger a run and wait for it, and list its task instances.

`run_dag_once` is what `make demo` does with the provisioning, ingest and maintenance DAGs: a
newcomer's first look at the UI shows real runs, and the DAGs are paused again afterwards so
nothing keeps running Spark once the demo ends.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from conveyor.errors import ConveyorError
from conveyor.stack.process import wait_for
from conveyor.units import as_utc

T = TypeVar("T")

DONE_STATES = ("success", "failed")
ACTIVE_STATES = ("queued", "running")


class AirflowApiError(ConveyorError):
    """Airflow's API refused a call or a run did not succeed; the message says which."""


class _ServerError(AirflowApiError):
    """An HTTP 5xx: the call may succeed when asked again."""


IDEMPOTENT = ("GET", "PATCH")
RETRIES = 3
RETRY_PAUSE_S = 2.0


@dataclass(frozen=True)
class DagRunOutcome:
    """How one triggered run ended: its state, seconds it took, task states counted."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    tasks: dict[str, int]

    def describe_tasks(self) -> str:
        return ", ".join(f"{n} {state}" for state, n in sorted(self.tasks.items())) or "no tasks"


class AirflowApi:
    """A logged-in client of one Airflow API server (simple auth manager or any that issues
    tokens at `/auth/token`)."""

    def __init__(self, base_url: str, user: str, password: str, *, timeout_s: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._token: str | None = None  # the login call itself goes without one
        reply = self._call("POST", "/auth/token", {"username": user, "password": password})
        self._token = str(reply["access_token"])

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; a GET or PATCH answered with a server error (say, the metadata
        database busy) is asked again, up to RETRIES times, before the error is raised."""
        retries = RETRIES if method in IDEMPOTENT else 0
        attempt = 0
        while True:
            try:
                return self._call_once(method, path, body)
            except _ServerError:
                if attempt == retries:
                    raise
                attempt += 1
                time.sleep(RETRY_PAUSE_S * attempt)

    def _call_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            error = _ServerError if exc.code >= 500 else AirflowApiError
            raise error(f"Airflow API {method} {path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise AirflowApiError(
                f"Airflow API at {self.base_url} did not answer: {exc.reason}"
            ) from None

    def get(self, path: str) -> Any:
        """GET any route of the API server (a plugin's too) as this client's user; the
        answer's JSON."""
        return self._call("GET", path)

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the API shows it, None while the dag-processor has not parsed it yet."""
        try:
            reply: dict[str, Any] = self._call("GET", f"/api/v2/dags/{_quote(dag_id)}")
        except AirflowApiError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise
        return reply

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/api/v2/dags/{_quote(dag_id)}", {"is_paused": paused})

    def trigger(self, dag_id: str, body: dict[str, Any]) -> str:
        """Create a run (see Airflow's TriggerDAGRunPostBody); returns its run id."""
        reply = self._call("POST", f"/api/v2/dags/{_quote(dag_id)}/dagRuns", body)
        return str(reply["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        reply: dict[str, Any] = self._call(
            "GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
        )
        return reply

    def runs(self, dag_id: str, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The DAG's runs (the latest 100), only those in `states` when given."""
        query = "".join(f"&state={s}" for s in states)
        reply = self._call("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns?limit=100{query}")
        return list(reply["dag_runs"])

    def active_runs(self, dag_id: str) -> list[str]:
        """Run ids of the DAG's queued or running runs."""
        return [str(r["dag_run_id"]) for r in self.runs(dag_id, ACTIVE_STATES)]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, int]:
        """How many of the run's task instances (mapped ones each) are in each state."""
        reply = self._call(
            "GET",
            f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances?limit=1000",
        )
        return dict(Counter(str(t["state"]) for t in reply["task_instances"]))


def run_dag_once(
    api: AirflowApi, dag_id: str, *, run_id: str, timeout_s: float = 1200
) -> DagRunOutcome:
    """Run `dag_id` once, as its next scheduled interval, and leave it paused.

    The run takes the logical date the scheduler would give its next run, so unpausing the DAG
    (a paused DAG's runs never start) does not make the scheduler add a run of its own for that
    interval. Waits for the run, and for any other run that started meanwhile, then pauses the
    DAG again. Raises AirflowApiError when the DAG never appears or the run does not end in time.
    """
    began = time.monotonic()
    dag = _wait_for(lambda: _schedulable(api.dag(dag_id)), timeout_s, f"DAG {dag_id} to be parsed")
    body: dict[str, Any] = {
        "dag_run_id": run_id,
        "logical_date": dag["next_dagrun_logical_date"],
        "data_interval_start": dag["next_dagrun_data_interval_start"],
        "data_interval_end": dag["next_dagrun_data_interval_end"],
        "note": "triggered by `conveyor demo`",
    }
    api.trigger(dag_id, body)
    api.set_paused(dag_id, False)
    try:
        left = max(1.0, timeout_s - (time.monotonic() - began))

        def ended() -> dict[str, Any] | None:
            run = api.run(dag_id, run_id)
            return run if run["state"] in DONE_STATES else None

        run = _wait_for(ended, left, f"run {run_id} of {dag_id} to end")
        # a run the scheduler started meanwhile (a schedule boundary passed) ends too, so
        # pausing never stalls one halfway
        _wait_for(lambda: not api.active_runs(dag_id), left, f"the other runs of {dag_id}")
    finally:
        api.set_paused(dag_id, True)
    return DagRunOutcome(
        dag_id=dag_id,
        run_id=run_id,
        state=str(run["state"]),
        seconds=_seconds(run),
        tasks=api.task_states(dag_id, run_id),
    )


def _schedulable(dag: dict[str, Any] | None) -> dict[str, Any] | None:
    if dag is None or not dag.get("next_dagrun_logical_date"):
        return None
    return dag


def _wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    try:
        return wait_for(probe, timeout_s, what=what, interval_s=0.5)
    except TimeoutError as exc:
        raise AirflowApiError(str(exc)) from None


def _seconds(run: dict[str, Any]) -> float:
    start, end = run.get("start_date"), run.get("end_date")
    if not start or not end:
        return 0.0
    return (_parse(end) - _parse(start)).total_seconds()


def _parse(moment: str) -> datetime:
    return as_utc(datetime.fromisoformat(moment))


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")
