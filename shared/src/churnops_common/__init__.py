"""ChurnOps shared spine: settings, event contracts, routing, buses, stores, bridge and CLI."""

__version__ = "0.1.0"
