"""Validators shared by Applications and Accounts."""
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# As in the registries our users know (seed 000): these characters cannot appear in an identifier.
FORBIDDEN_IDENTIFIER_CHARACTERS = "/~\\<>,;#&'\"$?*|.[]{}()+ "


def validate_identifier(value):
    for char in value:
        if char in FORBIDDEN_IDENTIFIER_CHARACTERS or char.isspace():
            shown = _("a space") if char.isspace() else f"“{char}”"
            raise ValidationError(
                _("The identifier cannot contain %(char)s. Forbidden: %(all)s and spaces."),
                code="forbidden_character",
                params={"char": shown, "all": FORBIDDEN_IDENTIFIER_CHARACTERS.strip()},
            )


validate_identifier.help_text = gettext_lazy(
    "Entered at creation only. Cannot contain / ~ \\ < > , ; # & ' \" $ ? * | . [ ] { } ( ) + or spaces."
)

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
MICROSOFT_TENANT_ALIASES = ("common", "organizations", "consumers")


def validate_guid(value):
    if not GUID_RE.match(value):
        raise ValidationError(
            _("“%(value)s” is not a GUID like 00000000-0000-0000-0000-000000000000."),
            code="invalid_guid",
            params={"value": value},
        )


def validate_microsoft_tenant(value):
    if value.lower() in MICROSOFT_TENANT_ALIASES or GUID_RE.match(value) or DOMAIN_RE.match(value):
        return
    raise ValidationError(
        _(
            "“%(value)s” is not a tenant: enter the directory (tenant) ID, a domain such as "
            "contoso.onmicrosoft.com, or common, organizations or consumers."
        ),
        code="invalid_tenant",
        params={"value": value},
    )
