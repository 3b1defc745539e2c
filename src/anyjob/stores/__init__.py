"""Stores: where a :class:`~anyjob.JobManager` keeps its job records.

* :class:`Store` is the protocol every store implements: async methods, records
  as plain JSON-safe data, filtered and paginated queries, and a change feed so
  several managers can share one store.
* :class:`MemoryStore` keeps records in this process's memory (the default).
* :class:`SQLiteStore` keeps them in an SQLite database file: durable, no server.
* :class:`PostgresStore` keeps them in PostgreSQL, shared by many processes and machines.
"""

from anyjob._records import JobRecord as JobRecord
from anyjob.stores._base import JobQuery as JobQuery
from anyjob.stores._base import RecordUpdate as RecordUpdate
from anyjob.stores._base import Store as Store
from anyjob.stores._base import StoreChange as StoreChange
from anyjob.stores._base import StoreFeed as StoreFeed
from anyjob.stores._memory import MemoryStore as MemoryStore
from anyjob.stores._postgres import PostgresStore as PostgresStore
from anyjob.stores._sqlite import SQLiteStore as SQLiteStore

__all__ = [
    "JobQuery",
    "JobRecord",
    "MemoryStore",
    "PostgresStore",
    "RecordUpdate",
    "SQLiteStore",
    "Store",
    "StoreChange",
    "StoreFeed",
]
