"""Conveyor's Airflow plugin: the Conveyor page in the UI. The hooks, operators, sensors and
triggers are the installed package's provider (`conveyor.provider`).

The page is a FastAPI app mounted at `/conveyor` (`conveyor_plugin.ui.app`), linked from
Airflow's navigation as an external view. Importing this module stays light: FastAPI and
Airflow's security module are already loaded in the API server; the lake and Kafka clients are
imported only when a request comes in.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

PAGE_ROUTE = "conveyor"


class ConveyorPlugin(AirflowPlugin):
    """Registers Conveyor with Airflow; heavy imports happen inside hooks and views only."""

    name = "conveyor"

    @property
    def fastapi_apps(self) -> list[dict[str, object]]:  # type: ignore[override]
        from conveyor_plugin.ui.app import URL_PREFIX, conveyor_app

        return [{"app": conveyor_app, "url_prefix": URL_PREFIX, "name": "Conveyor"}]

    external_views = [  # noqa: RUF012 - Airflow reads this class attribute
        {
            "name": "Conveyor",
            "href": "conveyor/",
            "url_route": PAGE_ROUTE,
            "destination": "nav",
            "category": "browse",
        }
    ]
