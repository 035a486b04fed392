"""The condition language of `branch:` entries: small, declarative, evaluated without eval.

A leaf names one saved variable and one test:

    {var: birth_date, older_than_days: 60}   # an ISO date more than 60 days before today
    {var: birth_year, age_at_least: 75}      # a year (age = this year - year) or an ISO date
    {var: birth_year, age_below: 70}
    {var: household, equals: poor}           # a saved option id, text or number
    {var: household, one_of: [poor, near_poor]}
    {var: phone, is_set: true}               # answered (not skipped)

and `{all: [...]}`, `{any: [...]}`, `{not: {...}}` combine them. A variable that is missing
or of the wrong type makes a leaf false (except `is_set: false`), never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

_SLUG = re.compile(r"[a-z][a-z0-9_]{0,31}")
INT_OPS = frozenset({"older_than_days", "age_at_least", "age_below"})
OPS = INT_OPS | {"equals", "one_of", "is_set"}


class ConditionError(ValueError):
    """A condition that cannot be understood; the message says why."""


@dataclass(frozen=True)
class Test:
    var: str
    op: str
    value: Any


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Test | AllOf | AnyOf | Not


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def parse_condition(raw: Any) -> Condition:
    """Turn the YAML mapping of an `if:` into a Condition, or raise ConditionError."""
    if not isinstance(raw, dict) or not raw:
        raise ConditionError("a condition must be a mapping such as {var: age, age_at_least: 75}")
    if set(raw) in ({"all"}, {"any"}):
        key = next(iter(raw))
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise ConditionError(f"'{key}' needs a non-empty list of conditions")
        parsed = tuple(parse_condition(item) for item in items)
        return AllOf(parsed) if key == "all" else AnyOf(parsed)
    if set(raw) == {"not"}:
        return Not(parse_condition(raw["not"]))
    var = raw.get("var")
    if not isinstance(var, str) or not _SLUG.fullmatch(var):
        raise ConditionError(f"a condition needs 'var' with a variable name, got {var!r}")
    ops = [key for key in raw if key != "var"]
    if len(ops) != 1 or ops[0] not in OPS:
        raise ConditionError(
            f"a condition on '{var}' needs exactly one test of {', '.join(sorted(OPS))}; got {ops}"
        )
    op, value = ops[0], raw[ops[0]]
    if op in INT_OPS and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ConditionError(f"'{op}' needs a whole number of 0 or more, got {value!r}")
    if op == "equals" and not _scalar(value):
        raise ConditionError(f"'equals' needs a text or a number, got {value!r}")
    if op == "one_of":
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            raise ConditionError(f"'one_of' needs a non-empty list of texts or numbers, got {value!r}")
        value = tuple(value)
    if op == "is_set" and not isinstance(value, bool):
        raise ConditionError(f"'is_set' needs true or false, got {value!r}")
    return Test(var, op, value)


def variables_of(condition: Condition) -> set[str]:
    """The names of the variables a condition reads."""
    if isinstance(condition, Test):
        return {condition.var}
    if isinstance(condition, Not):
        return variables_of(condition.item)
    return set().union(*(variables_of(item) for item in condition.items))


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def birthday(value: Any, years: int) -> date | None:
    """The `years`-th birthday of an ISO date (29 February falls on 28 February in other years);
    None for anything that is not an ISO date."""
    born = _as_date(value)
    if born is None:
        return None
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return born.replace(year=born.year + years, day=28)


def _age(value: Any, today: date) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return today.year - value
    born = _as_date(value)
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _test(test: Test, variables: dict[str, Any], today: date) -> bool:
    present = test.var in variables and variables[test.var] is not None
    if test.op == "is_set":
        return present == test.value
    if not present:
        return False
    value = variables[test.var]
    if test.op == "equals":
        return value == test.value
    if test.op == "one_of":
        return value in test.value
    if test.op == "older_than_days":
        born = _as_date(value)
        return born is not None and (today - born).days > test.value
    age = _age(value, today)
    if age is None:
        return False
    return age >= test.value if test.op == "age_at_least" else age < test.value


def evaluate(condition: Condition, variables: dict[str, Any], today: date) -> bool:
    """Whether the condition holds for the run's saved variables on `today`."""
    if isinstance(condition, Test):
        return _test(condition, variables, today)
    if isinstance(condition, Not):
        return not evaluate(condition.item, variables, today)
    if isinstance(condition, AllOf):
        return all(evaluate(item, variables, today) for item in condition.items)
    return any(evaluate(item, variables, today) for item in condition.items)
