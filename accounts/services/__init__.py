"""Business rules of the token lifecycle, called alike by the admin, the commands and the API.

Every public function is keyword-only.
"""
from .accounts import AccountBusy, account_delete, account_save
from .bulk import ImportReport, import_accounts, init_all_new
from .init import account_init_callback, account_init_poll, account_init_start
from .reads import read_record
from .refresh import RefreshReport, due_accounts, refresh_due
from .tokens import (
    TokenUnavailable,
    failing_warning,
    log_event,
    min_token_validity,
    token_get,
    token_refresh,
    xoauth2_payload,
    xoauth2_string,
)

__all__ = [
    "AccountBusy", "ImportReport", "RefreshReport", "TokenUnavailable", "account_delete", "account_init_callback",
    "account_init_poll", "account_init_start", "account_save", "due_accounts", "failing_warning", "import_accounts",
    "init_all_new", "log_event", "min_token_validity", "read_record", "refresh_due", "token_get", "token_refresh",
    "xoauth2_payload", "xoauth2_string",
]
