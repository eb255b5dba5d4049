"""The refresh's hot statements, their SQL written once per shape instead of built by the ORM at each call.

A refresh stores its tokens in one UPDATE of some fourteen columns and logs one event: through
QuerySet.update() and Model.save(), Django builds a query object, compiles it and resolves every
column again at each call, a good part of the refresh's CPU. Here the SQL of each shape (table,
columns set, columns compared) is composed once per database vendor and kept; the values are still
converted by each field's get_db_prep_save() (so secrets are encrypted, dates and JSON adapted, as
the ORM would), and the statements go through Django's cursor (so its wrappers, transactions and
statement counters see them). No signal is sent, as with QuerySet.update(): none is used (guide).
On PostgreSQL the store, its claim's release and its event go in one statement (update_row_then_insert).
"""
import re
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


def _update_sql(connection, meta, names, compared):
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(meta.get_field(name).column)} = %s" for name in names)
    conditions = " AND ".join(f"{qn(meta.get_field(name).column)} = %s" for name in (meta.pk.name, *compared))
    return f"UPDATE {qn(meta.db_table)} SET {assignments} WHERE {conditions}"


def _update_params(connection, meta, pk, values, where):
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    params.append(meta.pk.get_db_prep_value(pk, connection))
    params.extend(meta.get_field(name).get_db_prep_value(value, connection) for name, value in where.items())
    return params


def _inserted_fields(model):
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def _insert_params(connection, instance):
    fields = _inserted_fields(type(instance))
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def update_row(model, pk, values, **where):
    """UPDATE `model`'s row `pk` SET `values` (field name -> value), only where each field of `where`
    equals its value. Returns the number of rows updated (0 or 1)."""
    connection = connections[router.db_for_write(model)]
    names, compared = tuple(values), tuple(where)
    sql = _cached((model, connection.vendor, "update", names, compared),
                  lambda: _update_sql(connection, model._meta, names, compared))
    with connection.cursor() as cursor:
        cursor.execute(sql, _update_params(connection, model._meta, pk, values, where))
        return cursor.rowcount


def update_row_then_insert(model, pk, values, instance, **where):
    """On PostgreSQL, `update_row(model, pk, values, **where)` and, only when it updated the row, INSERT
    `instance` (as insert_row), in one statement: a data-modifying WITH, atomic by itself, one round
    trip instead of four (BEGIN, UPDATE, INSERT, COMMIT). Returns whether it did; on other databases
    it does nothing and returns False (the caller takes the two statements' way)."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return False
    names, compared, inserted = tuple(values), tuple(where), type(instance)

    def build():
        qn = connection.ops.quote_name
        fields = _inserted_fields(inserted)
        # typed: PostgreSQL takes a bare parameter (or NULL) in a SELECT list as text
        casts = ", ".join(f"CAST(%s AS {_cast_type(field, connection)})" for field in fields)
        return (f"WITH {qn('updated')} AS ({_update_sql(connection, model._meta, names, compared)} RETURNING 1) "
                f"INSERT INTO {qn(inserted._meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "
                f"SELECT {casts} FROM {qn('updated')}")

    sql = _cached((model, connection.vendor, "update-insert", names, compared, inserted), build)
    params = _update_params(connection, model._meta, pk, values, where) + _insert_params(connection, instance)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _cast_type(field, connection):
    """The field's column type without its length (varchar, not varchar(100)): a CAST to a length
    would cut a value silently, where the column refuses one too long."""
    return re.sub(r"\(.*\)$", "", field.cast_db_type(connection))


def insert_row(instance):
    """INSERT `instance` (a new model instance whose primary key is left to the database), with each
    field's value as save() would write it; the new row's key is not read back."""
    model = type(instance)
    connection = connections[router.db_for_write(model)]

    def build():
        qn = connection.ops.quote_name
        fields = _inserted_fields(model)
        columns = ", ".join(qn(field.column) for field in fields)
        return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"

    sql = _cached((model, connection.vendor, "insert"), build)
    with connection.cursor() as cursor:
        cursor.execute(sql, _insert_params(connection, instance))
