"""The refresh's hot statements, their SQL written once per shape instead of built by the ORM at each call.

A refresh stores its tokens in one UPDATE of some fourteen columns and logs one event: through
QuerySet.update() and Model.save(), Django builds a query object, compiles it and resolves every
column again at each call, a good part of the refresh's CPU. Here the SQL of each shape (table,
columns set, columns compared) is composed once per database vendor and kept; the values are still
converted by each field's get_db_prep_save() (so secrets are encrypted, dates and JSON adapted, as
the ORM would), and the statements go through Django's cursor (so its wrappers, transactions and
statement counters see them). No signal is sent, as with QuerySet.update(): none is used (guide).
"""
import threading

from django.db import connections, router

_sql = {}  # (model, vendor, shape) -> SQL
_sql_lock = threading.Lock()


def _cached(key, build):
    sql = _sql.get(key)
    if sql is None:
        sql = build()
        with _sql_lock:
            _sql[key] = sql
    return sql


def update_row(model, pk, values, **where):
    """UPDATE `model`'s row `pk` SET `values` (field name -> value), only where each field of `where`
    equals its value. Returns the number of rows updated (0 or 1)."""
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    names, compared = tuple(values), tuple(where)

    def build():
        qn = connection.ops.quote_name
        assignments = ", ".join(f"{qn(meta.get_field(name).column)} = %s" for name in names)
        conditions = " AND ".join(f"{qn(meta.get_field(name).column)} = %s" for name in (meta.pk.name, *compared))
        return f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {conditions}"

    sql = _cached((model, connection.vendor, "update", names, compared), build)
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    params.append(meta.pk.get_db_prep_value(pk, connection))
    params.extend(meta.get_field(name).get_db_prep_value(value, connection) for name, value in where.items())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_row(instance):
    """INSERT `instance` (a new model instance whose primary key is left to the database), with each
    field's value as save() would write it; the new row's key is not read back."""
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]

    def build():
        qn = connection.ops.quote_name
        columns = ", ".join(qn(field.column) for field in fields)
        return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"

    sql = _cached((model, connection.vendor, "insert"), build)
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
