"""Sensors: wait for something in the lake before a task runs."""
