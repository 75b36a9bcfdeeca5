"""Accounts, their members and roles."""
