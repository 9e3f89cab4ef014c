"""Enterprise sign-in: SSO through OpenID Connect and SAML identity providers, and SCIM 2.0
provisioning. A Django app inside the core (label ``sso``): people live in ``revops``."""
