"""Times as users read them: in the configured time zone (TIME_ZONE), with the zone's name."""
from datetime import UTC, date, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import lazy
from django.utils.text import format_lazy


def zone_name():
    return timezone.get_current_timezone_name()


def as_datetime(value):
    """A datetime from a datetime or an ISO 8601 string (as JSON keeps it); None otherwise."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return parse_datetime(value)
    return None


def local(value, *, seconds=False, label=True):
    """'2026-11-22 14:05 (Europe/Paris)'; '' for no time. A date is shown as it is."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    moment = as_datetime(value)
    if moment is None:
        return ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    text = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} ({zone_name()})" if label else text


def with_zone(text):
    """A column header naming the zone its times are in: 'access token expires (Europe/Paris)'."""
    return format_lazy("{} ({})", text, lazy(zone_name, str)())
