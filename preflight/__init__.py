"""preflight: will SMTP from a third-party service work for this mailbox, and if not, why and how to fix it."""

__version__ = "0.1.0"
