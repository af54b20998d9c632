"""{% get_help_for run as help %}: what the run page's "Get help from IT" block shows."""

from django import template

from actions.views.tickets import get_help_context

register = template.Library()


@register.simple_tag
def get_help_for(run) -> dict:
    return get_help_context(run)
