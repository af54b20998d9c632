from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.4231 → "42%"; no denominator → "–"."""
    return "–" if value is None else f"{value * 100:.0f}%"
