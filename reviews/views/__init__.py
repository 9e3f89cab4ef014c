"""The reviews app's pages: one module per screen family, routed by reviews/urls.py."""
