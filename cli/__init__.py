"""The ``gpsr`` command line (typer); thin wrappers over the library."""
