"""Alembic revisions (Alembic skips this file; it makes the folder a package that ships)."""
