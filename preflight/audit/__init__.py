"""Consultant audits: an inventory of customer tenants, run in parallel, with consolidated reports."""
