"""The catalog: one YAML file (`conveyor.yaml`) that declares every stream, validated into frozen,
typed objects before anything is touched.

`load_catalog(path)` either returns a `Catalog` or raises one `CatalogError` listing every problem
it found, one line each: `<file>: <path.inside.document>: <what is wrong>`.

Table locations are stored relative to the lake (`clicks/silver`); `table_uri`, `ledger_uri` and
`checkpoint_uri` join them with the settings, so checkpoints never live inside a table folder.
Modules: `values` (durations, sizes, names), `models`, `checks` (across fields and streams),
`loading` (YAML and error messages).
"""

from __future__ import annotations

from conveyor.catalog.loading import load_catalog, resolve_catalog
from conveyor.catalog.models import (
    CHECKPOINT_INTERVAL,
    DELTA_MIN_VACUUM_RETENTION,
    LEDGER_PATH,
    LEDGER_PROPERTIES,
    AnalyticsSpec,
    Catalog,
    CatalogError,
    CdcTable,
    EventSchema,
    FieldSpec,
    Layer,
    MaintenancePolicy,
    ServiceLevels,
    StreamSpec,
    TableRef,
    TableSpec,
    TablesSpec,
    TopicConfigs,
    TopicSpec,
    UnknownStream,
    checkpoint_uri,
    ledger_uri,
    table_properties,
    table_uri,
)

__all__ = [
    "CHECKPOINT_INTERVAL",
    "DELTA_MIN_VACUUM_RETENTION",
    "LEDGER_PATH",
    "LEDGER_PROPERTIES",
    "AnalyticsSpec",
    "Catalog",
    "CatalogError",
    "CdcTable",
    "EventSchema",
    "FieldSpec",
    "Layer",
    "MaintenancePolicy",
    "ServiceLevels",
    "StreamSpec",
    "TableRef",
    "TableSpec",
    "TablesSpec",
    "TopicConfigs",
    "TopicSpec",
    "UnknownStream",
    "checkpoint_uri",
    "ledger_uri",
    "load_catalog",
    "resolve_catalog",
    "table_properties",
    "table_uri",
]
