"""bench/api.py's settings: production's (oauthmail/settings.py, read from the environment as ever), with
bench/_urls.py as the URL configuration: oauthmail's URLs and one bare view beside them."""
from oauthmail.settings import *  # noqa: F403

ROOT_URLCONF = "bench._urls"
