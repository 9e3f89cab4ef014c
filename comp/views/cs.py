"""The CSM's bonus outlook: the running NRR of their book against the CS bonus curve."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from comp import cs_outlook as outlook
from revops.access import people_in_scope
from revops.clock import yesterday_utc


@require_GET
def cs_outlook(request: HttpRequest, person_id: int) -> HttpResponse:
    """Who may see the person's statements may see it: themself, their manager, leaders,
    finance and admins (``people_in_scope``); anyone else, or a person without a CS plan
    in force, is a 404."""
    person = get_object_or_404(people_in_scope(request.user), pk=person_id)
    outlooks = outlook.cs_outlook(person, yesterday_utc())
    if not outlooks:
        raise Http404("No CS bonus plan covers this person today.")
    figures = [(f"cs-curve-{k}", outlook.curve_figure(o)) for k, o in enumerate(outlooks)]
    context = {"person": person, "rows": list(zip(outlooks, figures, strict=True)), "is_own": person == request.user}
    return render(request, "comp/cs_outlook.html", context)
