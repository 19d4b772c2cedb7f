"""SMTP network probe: test the server itself, phase by phase."""
