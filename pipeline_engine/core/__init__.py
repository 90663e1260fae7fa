"""Lowest layer: hashing, object layout, atomic file writes, YAML, progress. Imports only errors."""
