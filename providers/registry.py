"""The identity providers oauthmail knows, by key. Explicit: no import scanning."""
from .microsoft import MicrosoftProvider

PROVIDERS = {
    "microsoft": MicrosoftProvider(),
}


def get_provider(key):
    return PROVIDERS[key]
