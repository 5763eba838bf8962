"""The per-run quality report: one self-contained HTML file (plots inlined), PDF when possible.

Plots come from the profile's bins and the batch's counts, so the report never reloads the
reference data. PDF goes through WeasyPrint where it (and its system libraries) import; where it
does not, a warning is logged and the HTML stands alone.
"""

from __future__ import annotations

import base64
import io
import logging
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from churnops_common.drift import DriftVerdict, headline
from churnops_quality.data_profile import DataProfile, FeatureShape
from churnops_quality.psi import FeaturePsi, PsiResult
from churnops_quality.validation import Verdict

if TYPE_CHECKING:
    from jinja2 import Environment
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
# WeasyPrint and fontTools log each layout step and font subset at INFO: hundreds of lines per
# PDF that bury the worker's own log. Their warnings still show (unless set stricter), except the
# one about the system's HarfBuzz version, repeated for every PDF.
for _noisy in ("weasyprint", "fontTools"):
    if logging.getLogger(_noisy).level == logging.NOTSET:
        logging.getLogger(_noisy).setLevel(logging.WARNING)
logging.getLogger("weasyprint").addFilter(lambda record: "HarfBuzz" not in record.getMessage())

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data quality: {{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 72rem; }
.verdict { padding: .6rem 1rem; border-radius: 6px; font-weight: 600; font-size: 1.1rem; }
.accepted { background: #e3f5e6; } .rejected, .drift { background: #fbe4e4; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc;
padding: .25rem .6rem; text-align: left; } .breach { color: #b00020; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; } .grid img { width: 32rem; }
.small { color: #555; font-size: .9rem; }
</style></head><body>
<h1>Data quality report</h1>
<p><b>{{ title }}</b> ({{ kind }}) &middot; run {{ run_id }} &middot; {{ rows }} rows
{% if baseline_version %}&middot; baseline v{{ baseline_version }}{% endif %}</p>
<p class="verdict {{ css }}" id="headline">{{ headline }}</p>
{% if drifted %}<p>Drifted features (PSI &ge; {{ threshold }}, worst first):</p>
<ul id="drifted">{% for name, value in drifted %}<li data-feature="{{ name }}">{{ name }}:
PSI {{ "%.3f" | format(value) }}</li>{% endfor %}</ul>{% endif %}
{% if evidently_href %}<p><a href="{{ evidently_href }}">Evidently drift page of this batch</a>
(same verdict: its drift test is this PSI at the same threshold)</p>{% endif %}
{% if issues %}<h2>Findings</h2><table><tr><th>severity</th><th>check</th><th>detail</th></tr>
{% for i in issues %}<tr><td>{{ i.severity }}</td><td>{{ i.code }}</td><td>{{ i.message }}</td>
</tr>{% endfor %}</table>{% endif %}
{% if profile %}<h2>What the file holds</h2>
<p>{{ profile.rows }} rows{% if profile.target_rate is not none %}; target rate
{{ "%.1f" | format(100 * profile.target_rate) }}% positive{% endif %};
{{ profile.features | length }} features profiled.</p>
<table><tr><th>feature</th><th>missing</th><th>most common bin</th></tr>
{% for f, top in missingness %}<tr><td>{{ f.name }}</td>
<td>{{ "%.1f" | format(100 * f.missing) }}%</td><td>{{ top }}</td></tr>{% endfor %}</table>
{% if shapes %}<h2>Distributions</h2><div class="grid">
{% for name, png in shapes %}<img alt="{{ name }}" src="data:image/png;base64,{{ png }}">
{% endfor %}</div>{% endif %}{% endif %}
{% if psi_rows %}<h2>Population Stability Index</h2>
<p>Threshold {{ threshold }}; max PSI {{ "%.4f" | format(max_psi) }}.</p>
<img alt="PSI per feature" src="data:image/png;base64,{{ psi_chart }}">
<table><tr><th>feature</th><th>PSI</th></tr>{% for name, value in psi_rows %}
<tr{% if value >= threshold %} class="breach"{% endif %}><td>{{ name }}</td>
<td>{{ "%.4f" | format(value) }}</td></tr>{% endfor %}</table>
<h2>Reference vs current distributions</h2><div class="grid">
{% for name, png in distributions %}<img alt="{{ name }}" src="data:image/png;base64,{{ png }}">
{% endfor %}</div>{% endif %}
</body></html>
"""


class ReportInput(BaseModel):
    """Everything the report shows; stored as JSON beside the report until it is rendered."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    title: str
    kind: str
    verdict: Verdict
    psi: PsiResult | None
    threshold: float
    baseline_version: int | None = None
    extra_notes: list[str] = Field(default_factory=list)
    profile: DataProfile | None = None  # what an accepted file holds (none for a rejected one)

    @property
    def drift(self) -> DriftVerdict | None:
        return self.psi.verdict(self.threshold) if self.psi is not None else None


def next_step(data: ReportInput) -> str | None:
    """What the platform does with an accepted file, in words (see `service.followups`)."""
    if data.verdict.status != "accepted":
        return None
    if data.kind == "training":
        return "training requested"
    drift = data.drift
    if data.kind == "new_data" and drift is not None and drift.has_drift:
        return "retrain requested"
    return None


def verdict_words(data: ReportInput) -> str:
    """The report's headline: 'accepted, drift in 8 of 14 features: retrain requested'."""
    return headline(data.verdict.status, data.drift, next_step(data), data.verdict.reason)


@cache
def _environment() -> Environment:
    from jinja2 import Environment, select_autoescape  # imported when a report is drawn

    return Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _figure(width: float, height: float) -> Figure:
    """A new figure; matplotlib is imported here, not with the module: quality's verdict path
    imports this module for `ReportInput` and never draws."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def psi_chart(psi: PsiResult, threshold: float) -> str:
    features = sorted(psi.features, key=lambda f: f.psi)
    figure = _figure(7, 0.3 * len(features) + 1.2)
    axes = figure.subplots()
    colours = ["#b00020" if f.psi >= threshold else "#4472c4" for f in features]
    axes.barh([f.name for f in features], [f.psi for f in features], color=colours)
    axes.axvline(threshold, color="#444", linestyle="--", label=f"threshold {threshold}")
    axes.set_xlabel("PSI")
    axes.legend(loc="lower right")
    return _png(figure)


def distribution_chart(feature: FeaturePsi) -> str:
    figure = _figure(6, 3)
    axes = figure.subplots()
    positions = np.arange(len(feature.labels))
    axes.bar(positions - 0.2, feature.ref_proportions, 0.4, label="reference", color="#a5a5a5")
    axes.bar(positions + 0.2, feature.cur_proportions, 0.4, label="current", color="#4472c4")
    axes.set_xticks(positions, feature.labels, rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("share of rows")
    axes.set_title(f"{feature.name} (PSI {feature.psi:.3f})", fontsize=9)
    axes.legend(fontsize=7)
    return _png(figure)


def shape_chart(feature: FeatureShape) -> str:
    figure = _figure(6, 3)
    axes = figure.subplots()
    positions = np.arange(len(feature.labels))
    axes.bar(positions, feature.proportions, 0.6, color="#4472c4")
    axes.set_xticks(positions, feature.labels, rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("share of rows")
    axes.set_title(feature.name, fontsize=9)
    return _png(figure)


def _top_bin(feature: FeatureShape) -> str:
    if not feature.proportions:
        return "-"
    best = int(np.argmax(feature.proportions))
    return f"{feature.labels[best]} ({100 * feature.proportions[best]:.1f}%)"


def render_html(data: ReportInput, evidently_href: str | None = None) -> str:
    psi = data.psi
    features = sorted(psi.features, key=lambda f: -f.psi) if psi else []
    drift = data.drift
    profile = data.profile
    missing = sorted(profile.features, key=lambda f: -f.missing) if profile else []
    return (
        _environment()
        .from_string(_TEMPLATE)
        .render(
            title=data.title,
            kind=data.kind,
            run_id=data.run_id,
            rows=data.verdict.rows,
            baseline_version=data.baseline_version,
            headline=verdict_words(data),
            css="drift" if drift is not None and drift.has_drift else data.verdict.status,
            drifted=list(drift.drifted.items()) if drift is not None else [],
            evidently_href=evidently_href,
            issues=data.verdict.issues,
            profile=profile,
            missingness=[(f, _top_bin(f)) for f in missing],
            # Without a PSI (a first training set) the file's own distributions are shown.
            shapes=[(f.name, shape_chart(f)) for f in profile.features]
            if profile and not features
            else [],
            threshold=data.threshold,
            max_psi=psi.max_psi if psi else None,
            psi_rows=[(f.name, f.psi) for f in features],
            psi_chart=psi_chart(psi, data.threshold) if features and psi else "",
            distributions=[(f.name, distribution_chart(f)) for f in features],
        )
    )


def render_pdf(html: str) -> bytes | None:
    """PDF bytes via WeasyPrint, or None (with a logged warning) where it cannot run here."""
    try:
        from weasyprint import HTML  # type: ignore[import-not-found,unused-ignore]

        pdf: bytes = HTML(string=html).write_pdf()
    except Exception as exc:  # ImportError, or OSError for missing Pango/Cairo libraries
        _warn_no_pdf(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return None
    return pdf


@cache
def _warn_no_pdf(why: str) -> None:
    # Logged once per process and cause: the HTML report is complete without it.
    log.warning("PDF reports disabled (WeasyPrint unavailable: %s); HTML only", why)
