"""The revops app's pages: one module per screen family, routed by revops/urls.py."""
