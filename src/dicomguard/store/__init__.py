"""Persistence of scan results: the database schema and the only code that speaks SQL.

SQLite by default (a file in the user data directory), PostgreSQL or any SQLAlchemy URL by choice.
"""

from dicomguard.store.db import ScanSummary, Store, default_db_path, resolve_url
from dicomguard.store.errors import (
    AmbiguousScanId,
    RawPHIError,
    ScanNotFound,
    StoreError,
)

__all__ = [
    "AmbiguousScanId",
    "RawPHIError",
    "ScanNotFound",
    "ScanSummary",
    "Store",
    "StoreError",
    "default_db_path",
    "resolve_url",
]
