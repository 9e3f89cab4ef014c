from django.urls import path, register_converter

from comp import statement_views as views


class MonthConverter:
    """YYYY-MM in the path; the view parses (and 404s) impossible months like 2026-13."""

    regex = r"\d{4}-\d{2}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return value if isinstance(value, str) else f"{value:%Y-%m}"


register_converter(MonthConverter, "statement_month")

app_name = "statements"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:person_id>/<statement_month:period>/", views.statement, name="statement"),
    path("<int:person_id>/<statement_month:period>.csv", views.statement_csv, name="csv"),
    path("<int:person_id>/<statement_month:period>/approve/", views.approve, name="approve"),
    path("<int:person_id>/estimator/", views.estimator, name="estimator"),
    path("lines/<int:line_id>/", views.line, name="line"),
    path("lines/<int:line_id>/inquiries/", views.inquiry_raise, name="inquiry_raise"),
    path("inquiries/<int:inquiry_id>/answer/", views.inquiry_answer, name="inquiry_answer"),
]
