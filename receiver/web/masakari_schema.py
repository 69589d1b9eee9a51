"""Masakari API v1 request rules: microversions, bodies, filters, sorting and pagination.

Messages follow Masakari's (``Invalid input for field/attribute <field>. Value: <value>.
<reason>``) so operators and scripts see the same words; a fencing value is never echoed,
in case a password was typed where a reference belongs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.errors import InputError, UnknownReference
from receiver.inventory import RecoveryMethod, SegmentSpec

SERVICE_TYPE = "instance-ha"
MIN_VERSION = (1, 0)
MAX_VERSION = (1, 3)
ENABLED_SINCE = (1, 2)  # segment `enabled`
MAX_LIMIT = 1000  # Masakari's osapi_max_limit

_TRUE = ("True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes")
_FALSE = ("False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no")
_QUERY_TRUE = ("1", "t", "true", "on", "y", "yes")
_QUERY_FALSE = ("0", "f", "false", "off", "n", "no")
_METHODS = [m.value for m in RecoveryMethod]


class VersionNotAcceptable(Exception):
    """The requested microversion is outside MIN..MAX (Masakari: 406)."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, version: tuple[int, int]) -> bool:
        return (self.major, self.minor) >= version


def requested_version(header: str | None) -> Version:
    """`OpenStack-API-Version: instance-ha X.Y` (or `latest`); no header means 1.0."""
    wanted = None
    for part in (header or "").split(","):
        service, _, value = part.strip().partition(" ")
        if service.lower() == SERVICE_TYPE:
            wanted = value.strip()
    if wanted is None:
        return Version(*MIN_VERSION)
    if wanted == "latest":
        return Version(*MAX_VERSION)
    major, dot, minor = wanted.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise InputError(
            "OpenStack-API-Version",
            f"API Version String {wanted} is of invalid format. Must be of format MajorNum.MinorNum.",
        )
    version = Version(int(major), int(minor))
    if not MIN_VERSION <= (version.major, version.minor) <= MAX_VERSION:
        low, high = Version(*MIN_VERSION), Version(*MAX_VERSION)
        raise VersionNotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {low} and maximum is {high}."
        )
    return version


# -- bodies ------------------------------------------------------------------------------

Rule = Callable[[str, Any], Any]


def _invalid(field: str, value: Any, reason: str) -> InputError:
    return InputError(field, f"Value: {value}. {reason}")


def _string(low: int, high: int, nullable: bool = False, strip_checked: bool = False) -> Rule:
    def check(field: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise _invalid(field, value, f"{value!r} is not of type 'string'")
        if len(value) < low:
            raise _invalid(field, value, f"{value!r} is too short")
        if len(value) > high:
            raise _invalid(field, value, f"{value!r} is too long")
        if strip_checked and (value != value.strip() or not value.isprintable()):
            raise _invalid(field, value, f"{value!r} does not match the name format (printable, not padded)")
        return value

    return check


def _boolean(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    choices = [True, *_TRUE, False, *_FALSE]
    raise _invalid(field, value, f"{value!r} is not one of {choices}")


def _method(field: str, value: Any) -> str:
    if value not in _METHODS:
        raise _invalid(field, value, f"{value!r} is not one of {_METHODS}")
    return str(value)


_NAME = _string(1, 255, strip_checked=True)
SEGMENT_RULES: dict[str, Rule] = {
    "name": _NAME,
    "description": _string(0, 255, nullable=True),
    "recovery_method": _method,
    "service_type": _NAME,
}
SEGMENT_REQUIRED = ("name", "recovery_method", "service_type")
HOST_RULES: dict[str, Rule] = {
    "name": _NAME,
    "type": _string(0, 255),
    "control_attributes": _string(0, 65535),
    "reserved": _boolean,
    "on_maintenance": _boolean,
}
HOST_REQUIRED = ("name", "type", "control_attributes")
# Fields of ours beyond Masakari's, accepted at any microversion (clients never send them).
_SEGMENT_OURS = frozenset(SegmentSpec.model_fields) - {"uuid", "hosts", "enabled", *SEGMENT_RULES}


def envelope(body: Any, resource: str) -> dict[str, Any]:
    """The object inside `{"<resource>": {...}}`; nothing else may stand beside it."""
    if not isinstance(body, dict) or resource not in body:
        raise _invalid(resource, body, f"'{resource}' is a required property")
    extra = sorted(set(body) - {resource})
    if extra:
        raise _invalid(resource, body, f"Additional properties are not allowed ({_unexpected(extra)})")
    inner = body[resource]
    if not isinstance(inner, dict):
        raise _invalid(resource, inner, f"{inner!r} is not of type 'object'")
    return inner


def segment_fields(body: Any, version: Version, *, create: bool) -> dict[str, Any]:
    rules = dict(SEGMENT_RULES)
    if version.at_least(ENABLED_SINCE):
        rules["enabled"] = _boolean
    required = SEGMENT_REQUIRED if create else ()
    return _fields(envelope(body, "segment"), "segment", rules, ours=_SEGMENT_OURS, required=required)


def host_fields(body: Any, *, create: bool) -> dict[str, Any]:
    inner = envelope(body, "host")
    fields = _fields(
        {k: v for k, v in inner.items() if k != "fencing"},
        "host",
        HOST_RULES,
        ours=frozenset(),
        required=HOST_REQUIRED if create else (),
        allow_empty="fencing" in inner,
    )
    if "fencing" in inner:
        fields["bmc"] = bmc_fields(inner["fencing"])
    return fields


def _fields(
    inner: Mapping[str, Any],
    resource: str,
    rules: Mapping[str, Rule],
    *,
    ours: frozenset[str],
    required: Sequence[str],
    allow_empty: bool = False,
) -> dict[str, Any]:
    extra = sorted(set(inner) - set(rules) - ours)
    if extra:
        raise _invalid(resource, dict(inner), f"Additional properties are not allowed ({_unexpected(extra)})")
    for name in required:
        if name not in inner:
            raise _invalid(resource, dict(inner), f"'{name}' is a required property")
    if not inner and not required and not allow_empty:
        raise _invalid(resource, dict(inner), "{} is not valid under any of the given schemas")
    return {name: rules[name](name, value) if name in rules else value for name, value in inner.items()}


def bmc_fields(fencing: Any) -> dict[str, Any] | None:
    """Our fencing block -> the inventory's `bmc`. The password is a reference only:
    `password_ref` "env:VARIABLE" or "file:/path", or `password` {"env": ...} / {"file": ...}."""
    if fencing is None:
        return None
    if not isinstance(fencing, dict):
        raise InputError("fencing", "Value: (not shown). must be an object or null")
    allowed = {"driver", "address", "port", "username", "password", "password_ref"}
    extra = sorted(set(fencing) - allowed)
    if extra:
        raise InputError(
            "fencing", f"Value: (not shown). Additional properties are not allowed ({_unexpected(extra)})"
        )
    bmc = {k: v for k, v in fencing.items() if k not in ("password", "password_ref")}
    if "password" in fencing and not isinstance(fencing["password"], dict):
        raise InputError(
            "fencing.password",
            "Value: (not shown). A secret value is never accepted: give password_ref as "
            "'env:VARIABLE' or 'file:/path'",
        )
    if "password" in fencing:
        bmc["password"] = fencing["password"]
    if "password_ref" in fencing:
        kind, sep, where = str(fencing["password_ref"]).partition(":")
        if not sep or kind not in ("env", "file") or not where:
            raise InputError(
                "fencing.password_ref", "Value: (not shown). must be 'env:VARIABLE' or 'file:/path'"
            )
        bmc["password"] = {kind: where}
    return bmc


def _unexpected(names: Sequence[str]) -> str:
    quoted = ", ".join(f"'{n}'" for n in names)
    return f"{quoted} {'was' if len(names) == 1 else 'were'} unexpected"


# -- lists -------------------------------------------------------------------------------


def query_bool(field: str, raw: str) -> bool:
    if raw.lower() in _QUERY_TRUE:
        return True
    if raw.lower() in _QUERY_FALSE:
        return False
    acceptable = ", ".join(f"'{v}'" for v in sorted(_QUERY_TRUE + _QUERY_FALSE))
    raise _invalid(field, raw, f"Unrecognized value '{raw}', acceptable values are: {acceptable}")


@dataclass(frozen=True)
class Page:
    limit: int
    marker: str | None
    sort: tuple[tuple[str, bool], ...]  # (key, descending)


def page(args: Mapping[str, Sequence[str]], sort_keys: frozenset[str]) -> Page:
    limit = MAX_LIMIT
    if args.get("limit"):
        raw = args["limit"][-1]
        if not raw.lstrip("-").isdigit():
            raise _invalid("limit", raw, "limit param must be an integer")
        if int(raw) < 0:
            raise _invalid("limit", raw, "limit param must be positive")
        limit = min(int(raw), MAX_LIMIT)
    keys = list(args.get("sort_key", [])) or ["created_at"]
    dirs = list(args.get("sort_dir", []))
    for key in keys:
        if key not in sort_keys:
            raise _invalid("sort_key", key, f"Sort key supplied is invalid: {key}")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise _invalid("sort_dir", direction, "Unknown sort direction, must be 'desc' or 'asc'")
    dirs += [dirs[-1] if dirs else "desc"] * (len(keys) - len(dirs))
    sort = [(k, d == "desc") for k, d in zip(keys, dirs, strict=False)]
    if "id" not in keys:
        sort.append(("id", sort[0][1]))  # a unique last key makes the order total, as Masakari's
    markers = args.get("marker")
    return Page(limit, markers[-1] if markers else None, tuple(sort))


def paginate(
    items: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool], at: Page
) -> list[dict[str, Any]]:
    """Filter, sort and cut a page; the marker (uuid or id) is found among all items, as
    Masakari looks it up by value, not within the filtered set."""
    ordered = list(items)
    for key, descending in reversed(at.sort):
        ordered.sort(key=lambda item: _sortable(item.get(key)), reverse=descending)
    if at.marker is not None:
        position = next(
            (i for i, item in enumerate(ordered) if at.marker in (item["uuid"], str(item["id"]))), None
        )
        if position is None:
            raise UnknownReference("marker", f"Marker {at.marker} could not be found.")
        ordered = ordered[position + 1 :]
    return [item for item in ordered if keep(item)][: at.limit]


def _sortable(value: Any) -> tuple[int, Any]:
    # None first (as SQL sorts NULL ascending in MySQL), then values of one type per key.
    return (0, "") if value is None else (1, value)
