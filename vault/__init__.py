"""The vault: storage, the catalogue, citizens' encrypted records, keys and the log.

This layer imports nothing else of Tell Once and no web framework.
"""
