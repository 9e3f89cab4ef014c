"""SSO's own pages and the SCIM 2.0 endpoints (/scim/v2/…: bearer token of a provider)."""

from django.urls import path

from revops.sso import scim, views

app_name = "sso"

urlpatterns = [
    path("sso/start/", views.sso_start, name="start"),
    path("scim/v2/ServiceProviderConfig", scim.service_provider_config, name="scim_config"),
    path("scim/v2/ResourceTypes", scim.resource_types, name="scim_resource_types"),
    path("scim/v2/ResourceTypes/<str:name>", scim.resource_types, name="scim_resource_type"),
    path("scim/v2/Schemas", scim.schemas, name="scim_schemas"),
    path("scim/v2/Schemas/<str:schema_id>", scim.schemas, name="scim_schema"),
    path("scim/v2/Users", scim.users, name="scim_users"),
    path("scim/v2/Users/<str:user_id>", scim.user_detail, name="scim_user"),
    path("scim/v2/Groups", scim.groups, name="scim_groups"),
    path("scim/v2/Groups/<str:group_id>", scim.group_detail, name="scim_group"),
    path("scim/v2/.search", scim.root_search, name="scim_search"),
    path("scim/v2/<path:rest>", scim.not_found, name="scim_not_found"),  # a SCIM 404, not the site's page
]
