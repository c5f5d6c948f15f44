"""The package version: defined here only (setup.cfg reads it with ``attr:``)."""

__version__ = "0.1.0"
