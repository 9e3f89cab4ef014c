"""Changes to audited models record who made them (django-pghistory)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from revops.models import Role, Team

pytestmark = pytest.mark.django_db


def test_a_change_made_through_a_page_records_the_person_who_made_it(client, make_user, with_totp):
    admin = make_user(Role.ADMIN)
    with_totp(admin)
    team = Team.objects.create(name="Old name")
    client.force_login(admin)

    response = client.post(reverse("admin:revops_team_change", args=[team.pk]), {"name": "New name", "manager": ""})

    assert response.status_code == 302
    event = Team.pgh_event_model.objects.filter(pgh_obj=team, name="New name").get()
    assert event.pgh_context.metadata["user"] == admin.pk
    assert event.pgh_context.metadata["url"] == reverse("admin:revops_team_change", args=[team.pk])


def test_changes_made_outside_requests_are_still_recorded():
    team = Team.objects.create(name="Scripted")
    Team.objects.filter(pk=team.pk).update(name="Updated by a bulk update")

    names = list(Team.pgh_event_model.objects.filter(pgh_obj=team).order_by("pgh_id").values_list("name", flat=True))
    assert names == ["Scripted", "Updated by a bulk update"]


def test_a_delete_is_recorded_with_the_row_as_it_was():
    team = Team.objects.create(name="Short-lived")
    pk = team.pk
    Team.objects.filter(pk=pk).delete()

    labels = list(
        Team.pgh_event_model.objects.filter(pgh_obj_id=pk).order_by("pgh_id").values_list("pgh_label", "name")
    )
    assert labels == [("insert", "Short-lived"), ("delete", "Short-lived")]


def test_revoking_a_key_is_recorded_with_who_did_it(client, make_user, with_totp):
    from revops.api_keys import api_key_create
    from revops.models import ApiKey

    finance = make_user(Role.FINANCE)
    with_totp(finance)
    key, _ = api_key_create(name="billing", scopes=["events:write"], created_by=finance)
    client.force_login(finance)

    client.post(reverse("usage:api_key_revoke", args=[key.pk]))

    events = ApiKey.pgh_event_model.objects.filter(pgh_obj=key).order_by("pgh_id")
    assert [event.pgh_label for event in events] == ["insert", "update"]
    assert events.last().revoked_at is not None and events.last().pgh_context.metadata["user"] == finance.pk
    assert not hasattr(events.last(), "hashed_key")  # the secret's hash stays out of the trail


def test_form_tokens_are_forgotten_after_two_days(make_user):
    import datetime as dt
    import uuid

    from django.utils import timezone

    from revops.idempotency import forget_old_submissions
    from revops.models import FormSubmission

    person = make_user(Role.AE)
    now = timezone.now()
    old = FormSubmission.objects.create(token=uuid.uuid4(), user=person, created_at=now - dt.timedelta(days=3))
    recent = FormSubmission.objects.create(token=uuid.uuid4(), user=person, created_at=now - dt.timedelta(hours=1))

    assert forget_old_submissions(now=now) == 1
    assert list(FormSubmission.objects.values_list("pk", flat=True)) == [recent.pk] and old.pk != recent.pk
