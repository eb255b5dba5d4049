"""import_accounts on hostile or broken files: a clear error per row, never a traceback, nothing imported."""
import pytest

from accounts.models import Account
from tests.factories import make_account, make_application
from tests.test_import_accounts import import_file, rows_for, run_failing

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(idp):
    return make_application(idp, secret="app-secret")


def test_a_cell_over_the_csv_field_limit_is_an_error_naming_its_line(tmp_path, app):
    rows = rows_for(app, ("good", "device_code", ""), ("huge", "device_code", "x" * 200_000),
                    ("after", "device_code", ""))
    error, err = run_failing(tmp_path, rows)
    assert "line 3: this line cannot be read as CSV: field larger than field limit" in err
    assert "Nothing was imported: 1 problem" in error
    assert not Account.objects.exists()


def test_a_nul_byte_is_an_error_naming_its_column(tmp_path, app):
    rows = rows_for(app, ("good", "device_code", ""), ("nul", "device_code", ""))
    rows[1][2] = "Mail\x00box"
    _, err = run_failing(tmp_path, rows)
    assert "line 3: name: a NUL character" in err
    assert not Account.objects.exists()


@pytest.mark.parametrize("column, char, named", [
    (1, "\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    (1, "\u200b", "U+200B (ZERO WIDTH SPACE)"),
    (1, "\x1b", "U+001B"),
    (2, "\u202e", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    (2, "\x07", "U+0007"),
], ids=["identifier-rlo", "identifier-zwsp", "identifier-escape", "name-rlo", "name-bell"])
def test_control_and_bidi_characters_are_refused_per_row(tmp_path, app, column, char, named):
    rows = rows_for(app, ("good", "device_code", ""), ("sales", "device_code", ""))
    rows[1][column] = rows[1][column][:2] + char + rows[1][column][2:]
    _, err = run_failing(tmp_path, rows)
    field = "identifier" if column == 1 else "name"
    assert f"line 3: {field}: " in err and named in err
    assert "line 2" not in err and "Traceback" not in err


def test_two_rows_for_one_mailbox_spelled_in_two_cases_are_refused(tmp_path, app):
    rows = rows_for(app, ("sales", "device_code", ""), ("sales2", "device_code", ""))
    rows[1][3] = "SALES@contoso.com"
    _, err = run_failing(tmp_path, rows)
    assert "line 3: email: SALES@contoso.com is the mailbox of line 2, spelled sales@contoso.com there" in err


def test_a_row_for_an_existing_mailbox_in_another_case_is_refused(tmp_path, app):
    make_account(app, identifier="sales", email="sales@contoso.com")
    rows = rows_for(app, ("ventes", "device_code", ""))
    rows[0][3] = "Sales@Contoso.com"
    _, err = run_failing(tmp_path, rows)
    assert "line 2: email: The account sales has this mailbox as sales@contoso.com" in err


def test_the_same_spelling_for_two_accounts_stays_allowed(tmp_path, app):
    """A mailbox may have a delegated and an app-only account: same address, same spelling."""
    make_account(app, identifier="sales", email="sales@contoso.com")
    out, _ = import_file(tmp_path, [[app.identifier, "sales-robot", "Robot", "sales@contoso.com",
                                     "client_credentials", ""]])
    assert "1 created" in out
