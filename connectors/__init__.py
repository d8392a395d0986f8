"""Connectors: departments, the OAuth server core, the data broker and notifications."""
