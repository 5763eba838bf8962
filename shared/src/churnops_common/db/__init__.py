"""The monitoring store: tables (SQLAlchemy Core), migrations, and the processed-events ledger."""
