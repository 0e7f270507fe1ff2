"""Alembic migration scripts, shipped inside the package (``indexer.store.migrate`` runs them)."""
