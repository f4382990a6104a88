"""Alembic environment and versions; installed as ``tracker.migrations``."""
