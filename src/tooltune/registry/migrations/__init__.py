"""Alembic migrations of the registry schema; ``tooltune.registry.db.upgrade`` runs them."""
