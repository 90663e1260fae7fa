"""Git access through gitpython: root, ignore files, files at a revision."""
