"""Saved views: a person saves a list's filters and sort under a name and opens it later."""

from __future__ import annotations

import pytest
from django.test import Client

from revops.models import Role, SavedView

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_view_saved_from_the_book_keeps_its_filters_and_sort_but_not_the_page(make_user):
    ae = make_user(Role.AE)
    client = client_for(ae)

    response = client.post(
        "/saved-views/",
        {"list": "book", "name": "  Enterprise   escalations "},
        headers={"referer": "http://testserver/book/?segment=enterprise&band=escalate&sort=burn&page=3"},
    )

    view = SavedView.objects.get()
    assert (view.user, view.list_key, view.name, view.query) == (
        ae,
        "book",
        "Enterprise escalations",
        "segment=enterprise&band=escalate&sort=burn",
    )
    assert response["Location"] == "/book/?segment=enterprise&band=escalate&sort=burn"
    page = client.get("/book/").content.decode()
    assert '<a href="/book/?segment=enterprise&amp;band=escalate&amp;sort=burn">Enterprise escalations</a>' in page
    assert "Saved views (1)" in page


def test_a_referer_from_another_page_or_host_is_not_taken_for_the_list(make_user):
    ae = make_user(Role.AE)
    client = client_for(ae)

    client.post(
        "/saved-views/",
        {"list": "book", "name": "Mine", "query": "segment=smb"},
        headers={"referer": "http://evil.example/book/?segment=enterprise"},
    )

    assert SavedView.objects.get().query == "segment=smb"


def test_names_are_checked_and_unique_per_list(make_user):
    ae = make_user(Role.AE)
    client = client_for(ae)
    client.post("/saved-views/", {"list": "book", "name": "Mine"})

    duplicate = client.post("/saved-views/", {"list": "book", "name": "Mine"}, follow=True)
    empty = client.post("/saved-views/", {"list": "book", "name": "   "}, follow=True)
    unknown = client.post("/saved-views/", {"list": "secrets", "name": "x"})

    assert "You already have a view named “Mine” here." in duplicate.content.decode()
    assert "Give the view a name." in empty.content.decode()
    assert unknown.status_code == 400 and "no list 'secrets'" in unknown.content.decode()
    assert SavedView.objects.count() == 1


def test_only_its_owner_can_delete_a_view(make_user):
    ae, other = make_user(Role.AE), make_user(Role.AE)
    view = SavedView.objects.create(user=ae, list_key="alerts", name="Critical", query="kind=below_floor")

    assert client_for(other).post(f"/saved-views/{view.pk}/delete/").status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()
    response = client_for(ae).post(f"/saved-views/{view.pk}/delete/")
    assert response["Location"] == "/alerts/" and not SavedView.objects.exists()
