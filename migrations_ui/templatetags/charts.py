"""Chart sections for pages of other apps (the host page): {% load charts %}{% host_slots_chart host %}."""

from django import template

from migrations_ui.live.chart_data import host_slots_chart as slots_chart

register = template.Library()


@register.inclusion_tag("partials/host_slots_chart.html")
def host_slots_chart(host) -> dict:
    return {"chart": slots_chart(host)}
