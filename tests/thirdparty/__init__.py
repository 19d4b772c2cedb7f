"""Plugins that exist only for tests: they prove the core works with a provider it has never heard of."""
