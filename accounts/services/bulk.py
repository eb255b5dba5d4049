"""Many accounts at once: importing them from a CSV file, initialising every new app-only one.

Import rules (`import_accounts`):
- Columns `application, identifier, name, email, flow`, and optionally `refresh_token`, to migrate
  a mailbox from a tool that already holds one without asking its user to sign in again.
- Every row is validated before anything is written; one bad row and nothing is imported, and
  every bad row is reported with its line number.
- A row whose identifier is new creates the account. A row naming an existing account updates its
  name; its email and flow too while it holds no token (status "new"). An account that holds a
  token keeps its email and flow (the token belongs to that mailbox): changing them is refused,
  as is moving an account to another application. Identical rows are left alone ("unchanged"), so
  importing the same file twice changes nothing.
- A refresh token is stored only on an account that has no working one (status "new" or
  "re-authorisation required"): it is never overwritten on an active or failing account. The
  account stays "new" but is due at once; the next `refresh_tokens` uses the token and, when that
  succeeds, the account turns "active".
"""
import csv
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from oauthmail.crypto import is_set
from providers.models import Application

from ..claims import unclaimed
from ..models import Account
from .init import account_init_start

COLUMNS = ("application", "identifier", "name", "email", "flow")
OPTIONAL_COLUMNS = ("refresh_token",)
TOKEN_HOLDING_FIELDS = ("email", "flow")  # what an account holding a token keeps
LOOKUP_CHUNK = 500


@dataclass
class ImportReport:
    rows: list = field(default_factory=list)  # {"line", "account", "outcome", "changed", "note"}
    errors: list = field(default_factory=list)  # (line, message), every problem of the file

    def count(self, outcome):
        return sum(1 for row in self.rows if row["outcome"] == outcome)

    @property
    def ok(self):
        return not self.errors


@dataclass
class _Plan:
    line: int
    account: Account
    outcome: str  # created | updated | unchanged
    changed: list = field(default_factory=list)
    refresh_token: str = ""  # to store (the account had no working one)
    note: str = ""


class _Conflict(Exception):
    def __init__(self, line, message):
        super().__init__(message)
        self.line = line


def import_accounts(*, file, actor):
    """Import the CSV text `file` (an open file or any iterable of lines): all rows, or none."""
    report = ImportReport()
    reader = csv.DictReader(file, skipinitialspace=True)
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as error:
        report.errors.append((1, _("this line cannot be read as CSV: %(error)s.") % {"error": error}))
        return report
    missing = [name for name in COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(_("missing columns: %(columns)s") % {"columns": ", ".join(missing)})
        if unknown:
            problems.append(_("unknown columns: %(columns)s") % {"columns": ", ".join(unknown)})
        expected = ", ".join(COLUMNS + tuple(f"[{name}]" for name in OPTIONAL_COLUMNS))
        report.errors.append((1, _("%(problems)s (expected: %(expected)s).") % {
            "problems": "; ".join(problems), "expected": expected}))
        return report
    reader.fieldnames = header
    rows = []
    for line, row in _records(reader, report):
        if None in row:
            report.errors.append((line, _("more values than columns.")))
            continue
        nul = [name for name, value in row.items() if value and "\x00" in value]
        if nul:
            report.errors.append((line, _("%(columns)s: a NUL character (\\0); is this a text file?") % {
                "columns": ", ".join(nul)}))
            continue
        rows.append((line, {name: (value or "").strip() for name, value in row.items()}))
    plans = _plan(rows, report)
    if report.errors:
        return report
    try:
        with transaction.atomic():
            for plan in plans:
                _apply(plan, actor)
    except _Conflict as conflict:
        report.errors.append((conflict.line, str(conflict)))
        return report
    report.rows = [{"line": p.line, "account": p.account.identifier, "outcome": p.outcome,
                    "changed": p.changed, "note": p.note} for p in plans]
    return report


def _records(reader, report):
    """(line, row) for each record; a record the csv module cannot read (a value over its field limit,
    a quote never closed) is an error naming the line it starts on, and reading goes on after it."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            report.errors.append((reader.line_num + 1, _("this line cannot be read as CSV: %(error)s.") % {
                "error": error}))
            continue
        yield reader.line_num, row


def _plan(rows, report):
    applications = {app.identifier: app for app in Application.objects.all()}
    existing = {}
    identifiers = [row["identifier"] for _line, row in rows if row["identifier"]]
    for start in range(0, len(identifiers), LOOKUP_CHUNK):
        chunk = identifiers[start:start + LOOKUP_CHUNK]
        existing.update((a.identifier, a) for a in Account.objects.filter(identifier__in=chunk))
    first_line = {}
    mailboxes = {}  # the lower-case address -> (its first spelling, line)
    plans = []
    for line, row in rows:
        identifier = row["identifier"]
        if identifier and identifier in first_line:
            report.errors.append((line, _("identifier %(identifier)s is already on line %(line)d.") % {
                "identifier": identifier, "line": first_line[identifier]}))
            continue
        first_line.setdefault(identifier, line)
        spelling, other_line = mailboxes.setdefault(row["email"].lower(), (row["email"], line))
        if spelling != row["email"]:
            report.errors.append((line, _("email: %(email)s is the mailbox of line %(line)d, spelled %(spelling)s "
                                          "there; spell it the same way.") % {
                "email": row["email"], "line": other_line, "spelling": spelling}))
            continue
        errors = []
        plan = _plan_row(line, row, applications, existing.get(identifier), errors)
        report.errors.extend((line, message) for message in errors)
        if plan:
            plans.append(plan)
    return plans


def _plan_row(line, row, applications, account, errors):
    app = applications.get(row["application"])
    if app is None:
        errors.append(_("application: no application “%(application)s”.") % {"application": row["application"]})
    if row["flow"] not in Account.Flow.values:
        errors.append(_("flow: “%(flow)s” is not one of %(flows)s.") % {
            "flow": row["flow"], "flows": ", ".join(Account.Flow.values)})
    refresh_token = row.get("refresh_token", "")
    if refresh_token and row["flow"] == Account.Flow.CLIENT_CREDENTIALS:
        errors.append(_("refresh_token: an app-only account has no refresh token; leave it empty."))
    if errors:
        return None
    values = {"name": row["name"], "email": row["email"], "flow": row["flow"]}
    if account is None:
        plan = _Plan(line, Account(application=app, identifier=row["identifier"], **values), "created")
    else:
        plan = _update_plan(line, account, app, values, errors)
        if plan is None:
            return None
    try:
        plan.account.full_clean()
    except ValidationError as error:
        errors.extend(_messages(error))
        return None
    if refresh_token:
        _plan_refresh_token(plan, refresh_token)
    return plan


def _update_plan(line, account, app, values, errors):
    if account.application_id != app.pk:
        errors.append(_("application: %(account)s belongs to the application %(application)s; move it in the "
                        "admin.") % {"account": account.identifier, "application": account.application})
        return None
    changed = [name for name, value in values.items() if getattr(account, name) != value]
    kept = [name for name in changed if name in TOKEN_HOLDING_FIELDS]
    if kept and (account.status != Account.Status.NEW or is_set(account, "refresh_token")):
        errors.append(_("%(fields)s: %(account)s holds a token for its current mailbox and sign-in flow, which "
                        "an import does not change; change them in the admin, then run Init. Token.") % {
            "fields": ", ".join(kept), "account": account.identifier})
        return None
    for name in changed:
        setattr(account, name, values[name])
    return _Plan(line, account, "updated" if changed else "unchanged", changed)


def _plan_refresh_token(plan, refresh_token):
    account = plan.account
    if plan.outcome != "created" and account.status not in (Account.Status.NEW, Account.Status.REAUTH_REQUIRED):
        if refresh_token != account.refresh_token:
            plan.note = _("it already has a working refresh token: the file's was not used")
        return
    if plan.outcome != "created" and refresh_token == account.refresh_token:
        return
    plan.refresh_token = refresh_token
    plan.changed.append("refresh_token")
    if plan.outcome == "unchanged":
        plan.outcome = "updated"


def _messages(error):
    for name, messages in error.message_dict.items():
        for message in messages:
            yield message if name == NON_FIELD_ERRORS else f"{name}: {message}"


def _apply(plan, actor):
    account = plan.account
    if plan.outcome == "unchanged":
        return
    token_values = {}
    if plan.refresh_token:
        token_values = {"refresh_token": plan.refresh_token, "status": Account.Status.NEW, "last_error": "",
                        "last_error_code": "", "last_error_params": {},
                        "token_initialized_at": timezone.now(), "token_initialized_by": actor}
    if plan.outcome == "created":
        for name, value in token_values.items():
            setattr(account, name, value)
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError:
            raise _Conflict(plan.line, _("identifier %(identifier)s was created meanwhile by someone else; "
                                         "import the file again.") % {"identifier": account.identifier}) from None
        return
    fields = [name for name in plan.changed if name != "refresh_token"]
    if fields:
        account.save(update_fields=[*fields, "updated_at"])
    if token_values:
        # Only while no one uses the account's token, and only if it still has no working one.
        stored = Account.objects.filter(
            unclaimed(), pk=account.pk, status__in=(Account.Status.NEW, Account.Status.REAUTH_REQUIRED)
        ).update(updated_at=timezone.now(), **token_values)
        if not stored:
            raise _Conflict(plan.line, _("%(account)s is being refreshed or was initialised meanwhile; import the "
                                         "file again.") % {"account": account.identifier})


def init_all_new(*, actor, batch_size=100):
    """Init. Token for every new app-only account, which needs no user: yields (account, InitRequest)."""
    accounts = (
        Account.objects.filter(status=Account.Status.NEW, flow=Account.Flow.CLIENT_CREDENTIALS)
        .select_related("application").defer("access_token", "refresh_token").order_by("pk")
    )
    last_pk = 0
    while batch := list(accounts.filter(pk__gt=last_pk)[:batch_size]):
        for account in batch:
            yield account, account_init_start(account=account, actor=actor)
        last_pk = batch[-1].pk
