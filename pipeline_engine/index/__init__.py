"""The project index: everything one command knows about a project, and the services commands share."""
