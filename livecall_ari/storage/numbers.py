"""Telephone numbers as stored: the number they are (E.164), whatever form they were dialled in.

A column declared as :class:`NumberField` turns every value written to it, and every value it
is compared with in a query, into E.164 when it is a valid number (``02079460018``,
``0044 20 7946 0018`` and ``+442079460018`` are all stored as ``+442079460018``), so subject
access, erasure and search find a person's records by one value. Anything that is not a valid
number (an extension, a pseudonym such as ``erased:...``, a refused dial string) is kept as
written and matched exactly. The raw form, where a record keeps one, lives in another column
(``gate_decisions.dialled``, ``cdr_records.cdr_line``).
"""

from __future__ import annotations

import functools
from typing import Any

import peewee

from livecall_ari.screening.numbers import NumberParser


@functools.cache
def _parser() -> NumberParser:
    # Built once per process, on first use (it compiles libphonenumber's +44 patterns).
    return NumberParser()


def stored_number(value: str) -> str:
    """``value`` as a number column stores it: E.164 when it is a valid number, else as is."""
    parsed = _parser().parse(value) if value else None
    return parsed.e164 if parsed is not None else value


class NumberField(peewee.CharField):
    """A text column holding a telephone number, always written (and looked up) as E.164."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, str):
            value = stored_number(value)
        return super().db_value(value)  # type: ignore[no-untyped-call]


def normalise_columns(db: peewee.Database, *columns: tuple[str, str]) -> None:
    """A migration step: rewrite each ``(table, column)``'s stored numbers as E.164 (rows
    written before the column was a :class:`NumberField`). One UPDATE per distinct value."""
    for table, column in columns:
        t, c = _quote(table), _quote(column)
        cursor = db.execute_sql(f"SELECT DISTINCT {c} FROM {t} WHERE {c} IS NOT NULL")  # type: ignore[no-untyped-call]
        for (value,) in cursor.fetchall():
            normal = stored_number(str(value))
            if normal != value:
                db.execute_sql(f"UPDATE {t} SET {c} = {db.param} WHERE {c} = {db.param}", [normal, value])  # type: ignore[no-untyped-call]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
