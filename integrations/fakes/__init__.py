"""Local fake CRM servers: the documented JSON shapes of the Salesforce REST and HubSpot
CRM v3 endpoints the connectors use, with paging, errors and rate limits.

They serve the tests (started in a thread on a free port, the real client pointed at
them), the bench and ``manage.py crm_demo`` for ``make run``'s demo. Nothing here is
imported by the connectors themselves.
"""
