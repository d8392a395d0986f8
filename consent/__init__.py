"""Consent: grants, delegations, access events, decisions, challenges and receipts."""
