from django import template

from migrations_ui.facts import Kind

register = template.Library()


@register.filter
def stars(rating: float) -> str:
    """0-5 in half steps as five star glyphs: ★★★½☆ for 3.5."""
    full = int(rating)
    half = rating - full >= 0.5
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - half)


@register.filter
def transfer_label(kind: str | None) -> str:
    return Kind.LABELS.get(kind, "Not possible") if kind else "Not possible"


@register.filter
def severity_count(findings, severity: str) -> int:
    return sum(1 for f in findings if f.severity == severity)
