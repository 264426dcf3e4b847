"""The ``rlhf`` command line (Typer): one module per command group."""
