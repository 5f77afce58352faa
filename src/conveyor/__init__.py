"""Conveyor: Kafka event streams into Delta Lake tables on HDFS, exactly once, run by Airflow."""

__version__ = "0.1.0"
