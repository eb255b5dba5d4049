"""Validators shared by Applications and Accounts."""
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# As in the registries our users know (seed 000): these characters cannot appear in an identifier.
FORBIDDEN_IDENTIFIER_CHARACTERS = "/~\\<>,;#&'\"$?*|.[]{}()+ "


# Characters that change how text around them is shown (U+202E turns "moc.lagrats" into "starg.com")
# or show nothing at all. No name or identifier needs them; ZWJ and ZWNJ stay allowed in names, where
# Persian and Indic spellings use them.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2060\u2800\u3164\ufeff\uffa0"


def _shown(char):
    """A character as an error message names it: U+202E (RIGHT-TO-LEFT OVERRIDE)."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} ({name})" if name else f"U+{ord(char):04X}"


def _hidden_character(value, *, strict):
    """The first control, bidirectional or invisible character of `value`, or None. `strict` (identifiers):
    also every other format, private-use, unassigned or separator character."""
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" or char in BIDI_CONTROLS or char in INVISIBLE:
            return char
        if strict and (category[0] in "CZ" and char != " "):
            return char
    return None


def validate_visible_text(value):
    """Names: no control, bidirectional or invisible character."""
    char = _hidden_character(value, strict=False)
    if char is not None:
        raise ValidationError(
            _("%(char)s is a control, bidirectional or invisible character: remove it."),
            code="hidden_character", params={"char": _shown(char)},
        )


def validate_identifier(value):
    char = _hidden_character(value, strict=True)
    if char is not None:
        raise ValidationError(
            _("The identifier cannot contain %(char)s: a control, bidirectional or invisible character."),
            code="hidden_character", params={"char": _shown(char)},
        )
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
