"""Alembic migrations of the bin-manager schema, applied on start by `db.engine.migrate`."""
