"""The forecasting app's pages: one module per screen family, routed by forecasting/urls.py."""
