"""First-party provider plugins. They register through the `preflight.providers` entry points like any plugin."""
