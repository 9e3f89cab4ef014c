"""The usage app's pages: one module per screen family, routed by usage/urls.py."""
