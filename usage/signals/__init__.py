"""Usage signals: the shared metrics, health, alerts and notifications, with their read API.
Reads what ``usage.ingestion`` stored (rollups); never writes usage."""
