"""The ``newsclass`` command (Typer), one module per command group: see main.py."""

from worker.cli.main import app, main

__all__ = ["app", "main"]
