"""The identity providers oauthmail knows, by key. Explicit: no import scanning."""
from .google import GoogleProvider
from .microsoft import MicrosoftProvider

PROVIDERS = {
    "microsoft": MicrosoftProvider(),
    "google": GoogleProvider(),
}


def get_provider(key):
    return PROVIDERS[key]
