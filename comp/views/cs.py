"""The CSM's bonus outlook: the running NRR of their book against the CS bonus curve."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from comp.cs_outlook import cs_outlooks, curve_figure
from revops.access import people_in_scope
from revops.clock import yesterday_utc


@require_GET
def cs_outlook(request: HttpRequest, person_id: int) -> HttpResponse:
    """The person's own, their manager's, and finance's and admins' (as their statements)."""
    person = get_object_or_404(people_in_scope(request.user), pk=person_id)
    outlooks = cs_outlooks(person=person, as_of=yesterday_utc())
    if not outlooks:
        raise Http404("No CS bonus plan covers this person today.")
    figures = [(f"cs-curve-{k}", curve_figure(o)) for k, o in enumerate(outlooks)]
    context = {"person": person, "rows": list(zip(outlooks, figures, strict=True)), "is_own": person == request.user}
    return render(request, "comp/cs_outlook.html", context)
