"""Runs stage commands: a parallel scheduler and process groups that stop cleanly."""
