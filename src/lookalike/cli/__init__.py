"""Command-line interface: ``lookalike.cli.main:main`` is the entry point; one module per command group."""
