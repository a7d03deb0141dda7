"""Bedside: prompts post-operative patients through their exercises and keeps the record."""

__version__ = "0.1.0"
