"""Stripe as a billing source: customers ↔ accounts, usage, invoices, credit notes and refunds."""
