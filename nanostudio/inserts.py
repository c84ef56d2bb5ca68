"""INSERT statements built once per model, for the rows written on every API call: a job, its
ledger debit and the usage event.

`Model.save()` compiles its INSERT anew on every call. Here the columns and each value's
conversion come from the model's own fields, so the row is the one `save()` would write; only
the compiling is skipped (about a third of a job row's INSERT in the web process's CPU).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model, signals


def _into(model: type[Model], fields: tuple[Field[Any, Any], ...]) -> str:
    """`INSERT INTO <table> (<the fields' columns>)`: identifiers from model metadata."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns})"


def _placeholders(fields: tuple[Field[Any, Any], ...]) -> str:
    return ", ".join(["%s"] * len(fields))  # every value is a parameter


def sql(model: type[Model], fields: tuple[Field[Any, Any], ...], rows: int = 1) -> str:
    """`INSERT INTO <table> (<the fields' columns>) VALUES (%s, …)`, `rows` times over."""
    return f"{_into(model, fields)} VALUES {', '.join([f'({_placeholders(fields)})'] * rows)}"


def unnest_sql(model: type[Model], fields: tuple[Field[Any, Any], ...]) -> str:
    """`INSERT INTO <table> (…) SELECT * FROM unnest(%s::<type>[], …)` (PostgreSQL): many rows
    from one array per field, each value read as its column's type (text included)."""
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in fields)
    return f"{_into(model, fields)} SELECT * FROM unnest({arrays})"  # noqa: S608 (types from fields)


def prepared(fields: tuple[Field[Any, Any], ...], values: list[Any]) -> list[Any]:
    """The fields' values as the database takes them (`get_db_prep_save`, as `save()` does).

    It is handed this thread's connection itself: every field reads the connection's features
    and operations, and through the `django.db.connection` proxy each of those reads costs a
    thread-local lookup (that was more than half of this function's time).
    """
    db = connections[DEFAULT_DB_ALIAS]
    return [field.get_db_prep_save(value, db) for field, value in zip(fields, values, strict=True)]


@cache
def _plan(model: type[Model]) -> tuple[tuple[Field[Any, Any], ...], str, Field[Any, Any] | None]:
    """The fields an INSERT writes, its SQL, and the database-made key it reads back, if any."""
    pk = model._meta.pk
    generated = pk if pk is not None and pk.db_returning else None
    fields = tuple(field for field in model._meta.concrete_fields if field is not generated)
    statement = sql(model, fields)
    if generated is not None:
        statement += f" RETURNING {connection.ops.quote_name(str(generated.column))}"
    return fields, statement, generated


@cache
def _from_head(model: type[Model]) -> str:
    """`INSERT INTO <table> (…) SELECT %s, … FROM head`: `after`'s INSERT, by `_plan`'s fields."""
    fields = _plan(model)[0]
    return f"{_into(model, fields)} SELECT {_placeholders(fields)} FROM head"  # noqa: S608


def _written(obj: Model) -> None:
    """Mark obj as a stored row, as `save()` does."""
    obj._state.adding = False
    obj._state.db = connection.alias


def _listened(model: type[Model]) -> bool:
    return signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)


def _values(obj: Model, fields: tuple[Field[Any, Any], ...]) -> list[Any]:
    return prepared(fields, [field.pre_save(obj, True) for field in fields])


def insert(obj: Model) -> None:
    """`obj.save(force_insert=True)`, for a model that no save signal listens to (with one
    listening, it calls `save()`, so that the listener is not skipped)."""
    model = type(obj)
    if _listened(model):
        obj.save(force_insert=True)
        return
    fields, statement, generated = _plan(model)
    values = _values(obj, fields)
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        if generated is not None:
            setattr(obj, generated.attname, cursor.fetchone()[0])
    _written(obj)


def after(head: str, params: list[Any], *objs: Model) -> tuple[Any, ...] | None:
    """Run `head`, a statement that returns at most one row (a `SELECT`, an `UPDATE …
    RETURNING`), and insert `objs`, in order, if it returned one; return that row, or None. On
    PostgreSQL a key the database makes for an obj is not read back.

    On PostgreSQL this is one statement, so one round trip: `WITH head AS (<head>), written0 AS
    (INSERT … SELECT <the obj's values> FROM head), … SELECT * FROM head`. All parts see the
    same snapshot, so the head does not see the inserted rows (foreign keys between them are
    checked at commit). SQLite cannot put an INSERT in a WITH, and its statements make no
    round trip, so there (and for a model a save signal listens to, which SQL cannot call) it
    is the head and then `insert(obj)` for each.
    """
    if connection.vendor != "postgresql" or any(_listened(type(obj)) for obj in objs):
        with connection.cursor() as cursor:
            cursor.execute(head, params)
            row = cursor.fetchone()
        if row is not None:
            for obj in objs:
                insert(obj)
        return None if row is None else tuple(row)
    writes = ", ".join(f"written{i} AS ({_from_head(type(obj))})" for i, obj in enumerate(objs))
    values = [value for obj in objs for value in _values(obj, _plan(type(obj))[0])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH head AS ({head}), {writes} SELECT * FROM head",  # noqa: S608
            [*params, *values],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    for obj in objs:
        _written(obj)
    return tuple(row)
