"""The comp app's pages: one module per screen family, routed by comp/urls.py."""
