"""Revisions of the archive's schema, oldest first."""
