"""Hooks: each owns one Airflow connection type and builds its client lazily."""
