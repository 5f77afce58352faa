"""The Conveyor page inside Airflow's UI: a FastAPI app (mounted at `/conveyor`) with the page
and its JSON API, shown in Airflow's navigation as an external view.

Airflow does not authenticate plugin apps, so every route here depends on Airflow's own
security dependency: the caller needs a valid Airflow JWT (the UI's session cookie, or an
`Authorization: Bearer` header) and access to the plugins view; anonymous requests get 401.
The overview is cached for a few seconds so a page left open costs the lake little.
"""
