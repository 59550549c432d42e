"""Route templates and timer schedules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devhost.routing import RouteTemplate
from devhost.timers import next_occurrence, previous_occurrence


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("products/{category:alpha}/{id:int?}", "products/books/12", {"category": "books", "id": "12"}),
        ("products/{category:alpha}/{id:int?}", "products/books", {"category": "books"}),
        ("products/{category:alpha}/{id:int?}", "products/b00ks", None),
        ("x/{n:int:max(10)?}", "x/10", {"n": "10"}),
        ("x/{n:int:max(10)?}", "x/11", None),
        ("x/{n:range(1,5)}", "x/0", None),
        ("x/{g:guid}", "x/0f8fad5b-d9cb-469f-a165-70867728950e", {"g": "0f8fad5b-d9cb-469f-a165-70867728950e"}),
        ("x/{g:guid}", "x/not-a-guid", None),
        ("x/{s:length(2,3)}", "x/abcd", None),
        ("x/{s:regex(^a+$)}", "x/aaa", {"s": "aaa"}),
        ("x/{b:bool}", "x/TRUE", {"b": "TRUE"}),
        ("x/{d:datetime}", "x/2026-11-23", {"d": "2026-11-23"}),
        ("x/{**rest}", "x/a/b", {"rest": "a/b"}),
        ("x/{id}", "x/a%20b", {"id": "a b"}),
        ("X/Y", "x/y", {}),
    ],
)
def test_templates(template: str, path: str, expected: dict | None) -> None:
    assert RouteTemplate.parse(template).match(path) == expected


def test_precedence_orders_literal_before_parameter_before_catch_all() -> None:
    literal, constrained, plain, rest = (
        RouteTemplate.parse(t) for t in ("items/new", "items/{id:int}", "items/{name}", "{*path}")
    )
    assert sorted([rest, plain, literal, constrained], key=lambda t: t.precedence) == [
        literal,
        constrained,
        plain,
        rest,
    ]


def test_catch_all_must_be_last() -> None:
    with pytest.raises(ValueError):
        RouteTemplate.parse("{*rest}/x")
    with pytest.raises(ValueError):
        RouteTemplate.parse("x/{id:nosuch}")


def test_six_field_schedules() -> None:
    start = datetime(2026, 11, 23, 10, 0, 7, tzinfo=UTC)
    assert next_occurrence("*/15 * * * * *", start) == datetime(2026, 11, 23, 10, 0, 15, tzinfo=UTC)
    assert next_occurrence("0 */5 * * * *", start) == datetime(2026, 11, 23, 10, 5, 0, tzinfo=UTC)
    assert next_occurrence("0 30 9 * * Mon", start) == datetime(2026, 11, 30, 9, 30, tzinfo=UTC)  # 23rd is a Monday
    assert next_occurrence("0 0 0 * * 0", start) == datetime(2026, 11, 29, tzinfo=UTC)  # 0 = Sunday
    assert previous_occurrence("0 */5 * * * *", start) == datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        next_occurrence("*/5 * * * *", start)  # five fields is not NCRONTAB
