"""The back-office ingest service, its storage and its reports."""
