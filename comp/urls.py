"""Every page of the comp app, mounted once at /comp/ by ``revops/urls.py``."""

from django.urls import path, register_converter

from comp.views import cs, home, plans, statements, whatif


class MonthConverter:
    """YYYY-MM in the path; the view parses (and 404s) impossible months like 2026-13."""

    regex = r"\d{4}-\d{2}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return value if isinstance(value, str) else f"{value:%Y-%m}"


register_converter(MonthConverter, "statement_month")

app_name = "comp"

urlpatterns = [
    path("plans/", plans.plans, name="plans"),
    path("plans/upload/", plans.plan_upload, name="plan_upload"),
    path("plans/<int:plan_id>/", plans.plan_detail, name="plan_detail"),
    path("plans/<int:plan_id>/plan.yaml", plans.plan_download, name="plan_download"),
    path("plans/whatif/", whatif.whatif_index, name="whatif"),
    path("plans/whatif/new/", whatif.whatif_new, name="whatif_new"),
    path("plans/whatif/<int:draft_id>/", whatif.whatif_draft, name="whatif_draft"),
    path("plans/whatif/<int:draft_id>/run/", whatif.whatif_run_new, name="whatif_run_new"),
    path("plans/whatif/<int:draft_id>/publish/", whatif.whatif_publish, name="whatif_publish"),
    path("plans/whatif/runs/<int:run_id>/", whatif.whatif_run, name="whatif_run"),
    path("statements/", statements.index, name="statements"),
    path("statements/close/approve/", statements.approve_month, name="approve_month"),
    path("statements/close/paid/", statements.mark_paid, name="mark_paid"),
    path("statements/<statement_month:period>/payroll.csv", statements.payroll_csv, name="payroll_csv"),
    path("statements/<int:person_id>/<statement_month:period>/", statements.statement, name="statement"),
    path("statements/<int:person_id>/<statement_month:period>.csv", statements.statement_csv, name="statement_csv"),
    path("statements/<int:person_id>/<statement_month:period>/approve/", statements.approve, name="statement_approve"),
    path("statements/<int:person_id>/estimator/", statements.estimator, name="estimator"),
    path("statements/<int:person_id>/nrr/", cs.cs_outlook, name="cs_outlook"),
    path("statements/lines/<int:line_id>/", statements.line, name="line"),
    path("statements/lines/<int:line_id>/inquiries/", statements.inquiry_raise, name="inquiry_raise"),
    path("statements/inquiries/<int:inquiry_id>/answer/", statements.inquiry_answer, name="inquiry_answer"),
    # Comp's panels on the home page (revops.home).
    path("home/pay/", home.home_pay, name="home_pay"),
    path("home/close/", home.home_close, name="home_close"),
]
