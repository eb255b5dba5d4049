"""Error reports never show a secret, not even Django's DEBUG page.

Django's own filter hides `sensitive_variables` and `sensitive_post_parameters` only while DEBUG is
off; a DEBUG page shown on a server that holds real secrets (an operator debugging a deployment)
would print a client secret, a passphrase or a token from the frame that held it. This filter is
active whatever DEBUG says.
"""
from django.views.debug import SafeExceptionReporterFilter


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True
