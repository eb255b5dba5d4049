"""Everything a token read needs, in one SQL statement.

A read of a valid cached token is the API's hot path: it must cost about what a plain view costs. The
ORM would take four queries (is the caller's address throttled, the client by its key prefix, the
account among the client's, its application), and building each of them costs more CPU than SQLite
takes to answer it. So the statement is written once per database, from the models' own table and
column names, and its rows are turned into model instances with the ORM's own converters (dates on
SQLite, encrypted fields left encrypted until read).

The statement always returns one row: the address's throttle window (or NULL), then the client with
that key prefix (or NULLs), then the account with that identifier if the client may read it, with its
application (or NULLs).
"""
from dataclasses import dataclass

from django.db import connections
from django.db.models.expressions import Col

from accounts.models import Account
from providers.models import Application

from .models import ApiClient, KeyFailures

CLIENT_FIELDS = ("id", "name", "key_hash", "is_active", "last_used_at")
# What the answer needs of the application (its scopes). The rest (secrets, certificates) is read only
# when a refresh needs it: token_get's refresh reads the account and its application again.
APPLICATION_FIELDS = ("id", "provider", "scopes")


@dataclass
class Found:
    blocked_since: object  # start of the address's throttle window, or None
    client: ApiClient | None
    account: Account | None  # with its application; None when missing or not the client's


def _columns(model, alias, names=None):
    # In the model's order: Model.from_db() takes a subset of the fields in that order.
    fields = [field for field in model._meta.concrete_fields if names is None or field.name in names]
    return fields, [f'{alias}."{field.column}"' for field in fields]


class _Statement:
    """The statement for one database connection (its SQL dialect and converters)."""

    def __init__(self, connection):
        quote = connection.ops.quote_name
        self.parts = []
        select = []
        for model, alias, names in ((ApiClient, "c", CLIENT_FIELDS), (Account, "a", None),
                                     (Application, "p", APPLICATION_FIELDS)):
            fields, columns = _columns(model, alias, names)
            select += columns
            converters = [(n, conv) for n, field in enumerate(fields)
                          if (conv := self._converters(connection, field, model))]
            self.parts.append((model, [field.attname for field in fields], converters))
        window = KeyFailures._meta
        membership = ApiClient.accounts.through._meta
        self.sql = (
            f"SELECT (SELECT k.{quote('window_start')} FROM {quote(window.db_table)} k"
            f" WHERE k.{quote('address')} = %(address)s AND k.{quote('window_start')} > %(window_after)s"
            f" AND k.{quote('failures')} >= %(failures)s),"
            f" {', '.join(select)}"
            f" FROM (SELECT 1 AS one) one"
            f" LEFT JOIN {quote(ApiClient._meta.db_table)} c ON c.{quote('key_prefix')} = %(prefix)s"
            f" LEFT JOIN {quote(Account._meta.db_table)} a"
            f" ON a.{quote('identifier')} = %(identifier)s AND a.{quote('id')} IN"
            f" (SELECT m.{quote('account_id')} FROM {quote(membership.db_table)} m"
            f" WHERE m.{quote('apiclient_id')} = c.{quote('id')})"
            f" LEFT JOIN {quote(Application._meta.db_table)} p ON p.{quote('id')} = a.{quote('application_id')}"
        )
        self.window_converters = self._converters(connection, window.get_field("window_start"), KeyFailures)

    @staticmethod
    def _converters(connection, field, model):
        expression = Col(model._meta.db_table, field)
        return connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)

    @staticmethod
    def _convert(value, converters, connection):
        for converter in converters:
            value = converter(value, None, connection)
        return value

    def instances(self, row, connection):
        """Found, from the statement's row."""
        blocked_since = self._convert(row[0], self.window_converters, connection)
        start, made = 1, []
        for model, attnames, converters in self.parts:
            values = row[start:start + len(attnames)]
            start += len(attnames)
            if values[0] is None:  # the primary key: no such row
                made.append(None)
                continue
            values = list(values)
            for n, conv in converters:
                if values[n] is not None:
                    values[n] = self._convert(values[n], conv, connection)
            made.append(model.from_db(connection.alias, attnames, values))
        client, account, application = made
        if account is not None:
            Account.application.field.set_cached_value(account, application)
        return Found(blocked_since=blocked_since, client=client, account=account)


_statements = {}


def find(*, address, window_after, failures, prefix, identifier, using="default"):
    """The throttle window of `address` (if it has `failures` or more since `window_after`), the client
    whose key prefix is `prefix`, and its account `identifier`, in one statement."""
    connection = connections[using]
    statement = _statements.get((using, connection.vendor))
    if statement is None:
        statement = _statements[(using, connection.vendor)] = _Statement(connection)
    with connection.cursor() as cursor:
        window_after = connection.ops.adapt_datetimefield_value(window_after)
        # Named parameters: Django's SQLite backend then skips a regular expression over the whole statement.
        cursor.execute(statement.sql, {"address": address, "window_after": window_after, "failures": failures,
                                       "prefix": prefix, "identifier": identifier})
        row = cursor.fetchone()
    return statement.instances(row, connection)
