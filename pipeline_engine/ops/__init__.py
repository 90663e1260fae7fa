"""Use cases, one per module, as plain functions returning result dataclasses."""
