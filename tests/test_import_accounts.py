"""manage.py import_accounts FILE.csv and init_token --all-new, driven as an operator drives them."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.models import Account
from tests.factories import make_account, make_application
from tests.factories import run_command as run

pytest.register_assert_rewrite("tests.fixtures_scale")
from tests.fixtures_scale import refresh_requests, write_csv  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(idp):
    return make_application(idp, secret="app-secret")


def rows_for(app, *specs):
    """One CSV row per (identifier, flow, refresh_token)."""
    return [[app.identifier, identifier, f"Mailbox {identifier}", f"{identifier}@contoso.com", flow, token]
            for identifier, flow, token in specs]


def import_file(tmp_path, rows, name="accounts.csv"):
    return run("import_accounts", str(write_csv(tmp_path / name, rows)))


def test_a_good_file_creates_every_account(tmp_path, app):
    out, _ = import_file(tmp_path, rows_for(app, ("sales", "device_code", ""), ("robot", "client_credentials", ""),
                                            ("browser", "authorization_code", "")))
    assert "line 2: sales created" in out and "line 3: robot created" in out and "line 4: browser created" in out
    assert "3 created, 0 updated, 0 unchanged." in out
    robot = Account.objects.get(identifier="robot")
    assert (robot.application, robot.name, robot.email, robot.flow, robot.status) == (
        app, "Mailbox robot", "robot@contoso.com", "client_credentials", "new")


def test_a_bad_file_imports_nothing_and_lists_every_bad_row_with_its_line_number(tmp_path, app):
    rows = [
        *rows_for(app, ("good", "device_code", "")),                            # line 2
        ["nowhere", "lost", "Lost", "lost@contoso.com", "device_code", ""],     # line 3
        *rows_for(app, ("typo", "device-code", "")),                            # line 4
        [app.identifier, "bad-mail", "Bad", "not-an-address", "device_code", ""],  # line 5
        *rows_for(app, ("good", "device_code", "")),                            # line 6
        *rows_for(app, ("robot", "client_credentials", "a-refresh-token")),     # line 7
        [app.identifier, "Bad Identifier!", "Bad", "x@contoso.com", "device_code", ""],  # line 8
    ]
    error, err = run_failing(tmp_path, rows)
    assert "Nothing was imported: 6 problems" in error
    assert "line 3: application: no application “nowhere”" in err
    assert "line 4: flow: “device-code” is not one of" in err
    assert "line 5: email:" in err
    assert "line 6: identifier good is already on line 2" in err
    assert "line 7: refresh_token: an app-only account has no refresh token" in err
    assert "line 8: identifier:" in err
    assert "line 2:" not in err
    assert not Account.objects.exists()


def run_failing(tmp_path, rows):
    """import_accounts on a file it must refuse: (the command's error, its standard error)."""
    err = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("import_accounts", str(write_csv(tmp_path / "bad.csv", rows)), stdout=StringIO(), stderr=err)
    return str(error.value), err.getvalue()


def test_a_file_without_the_required_columns_is_refused(tmp_path, app):
    path = write_csv(tmp_path / "accounts.csv", [[app.identifier, "sales", "sales@contoso.com"]],
                     columns=("application", "identifier", "e-mail"))
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_accounts", str(path), stdout=StringIO(), stderr=err)
    assert "line 1: missing columns: name, email, flow; unknown columns: e-mail" in err.getvalue()


def test_importing_the_same_file_again_changes_nothing(tmp_path, idp, app):
    rows = rows_for(app, ("sales", "device_code", idp.issue_refresh_token(app.client_id, "sales@contoso.com")),
                    ("robot", "client_credentials", ""))
    import_file(tmp_path, rows)
    before = {a.identifier: (a.updated_at, a.refresh_token) for a in Account.objects.all()}
    out, _ = import_file(tmp_path, rows)
    assert "line 2: sales unchanged" in out and "0 created, 0 updated, 2 unchanged." in out
    assert {a.identifier: (a.updated_at, a.refresh_token) for a in Account.objects.all()} == before


def test_a_changed_name_updates_the_account(tmp_path, app):
    import_file(tmp_path, rows_for(app, ("sales", "device_code", "")))
    rows = rows_for(app, ("sales", "device_code", ""))
    rows[0][2] = "Sales team"
    out, _ = import_file(tmp_path, rows)
    assert "line 2: sales updated (name)" in out
    assert Account.objects.get(identifier="sales").name == "Sales team"


def test_an_account_holding_a_token_keeps_its_email(tmp_path, idp, app, sign_in):
    account = sign_in(make_account(app, identifier="sales", email="sales@contoso.com"))
    rows = rows_for(app, ("sales", "device_code", ""))
    rows[0][3] = "someone.else@contoso.com"
    _, err = run_failing(tmp_path, rows)
    assert "line 2: email: sales holds a token for its current mailbox" in err
    account.refresh_from_db()
    assert account.email == "sales@contoso.com"


def test_an_imported_refresh_token_is_due_at_once_and_turns_active_after_refresh(tmp_path, idp, app):
    token = idp.issue_refresh_token(app.client_id, "sales@contoso.com")
    import_file(tmp_path, rows_for(app, ("sales", "device_code", token)))
    account = Account.objects.get(identifier="sales")
    assert account.status == Account.Status.NEW and account.refresh_token == token
    assert list(services.due_accounts(within=timedelta(0))) == [account]
    out, _ = run("refresh_tokens")
    assert "1 refreshed, 0 failed" in out
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE
    assert idp.valid_access_token(account.access_token)["email"] == "sales@contoso.com"
    assert [r["refresh_token"] for r in refresh_requests(idp)] == [token]
    assert idp.refresh_token_reuse == 0


def test_an_imported_refresh_token_of_another_mailbox_is_refused_at_its_first_refresh(tmp_path, idp, app):
    token = idp.issue_refresh_token(app.client_id, "someone.else@contoso.com")
    import_file(tmp_path, rows_for(app, ("sales", "device_code", token)))
    with pytest.raises(SystemExit):
        run("refresh_tokens")
    account = Account.objects.get(identifier="sales")
    assert account.status == Account.Status.REAUTH_REQUIRED
    assert "someone.else@contoso.com signed in" in account.last_error
    assert not account.access_token


def test_an_imported_refresh_token_never_replaces_a_working_one(tmp_path, idp, app):
    first = idp.issue_refresh_token(app.client_id, "sales@contoso.com")
    import_file(tmp_path, rows_for(app, ("sales", "device_code", first)))
    run("refresh_tokens")
    working = Account.objects.get(identifier="sales").refresh_token
    other = idp.issue_refresh_token(app.client_id, "sales@contoso.com")
    out, _ = import_file(tmp_path, rows_for(app, ("sales", "device_code", other)))
    assert "line 2: sales unchanged: it already has a working refresh token" in out
    assert Account.objects.get(identifier="sales").refresh_token == working


def test_an_imported_refresh_token_replaces_one_that_needs_a_new_sign_in(tmp_path, idp, app):
    dead = idp.issue_refresh_token(app.client_id, "sales@contoso.com")
    import_file(tmp_path, rows_for(app, ("sales", "device_code", dead)))
    idp.revoke("sales@contoso.com")
    with pytest.raises(SystemExit):
        run("refresh_tokens")
    assert Account.objects.get(identifier="sales").status == Account.Status.REAUTH_REQUIRED
    fresh = idp.issue_refresh_token(app.client_id, "sales@contoso.com")
    out, _ = import_file(tmp_path, rows_for(app, ("sales", "device_code", fresh)))
    assert "line 2: sales updated (refresh_token)" in out
    out, _ = run("refresh_tokens")
    assert "1 refreshed" in out
    assert Account.objects.get(identifier="sales").status == Account.Status.ACTIVE


# --- init_token --all-new -----------------------------------------------------------------------


def test_init_token_all_new_initialises_every_new_app_only_account_and_reports_each(idp, app):
    robots = [make_account(app, identifier=f"robot{n}", email=f"robot{n}@contoso.com", flow="client_credentials")
              for n in (1, 2)]
    person = make_account(app, identifier="person", email="person@contoso.com")
    broken_app = make_application(idp, identifier="broken", secret="right-secret")
    broken_app.client_secret = "wrong-secret"
    broken_app.save()
    broken = make_account(broken_app, identifier="robot3", email="robot3@contoso.com", flow="client_credentials")
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("init_token", "--all-new", stdout=out, stderr=err)
    assert exit_.value.code == 1
    assert "robot1: initialised." in out.getvalue() and "robot2: initialised." in out.getvalue()
    assert "2 initialised, 1 failed." in out.getvalue()
    assert "robot3: failed:" in err.getvalue() and "client secret" in err.getvalue()
    statuses = dict(Account.objects.values_list("identifier", "status"))
    assert statuses == {robots[0].identifier: "active", robots[1].identifier: "active",
                        person.identifier: "new", broken.identifier: "new"}


def test_init_token_wants_one_account_or_all_new():
    with pytest.raises(CommandError, match="--all-new"):
        run("init_token")
