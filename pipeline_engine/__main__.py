"""`python -m pipeline_engine` runs the `pipe` command."""

from __future__ import annotations

from pipeline_engine.cli import main

if __name__ == "__main__":
    main()
