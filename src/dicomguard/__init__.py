"""dicomguard: find where medical images leak, prove what leaks without leaking it, help fix it."""

__version__ = "0.1.0"
