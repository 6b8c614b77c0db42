"""Subcommands of the semcom CLI (one module each)."""
