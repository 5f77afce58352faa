"""Operators: thin shells over the Conveyor library; clients come from the hooks."""
