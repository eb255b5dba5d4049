"""{{ value|local_time }}: '2026-11-22 14:05 (Europe/Paris)'; {{ value|local_time:"bare" }} without the zone
(for a column whose header names it); {{ value|local_time:"seconds" }} with seconds, without the zone."""
from django import template

from oauthmail.times import local

register = template.Library()


@register.filter
def local_time(value, style=""):
    if style == "seconds":
        return local(value, seconds=True, label=False)
    return local(value, label=style != "bare")
