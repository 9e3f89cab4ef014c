"""The accounts app's pages: one module per screen family, routed by accounts/urls.py."""
