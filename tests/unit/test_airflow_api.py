"""The Airflow API client asks a GET or PATCH again after a server error (a busy metadata
database answers HTTP 500), and never repeats a POST that may already have created a run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conveyor import airflow_api
from conveyor.airflow_api import AirflowApi, AirflowApiError


class _Server(ThreadingHTTPServer):
    failures: dict[str, int]  # path -> server errors still to answer
    calls: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        self.server.calls.append(f"{self.command} {self.path}")
        if self.path == "/auth/token":
            body: dict[str, object] = {"access_token": "t"}
        elif self.server.failures.get(self.path, 0) > 0:
            self.server.failures[self.path] -= 1
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"detail": "database is locked"}')
            return
        else:
            body = {"dag_id": "d", "dag_run_id": "r"}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    monkeypatch.setattr(airflow_api, "RETRY_PAUSE_S", 0.01)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.failures, httpd.calls = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _api(server: _Server) -> AirflowApi:
    return AirflowApi(f"http://127.0.0.1:{server.server_address[1]}", "admin", "pw")


def test_a_patch_answered_with_a_server_error_is_asked_again(server: _Server) -> None:
    server.failures["/api/v2/dags/d"] = 2
    _api(server).set_paused("d", True)
    assert server.calls.count("PATCH /api/v2/dags/d") == 3


def test_a_lasting_server_error_ends_in_one_clear_error(server: _Server) -> None:
    server.failures["/api/v2/dags/d"] = 100
    with pytest.raises(AirflowApiError, match=r"PATCH /api/v2/dags/d: HTTP 500: .*locked"):
        _api(server).set_paused("d", True)
    assert server.calls.count("PATCH /api/v2/dags/d") == airflow_api.RETRIES + 1


def test_a_post_is_never_repeated(server: _Server) -> None:
    server.failures["/api/v2/dags/d/dagRuns"] = 1
    with pytest.raises(AirflowApiError, match="HTTP 500"):
        _api(server).trigger("d", {"dag_run_id": "r"})
    assert server.calls.count("POST /api/v2/dags/d/dagRuns") == 1
