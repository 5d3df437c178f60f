"""CLI command modules; each exposes typer commands registered in ``registry``."""
