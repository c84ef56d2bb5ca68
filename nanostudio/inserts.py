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
    obj._state.adding = False
    obj._state.db = connection.alias


def insert_for_each(obj: Model, source: str) -> tuple[str, list[Any]]:
    """`INSERT INTO <table> (…) SELECT <obj's values> FROM <source>` and its parameters: obj's
    row once for each row of `source` (a CTE of the caller's statement), so that the row is
    written only if that part of the statement found or changed one. The database-made key is
    not read back. For a model no save signal listens to: SQL cannot call a listener."""
    model = type(obj)
    if _listened(model):
        raise TypeError(f"a save signal listens to {model.__name__}: save() it instead")
    fields = _plan(model)[0]
    statement = f"{_into(model, fields)} SELECT {_placeholders(fields)} FROM {source}"  # noqa: S608
    return statement, _values(obj, fields)
