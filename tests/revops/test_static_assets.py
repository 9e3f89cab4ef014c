"""The vendored Plotly is the partial "finance" bundle (scatter, bar, waterfall, …: about a
quarter of the full one). Every trace type a chart of the product draws must be in it, or
that chart would be an empty box in the browser with only a console error."""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "static" / "vendor" / "plotly-finance-3.7.0.min.js"
APPS = ("accounts", "usage", "comp", "forecasting", "reviews", "revops", "demo")


def bundle_traces() -> set[str]:
    return set(re.findall(r'moduleType:"trace",name:"([a-z0-9]+)"', BUNDLE.read_text(encoding="utf-8")))


def plotly_trace_names() -> set[str]:
    classes = (getattr(go, name) for name in dir(go) if name[:1].isupper())  # go loads them lazily
    return {cls.__name__.lower() for cls in classes if isinstance(cls, type) and issubclass(cls, BaseTraceType)}


def traces_drawn() -> set[str]:
    names = plotly_trace_names()
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            for name in re.findall(r"""["']type["']\s*:\s*["']([a-z0-9]+)["']""", path.read_text(encoding="utf-8")):
                if name in names:
                    found.add(name)
            found |= {
                name.lower() for name in re.findall(r"\bgo\.([A-Z][a-z]+)\(", path.read_text()) if name.lower() in names
            }
    return found


def test_every_trace_the_product_draws_is_in_the_vendored_bundle():
    drawn = traces_drawn()
    assert {"scatter", "bar", "waterfall"} <= drawn  # the scan sees the charts at all
    assert drawn <= bundle_traces(), f"not in the bundle: {sorted(drawn - bundle_traces())}"


def test_the_bundle_is_the_light_one():
    assert BUNDLE.stat().st_size < 1_500_000
    assert not list((ROOT / "static" / "vendor").glob("plotly-[0-9]*.min.js")), "the full bundle is back"
