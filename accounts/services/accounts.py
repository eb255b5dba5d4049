"""Saving and deleting an account as a person edits it: who may change its mail servers, what happens to a
token whose mailbox changes, and the events that keep the record.

Rules:
- Only a holder of `accounts.change_mail_servers` changes the mail servers or certificate checking; every
  change is an event with the old and new values. Insecure settings (security "none", certificate
  checking off) they save, or tick to approve, are recorded as approved by them (accounts/mail_servers.py).
- A token belongs to the mailbox that signed in, through one application. Changing the account's e-mail
  address, sign-in user or application drops its tokens and sets it back to "new" (an event says so):
  the operator asked for another mailbox, and the old mailbox's token must never be handed out for it.
- Deleting an account keeps its events (they keep its identifier) and adds one naming who deleted it.
"""
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.models import Application

from .. import mail_servers
from ..claims import unclaimed
from ..models import Account, InitRequest, TokenEvent
from .tokens import log_event

TOKEN_BINDING_FIELDS = ("email", "sign_in_user", "application_id")
APPROVAL_FIELDS = ("mail_servers_approved", "mail_servers_approved_by", "mail_servers_approved_at")
TOKEN_RESET = {
    "access_token": "", "refresh_token": "", "status": Account.Status.NEW, "last_error": "",
    "access_token_expires_at": None, "refresh_token_expires_at": None, "refresh_token_expiry_estimated": False,
    "refresh_token_issued_at": None, "token_initialized_at": None, "token_initialized_by": "",
    "last_refreshed_at": None, "signed_in_as": "",
}


def editable_fields():
    return [f.name for f in Account._meta.concrete_fields if f.editable and not f.primary_key]


def holds_token(values):
    return values["status"] != Account.Status.NEW or bool(values["refresh_token"]) or bool(values["access_token"])


class AccountBusy(Exception):
    """A refresh is using the token that must be dropped: nothing was saved."""


def account_save(*, account, actor, may_change_mail_servers=False, approve_mail_servers=False):
    """Save `account` as edited by `actor` (stamped by the caller). Returns messages for the user.

    Raises PermissionDenied when mail servers changed without the permission, and AccountBusy (nothing
    saved) when a token that must be dropped is being refreshed at this moment.
    """
    if account._state.adding:
        if mail_servers.snapshot(account) != mail_servers.snapshot(Account()) and not may_change_mail_servers:
            raise PermissionDenied
        _approve(account, actor, may_change_mail_servers and mail_servers.is_insecure(account))
        account.save()
        return []
    with transaction.atomic():
        before = (Account.objects.select_for_update()
                  .values(*mail_servers.MAIL_SERVER_FIELDS, *TOKEN_BINDING_FIELDS, "status", "access_token",
                          "refresh_token").get(pk=account.pk))
        server_changes = mail_servers.changes(before, account)
        if server_changes and not may_change_mail_servers:
            raise PermissionDenied
        rebound = [name for name in TOKEN_BINDING_FIELDS if before[name] != getattr(account, name)]
        dropped = bool(rebound) and holds_token(before)
        if dropped:
            _drop_token(account, before, rebound, actor)
        if may_change_mail_servers and (server_changes or approve_mail_servers):
            _approve(account, actor, mail_servers.is_insecure(account))
        account.save(update_fields=[*editable_fields(), *APPROVAL_FIELDS, "updated_at", "updated_by"])
        if server_changes:
            log_event(account=account, actor=actor, kind=TokenEvent.Kind.MAIL_SERVERS,
                      code="account.mail_servers_changed", params={
                          "changes": [list(change) for change in server_changes],
                          "approved": mail_servers.is_approved(account)})
        elif approve_mail_servers and may_change_mail_servers and mail_servers.is_insecure(account):
            log_event(account=account, actor=actor, kind=TokenEvent.Kind.MAIL_SERVERS,
                      code="account.mail_servers_approved")
    if dropped:
        return [_("The token of %(account)s was dropped: it belonged to the previous mailbox or application. "
                  "Run Init. Token.") % {"account": account.identifier}]
    return []


def _approve(account, actor, insecure):
    if insecure:
        account.mail_servers_approved = mail_servers.snapshot(account)
        account.mail_servers_approved_by, account.mail_servers_approved_at = actor, timezone.now()
    else:
        account.mail_servers_approved, account.mail_servers_approved_by = "", ""
        account.mail_servers_approved_at = None


def _drop_token(account, before, rebound, actor):
    """Forget the token and end any sign-in in progress for the old mailbox; AccountBusy if a refresh holds it.

    A conditional UPDATE, as a claim is taken: a refresh in flight keeps its claim, and the token it is
    renewing must not be stored back for the new mailbox afterwards.
    """
    if not Account.objects.filter(unclaimed(), pk=account.pk).update(**TOKEN_RESET):
        raise AccountBusy(_(
            "%(account)s's token is being refreshed at this moment, so it cannot be dropped: nothing was saved. "
            "Try again in a minute."
        ) % {"account": account.identifier})
    InitRequest.objects.filter(account=account, status=InitRequest.Status.PENDING).update(
        status=InitRequest.Status.FAILED, state="", finished_at=timezone.now(),
        error=_("The account's mailbox changed: start Init. Token again."),
    )
    log_event(account=account, actor=actor, kind=TokenEvent.Kind.TOKEN_DROPPED, code="account.token_dropped",
              params={"rebound": [_rebinding(name, before[name], account) for name in rebound]})
    for name, value in TOKEN_RESET.items():
        setattr(account, name, value)


def _rebinding(name, old, account):
    """[field, old value, new value] of a setting the token was bound to, as the event keeps it."""
    if name == "application_id":
        old = Application.objects.filter(pk=old).values_list("identifier", flat=True).first() or old
        return ["application", old, account.application.identifier]
    return [name, old, getattr(account, name)]


def account_delete(*, account, actor):
    """Delete the account; its events stay (with its identifier), and one more says who deleted it."""
    with transaction.atomic():
        log_event(account=account, actor=actor, kind=TokenEvent.Kind.DELETED, code="account.deleted",
                  params={"account": str(account)})
        account.delete()
