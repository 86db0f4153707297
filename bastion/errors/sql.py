"""Prepared statements for the ingest writer, built once per model and column list.

The ORM builds a query's SQL anew on each call: for the group committer, which runs the same
handful of statements per batch, that compiling cost more CPU than the statements themselves
(measured with py-spy under ``bench/ingest.py``). These helpers build each statement once,
convert values through each field's ``get_db_prep_value`` on the way in and through the
backend's and the field's converters on the way out, so types map exactly as the ORM maps them,
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model

Converter = Callable[[Any, Any, Any], Any]


def field_of(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def column(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(str(field_of(model, name).column))


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def prep(model: type[Model], name: str, value: Any) -> Any:
    """A Python value as the database driver wants it for this field."""
    return field_of(model, name).get_db_prep_value(value, connection, prepared=False)


def _prepared(fields: Sequence[Field[Any, Any]], obj: Model) -> list[Any]:
    # The connection itself, not the thread-local proxy: the proxy costs a lookup per attribute.
    conn = connections[DEFAULT_DB_ALIAS]
    return [
        field.get_db_prep_value(getattr(obj, field.attname), conn, prepared=False)
        for field in fields
    ]


@functools.cache
def _insert(model: type[Model], names: tuple[str, ...], vendor: str) -> str:
    columns = ", ".join(column(model, n) for n in names)
    return f"INSERT INTO {table(model)} ({columns}) VALUES ({marks(len(names))})"  # noqa: S608


@functools.cache
def _update(model: type[Model], names: tuple[str, ...], vendor: str) -> str:
    sets = ", ".join(f"{column(model, n)} = %s" for n in names)
    return f"UPDATE {table(model)} SET {sets} WHERE {column(model, 'id')} = %s"  # noqa: S608


def insert_rows(
    model: type[Model],
    names: Sequence[str],
    objs: Sequence[Model],
    encoded: tuple[str, Sequence[str | None]] | None = None,
) -> None:
    """Insert the objects' ``names`` columns. ``encoded`` is (a JSON column, each object's text
    of it already encoded, or None): encoding a large JSON value once is enough."""
    if not objs:
        return
    fields = [field_of(model, n) for n in names]
    sql = _insert(model, tuple(names), connection.vendor)
    rows = [_prepared(fields, obj) for obj in objs] if encoded is None else []
    if encoded is not None:
        name, texts = encoded
        index = list(names).index(name)
        others = [f if i != index else None for i, f in enumerate(fields)]
        for obj, text in zip(objs, texts, strict=True):
            if text is None:
                rows.append(_prepared(fields, obj))
                continue
            row = _prepared([f for f in others if f is not None], obj)
            row.insert(index, json_parameter(text, getattr(obj, fields[index].attname)))
            rows.append(row)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def json_parameter(text: str, value: Any) -> Any:
    """A JSON column's parameter from its text, as ``adapt_json_value`` would make it."""
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=lambda _value: text)
    return text


def update_rows(model: type[Model], names: Sequence[str], objs: Sequence[Model]) -> None:
    if not objs:
        return
    fields = [field_of(model, n) for n in names]
    sql = _update(model, tuple(names), connection.vendor)
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[*_prepared(fields, obj), obj.pk] for obj in objs])


@functools.cache
def _converters(model: type[Model], names: tuple[str, ...], vendor: str) -> list[list[Any]]:
    """For each column, the converters the ORM would apply to it (with their expression)."""
    result = []
    for name in names:
        col = field_of(model, name).get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        result.append([(converter, col) for converter in found])
    return result


def select_rows(
    model: type[Model], names: Sequence[str], where: str, params: Sequence[Any], suffix: str = ""
) -> list[list[Any]]:
    """``SELECT names FROM model WHERE where`` with values converted as the ORM converts them."""
    columns = ", ".join(column(model, n) for n in names)
    sql = f"SELECT {columns} FROM {table(model)} WHERE {where}{suffix}"  # noqa: S608
    converters = _converters(model, tuple(names), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        rows = cursor.fetchall()
    result = []
    for row in rows:
        values = list(row)
        for index, column_converters in enumerate(converters):
            for converter, col in column_converters:
                values[index] = converter(values[index], col, connection)
        result.append(values)
    return result


def select_models(
    model: type[Model], where: str, params: Sequence[Any], suffix: str = ""
) -> list[Model]:
    """Whole model instances, as ``Model.from_db`` makes them for a queryset."""
    names = [f.attname for f in model._meta.concrete_fields]
    rows = select_rows(model, names, where, params, suffix)
    return [model.from_db(connection.alias, names, row) for row in rows]


@functools.cache
def _upsert(model: type[Model], keys: tuple[str, ...], counter: str, vendor: str) -> str:
    names = (*keys, counter)
    total = f"{table(model)}.{column(model, counter)} + excluded.{column(model, counter)}"
    return (
        f"INSERT INTO {table(model)} ({', '.join(column(model, n) for n in names)})"  # noqa: S608
        f" VALUES ({marks(len(names))})"
        f" ON CONFLICT ({', '.join(column(model, n) for n in keys)})"
        f" DO UPDATE SET {column(model, counter)} = {total}"
    )


def add_counts(
    model: type[Model], keys: tuple[str, ...], counter: str, rows: Sequence[Sequence[Any]]
) -> None:
    """Add each row's last value to ``counter`` of the row with those ``keys`` (a unique
    constraint), creating it when missing: one upsert, the same on SQLite (3.24+) and
    PostgreSQL, so concurrent writers never lose an increment. Give rows in a stable order
    (concurrent writers then lock rows in the same order)."""
    if not rows:
        return
    fields = [field_of(model, n) for n in (*keys, counter)]
    prepared = [
        [
            f.get_db_prep_value(v, connection, prepared=False)
            for f, v in zip(fields, row, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_upsert(model, keys, counter, connection.vendor), prepared)
