"""Conveyor's Airflow plugin: hooks, operators, sensors and the Conveyor page (grows per issue)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class ConveyorPlugin(AirflowPlugin):
    """Registers Conveyor with Airflow; heavy imports happen inside hooks and views only."""

    name = "conveyor"
