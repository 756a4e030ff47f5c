"""Alembic migrations of the call-record schema, run by :meth:`CallStore.migrate`."""
