"""ASP.NET Core route templates, as the Functions host matches them.

Supports literals, ``{name}``, ``{name:constraint(args)}`` chains, optional ``{name?}`` and
catch-all ``{*name}`` / ``{**name}``; a failed constraint is no match.
https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-constraint-reference
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote

_PARAM = re.compile(r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<cons>(?::[^?}]+)*)(?P<opt>\?)?\}$")
_CONSTRAINT = re.compile(r"([a-z]+)(?:\((.*?)\))?(?=:|$)")


def _is_number(kind: Callable[[str], object]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            kind(value)
        except ValueError:
            return False
        return True

    return check


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _constraint(name: str, args: str | None) -> Callable[[str], bool]:
    """A predicate for one constraint; ``ValueError`` for an unknown one."""
    numbers = [float(a) for a in args.split(",")] if args and name != "regex" else []
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: bool(re.fullmatch(r"-?\d+", v)) and -(2**31) <= int(v) < 2**31,
        "long": lambda v: bool(re.fullmatch(r"-?\d+", v)) and -(2**63) <= int(v) < 2**63,
        "bool": lambda v: v.lower() in ("true", "false"),
        "decimal": _is_number(float),
        "double": _is_number(float),
        "float": _is_number(float),
        "datetime": _is_datetime,
        "guid": _is_guid,
        "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
    }
    if name in simple:
        return simple[name]
    if name == "minlength":
        return lambda v: len(v) >= numbers[0]
    if name == "maxlength":
        return lambda v: len(v) <= numbers[0]
    if name == "length":
        if len(numbers) == 1:
            return lambda v: len(v) == numbers[0]
        return lambda v: numbers[0] <= len(v) <= numbers[1]
    if name in ("min", "max", "range"):

        def in_range(v: str) -> bool:
            if not re.fullmatch(r"-?\d+", v):
                return False
            n = int(v)
            if name == "min":
                return n >= numbers[0]
            if name == "max":
                return n <= numbers[0]
            return numbers[0] <= n <= numbers[1]

        return in_range
    if name == "regex":
        pattern = re.compile(args or "", re.IGNORECASE)
        return lambda v: bool(pattern.search(v))
    raise ValueError(f"unknown route constraint '{name}'")


@dataclass
class _Segment:
    literal: str | None = None
    name: str = ""
    optional: bool = False
    catch_all: bool = False
    checks: list[Callable[[str], bool]] = field(default_factory=list)


@dataclass
class RouteTemplate:
    """A compiled template; ``match`` returns the route params or None."""

    template: str
    segments: list[_Segment]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Compile a template such as ``products/{category:alpha}/{id:int?}``."""
        segments: list[_Segment] = []
        parts = [p for p in template.strip("/").split("/") if p != ""]
        for index, part in enumerate(parts):
            found = _PARAM.match(part)
            if not found:
                segments.append(_Segment(literal=part.lower()))
                continue
            checks = [_constraint(m.group(1), m.group(2)) for m in _CONSTRAINT.finditer(found["cons"].lstrip(":"))]
            catch_all = bool(found["star"])
            if catch_all and index != len(parts) - 1:
                raise ValueError(f"a catch-all must be the last segment: {template}")
            segments.append(
                _Segment(
                    name=found["name"], optional=bool(found["opt"]) or catch_all, catch_all=catch_all, checks=checks
                )
            )
        return cls(template, segments)

    def match(self, path: str) -> dict[str, str] | None:
        """Route params for ``path`` (already without the route prefix), or None."""
        parts = [unquote(p) for p in path.strip("/").split("/") if p != ""]
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                rest = "/".join(parts[index:])
                if rest:
                    params[segment.name] = rest
                return params
            if index >= len(parts):
                if all(s.optional for s in self.segments[index:]):
                    return params
                return None
            value = parts[index]
            if segment.literal is not None:
                if value.lower() != segment.literal:
                    return None
                continue
            if not all(check(value) for check in segment.checks):
                return None
            params[segment.name] = value
        return params if len(parts) == len(self.segments) else None

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: literals beat parameters, constrained beat plain, catch-alls come last."""
        ranks = []
        for segment in self.segments:
            if segment.literal is not None:
                ranks.append(0)
            elif segment.catch_all:
                ranks.append(3)
            else:
                ranks.append(1 if segment.checks else 2)
        return (*ranks, 9)
