"""The pre-chat form: what admins configure, and the checks on what customers send.

The form has six built-in fields (name, email, phone, description, severity, team), each
shown or not and required or not, and up to `MAX_CUSTOM` custom ones: short text, long
text, or a choice list. With the fields come the response targets per severity. Admins
read and replace the whole configuration as one JSON document (`to_json`, `parse`);
customers' answers are checked against it on the server (`FormConfig.check`).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

from .. import inputs
from ..errors import InvalidInput
from .model import DEFAULT_TARGETS, Severity, Target

MAX_CUSTOM = 20
MAX_CHOICES = 50
MAX_LABEL = 100
NAME_LENGTH = 80
LANGUAGES = ("en", "de")
HONEYPOT = "website"  # a field no person sees (docs/portal.md); bots fill it
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class FieldKind(enum.StrEnum):
    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    CHOICE = "choice"
    EMAIL = "email"
    PHONE = "phone"
    SEVERITY = "severity"
    TEAM = "team"


CUSTOM_KINDS = (FieldKind.SHORT_TEXT, FieldKind.LONG_TEXT, FieldKind.CHOICE)
# The built-in fields: their kinds, and whether they are shown and required by default.
BUILT_IN: dict[str, tuple[FieldKind, bool, bool]] = {
    "name": (FieldKind.SHORT_TEXT, True, True),
    "email": (FieldKind.EMAIL, True, True),
    "phone": (FieldKind.PHONE, True, False),
    "description": (FieldKind.LONG_TEXT, True, True),
    "severity": (FieldKind.SEVERITY, True, False),
    "team": (FieldKind.TEAM, True, False),
}


class FieldInvalid(InvalidInput):
    """A form field's value was refused; `field` names it (the portal marks it)."""

    def __init__(self, field: str, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        self.field = field


@dataclasses.dataclass(frozen=True, slots=True)
class FormField:
    name: str
    kind: FieldKind
    required: bool
    enabled: bool = True
    label: tuple[tuple[str, str], ...] = ()  # (language, text); built-ins: the portal's
    choices: tuple[str, ...] = ()

    @property
    def built_in(self) -> bool:
        return self.name in BUILT_IN

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind.value,
                                "required": self.required, "enabled": self.enabled,
                                "built_in": self.built_in, "label": dict(self.label)}
        if self.kind is FieldKind.CHOICE:
            data["choices"] = list(self.choices)
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class Answers:
    """A customer's checked answers (`team` as they gave it, resolved by the service)."""

    name: str
    email: str | None
    phone: str | None
    description: str
    severity: Severity
    team: str | None
    custom: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class FormConfig:
    fields: tuple[FormField, ...]
    targets: tuple[Target, ...]
    default_severity: Severity = Severity.STANDARD

    def field(self, name: str) -> FormField:
        return next(field for field in self.fields if field.name == name)

    def target(self, severity: Severity) -> Target:
        return next(target for target in self.targets if target.severity is severity)

    def to_json(self) -> dict[str, Any]:
        return {"fields": [field.to_json() for field in self.fields],
                "severities": [{"level": t.severity.value, "target_seconds": t.seconds,
                                "business_hours": t.business_hours} for t in self.targets],
                "default_severity": self.default_severity.value}

    def check(self, values: dict[str, Any], *, short_max: int, long_max: int,
              region: str) -> Answers:
        """The answers in `values`, checked field by field; raises FieldInvalid."""
        known = {field.name for field in self.fields if field.enabled} | {"team", HONEYPOT}
        for name in values:
            if name not in known:
                raise FieldInvalid(name, f"The form has no field {name!r}.",
                                   code="unknown_field")
        found: dict[str, str] = {}
        for field in self.fields:
            raw = values.get(field.name) if field.enabled or field.name == "team" else None
            if raw is not None and not isinstance(raw, str):
                raise FieldInvalid(field.name, f"{field.name} must be text.",
                                   code="invalid_field")
            text = _text(raw or "", multiline=field.kind is FieldKind.LONG_TEXT)
            if not text:
                if field.required and field.enabled:
                    raise FieldInvalid(field.name, f"{field.name} is required.",
                                       code="field_required")
                continue
            found[field.name] = _value(field, text, short_max, long_max, region)
        severity = Severity(found.pop("severity", self.default_severity.value))
        return Answers(found.pop("name", ""), found.pop("email", None),
                       found.pop("phone", None), found.pop("description", ""), severity,
                       found.pop("team", None), found)


def default_form() -> FormConfig:
    return FormConfig(tuple(FormField(name, kind, required, enabled)
                            for name, (kind, enabled, required) in BUILT_IN.items()),
                      DEFAULT_TARGETS)


def _text(raw: str, *, multiline: bool) -> str:
    """Trimmed, without control characters (line breaks only in long text)."""
    if multiline:
        lines = ["".join(c for c in line if c >= " " or c == "\t").rstrip()
                 for line in raw.replace("\r\n", "\n").split("\n")]
        return "\n".join(lines).strip()
    return " ".join("".join(c if c >= " " else " " for c in raw).split())


def email_address(name: str, text: str) -> str:
    """`text` as a normalised email address; FieldInvalid (`name`) if it is none."""
    try:
        return inputs.email_address(text)
    except InvalidInput as exc:
        raise FieldInvalid(name, exc.message, code=exc.code) from exc


def _value(field: FormField, text: str, short_max: int, long_max: int, region: str) -> str:
    limit = {FieldKind.LONG_TEXT: long_max, FieldKind.EMAIL: 254, FieldKind.PHONE: 40}.get(
        field.kind, NAME_LENGTH if field.name == "name" else short_max)
    if len(text) > limit:
        raise FieldInvalid(field.name, f"{field.name} has at most {limit} characters.",
                           code="field_too_long")
    if field.kind is FieldKind.EMAIL:
        return email_address(field.name, text)
    if field.kind is FieldKind.PHONE:
        try:
            return inputs.phone_number(text, region)
        except InvalidInput as exc:
            raise FieldInvalid(field.name, exc.message, code=exc.code) from exc
    if field.kind is FieldKind.SEVERITY and text not in {level.value for level in Severity}:
        raise FieldInvalid(field.name, f"severity is one of {', '.join(Severity)}.",
                           code="invalid_choice")
    if field.kind is FieldKind.CHOICE and text not in field.choices:
        raise FieldInvalid(field.name, f"{field.name} is one of the listed choices.",
                           code="invalid_choice")
    return text


# -- reading an admin's configuration ---------------------------------------------------------


def parse(document: Any) -> FormConfig:
    """An admin's configuration document (see docs/api.md), checked whole."""
    # `teams` is what GET adds for the portal: read-only, so a GET's answer can be PUT back.
    if not isinstance(document, dict) or not document.keys() <= {
            "fields", "severities", "default_severity", "teams"}:
        raise InvalidInput("The form is an object of fields, severities and "
                           "default_severity.", code="invalid_form")
    given = document.get("fields", [])
    if not isinstance(given, list):
        raise InvalidInput("fields is a list.", code="invalid_form")
    fields = [_field(item) for item in given]
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        raise InvalidInput("Two fields have the same name.", code="invalid_form")
    if sum(not field.built_in for field in fields) > MAX_CUSTOM:
        raise InvalidInput(f"At most {MAX_CUSTOM} custom fields.", code="invalid_form")
    # Built-ins left out keep their defaults, in their usual place.
    for name in BUILT_IN:
        if name not in names:
            kind, enabled, required = BUILT_IN[name]
            fields.insert(list(BUILT_IN).index(name), FormField(name, kind, required, enabled))
    try:
        default = Severity(document.get("default_severity", Severity.STANDARD.value))
    except ValueError:
        raise InvalidInput("default_severity is one of the severity levels.",
                           code="invalid_form") from None
    return FormConfig(tuple(fields), _targets(document.get("severities", [])), default)


def _field(item: Any) -> FormField:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InvalidInput("Each field is an object with a name.", code="invalid_form")
    name = item["name"]
    if not _FIELD_NAME.match(name) or name == HONEYPOT:
        raise InvalidInput(f"{name[:40]!r} is no field name (a-z, 0-9, _; not "
                           f"{HONEYPOT!r}).", code="invalid_form")
    extra = item.keys() - {"name", "kind", "required", "enabled", "label", "choices",
                           "built_in"}
    if extra:
        raise InvalidInput(f"Field {name}: unknown keys {sorted(extra)}.", code="invalid_form")
    if name in BUILT_IN:
        kind, enabled, required = BUILT_IN[name]
        if item.get("kind", kind.value) != kind.value:
            raise InvalidInput(f"The built-in field {name} is of kind {kind}.",
                               code="invalid_form")
    else:
        if item.get("kind") not in {kind.value for kind in CUSTOM_KINDS}:
            raise InvalidInput(f"Field {name}: kind is short_text, long_text or choice.",
                               code="invalid_form")
        kind, enabled, required = FieldKind(item["kind"]), True, False
    flags = [item.get("required", required), item.get("enabled", enabled)]
    if not all(isinstance(flag, bool) for flag in flags):
        raise InvalidInput(f"Field {name}: required and enabled are true or false.",
                           code="invalid_form")
    label = _label(name, item.get("label", {}), needed=name not in BUILT_IN)
    choices = _choices(name, item.get("choices")) if kind is FieldKind.CHOICE else ()
    return FormField(name, kind, flags[0], flags[1], label, choices)


def _label(name: str, label: Any, *, needed: bool) -> tuple[tuple[str, str], ...]:
    if isinstance(label, str):
        label = {"en": label}
    if not isinstance(label, dict) or not label.keys() <= set(LANGUAGES) or not all(
            isinstance(text, str) and 0 < len(text.strip()) <= MAX_LABEL
            for text in label.values()):
        raise InvalidInput(f"Field {name}: label is text, or an object of en and de texts, "
                           f"each 1 to {MAX_LABEL} characters.", code="invalid_form")
    if needed and not label:
        raise InvalidInput(f"Field {name} needs a label.", code="invalid_form")
    return tuple((lang, " ".join(text.split())) for lang, text in sorted(label.items()))


def _choices(name: str, choices: Any) -> tuple[str, ...]:
    if not isinstance(choices, list) or not 0 < len(choices) <= MAX_CHOICES or not all(
            isinstance(c, str) and 0 < len(c.strip()) <= MAX_LABEL for c in choices):
        raise InvalidInput(f"Field {name}: choices is a list of 1 to {MAX_CHOICES} texts, "
                           f"each 1 to {MAX_LABEL} characters.", code="invalid_form")
    cleaned = tuple(" ".join(choice.split()) for choice in choices)
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInput(f"Field {name}: the choices repeat.", code="invalid_form")
    return cleaned


def _targets(items: Any) -> tuple[Target, ...]:
    if not isinstance(items, list):
        raise InvalidInput("severities is a list.", code="invalid_form")
    given: dict[Severity, Target] = {}
    for item in items:
        try:
            severity = Severity(item["level"])
            seconds, business = item["target_seconds"], item.get("business_hours", False)
            if not isinstance(seconds, int) or isinstance(seconds, bool) \
                    or not isinstance(business, bool) or severity in given \
                    or not item.keys() <= {"level", "target_seconds", "business_hours"}:
                raise ValueError(item)
            given[severity] = Target(severity, seconds, business)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("Each severity is {level, target_seconds (60 to 7776000), "
                               "business_hours}, each level once.",
                               code="invalid_form") from None
    defaults = {target.severity: target for target in DEFAULT_TARGETS}
    return tuple(given.get(severity, defaults[severity]) for severity in Severity)
