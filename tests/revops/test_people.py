"""The people directory: scoped on the server, one view for page and htmx fragment."""

from __future__ import annotations

import pytest
from django.urls import reverse

from revops.access import people_in_scope
from revops.models import Role
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(make_user):
    """Two teams with a manager each, plus company-wide roles."""
    east, west = TeamFactory(name="East"), TeamFactory(name="West")
    people = {
        "manager_east": make_user(Role.LEADER, name="Mona Manager"),
        "ae_east": make_user(Role.AE, team=east, name="Eve East"),
        "csm_east": make_user(Role.CSM, team=east, name="Carl East"),
        "ae_west": make_user(Role.AE, team=west, name="Will West"),
        "finance": make_user(Role.FINANCE, name="Fay Finance"),
        "product": make_user(Role.PRODUCT, name="Pia Product"),
    }
    east.manager = people["manager_east"]
    east.save()
    # A manager who is not company-wide: a CSM lead of West.
    people["csm_lead_west"] = make_user(Role.CSM, name="Lee Lead")
    west.manager = people["csm_lead_west"]
    west.save()
    return people


def test_an_ae_sees_only_their_own_data(org):
    assert list(people_in_scope(org["ae_east"])) == [org["ae_east"]]


def test_a_team_manager_sees_themself_and_their_team(org):
    scope = set(people_in_scope(org["csm_lead_west"]))

    assert scope == {org["csm_lead_west"], org["ae_west"]}


@pytest.mark.parametrize("role_key", ["manager_east", "finance"])
def test_company_wide_roles_see_everyone(org, role_key):
    assert people_in_scope(org[role_key]).count() == 7


def test_data_permission_rule_matches_the_scope(org):
    ae_east, ae_west, lead = org["ae_east"], org["ae_west"], org["csm_lead_west"]

    assert ae_east.has_perm("revops.view_person_data", ae_east)
    assert not ae_east.has_perm("revops.view_person_data", ae_west)
    assert lead.has_perm("revops.view_person_data", ae_west)
    assert org["finance"].has_perm("revops.view_person_data", ae_west)


def test_directory_of_an_ae_lists_their_team_only(client, org):
    client.force_login(org["ae_east"])

    response = client.get(reverse("people"))

    assert [p.name for p in response.context["people"]] == ["Carl East", "Eve East"]


def test_directory_filters_by_role_as_an_htmx_fragment(client, org):
    client.force_login(org["manager_east"])

    response = client.get(reverse("people"), {"role": "ae"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="people-table"' in html
    assert "Eve East" in html and "Will West" in html
    assert "Carl East" not in html and "Fay Finance" not in html


def test_directory_full_page_contains_the_fragment(client, org):
    client.force_login(org["manager_east"])

    html = client.get(reverse("people"), {"q": "west"}).content.decode()

    assert "<html" in html and 'id="people-table"' in html and "Will West" in html and "Eve East" not in html


def test_unknown_filter_values_are_ignored_not_errors(client, org):
    client.force_login(org["manager_east"])

    response = client.get(reverse("people"), {"role": "pirate", "team": "abc"})

    assert response.status_code == 200
    assert len(response.context["people"]) == 7


def test_directory_query_count_does_not_grow_with_people(client, org, make_user, django_assert_max_num_queries):
    client.force_login(org["manager_east"])
    with django_assert_max_num_queries(8) as small:
        client.get(reverse("people"))
    for _ in range(30):
        make_user(Role.AE, team=TeamFactory())
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(reverse("people"))


def test_the_people_list_sorts_and_pages_with_its_state_in_the_url(make_user, team):
    from django.test import Client

    from revops.models import Role

    leader = make_user(Role.LEADER, name="Aaron Leader")
    for n in range(55):
        make_user(Role.AE, name=f"Rep {n:02d}", team=team)
    client = Client()
    client.force_login(leader)

    first = client.get("/people/", {"role": "ae"}).content.decode()
    second = client.get("/people/", {"role": "ae", "page": "2"}).content.decode()
    by_team = client.get("/people/", {"sort": "team"}, HTTP_HX_REQUEST="true").content.decode()

    assert "People 1–50 of 55" in first and "Rep 00" in first and "Rep 50" not in first
    assert "People 51–55 of 55" in second and "Rep 54" in second
    assert 'href="?role=ae&amp;page=2"' in first  # the filter survives paging
    assert by_team.lstrip().startswith('<div id="people-table">')
