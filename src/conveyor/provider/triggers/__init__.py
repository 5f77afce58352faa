"""Triggers: waits that run in Airflow's triggerer instead of holding a worker slot."""
