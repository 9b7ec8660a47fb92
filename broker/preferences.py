"""Each technician's console preferences, kept by the broker so that they follow the
technician to any browser. Seed 002's alert settings: how long an alert's pop-up stays,
and whether alerts (and their sound) come while a session is in front of the technician."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import Clock
from .errors import InvalidInput
from .schema import technician_preferences

MAX_POPUP_SECONDS: Final = 120


@dataclasses.dataclass(frozen=True, slots=True)
class Preferences:
    """docs/api.md describes each field; a field nobody set has its default here."""

    popup_seconds: int = 30  # how long an alert's pop-up stays; 0: no pop-ups
    sound: bool = True  # play the alert sound
    in_session_alerts: bool = False  # alerts also while a session is in front of them
    in_session_sound: bool = False  # and their sound then
    desktop_notifications: bool = True  # alerts also as the system's notifications
    transcript_email: bool = False  # the transcript of each of my sessions by email
    transcript_language: str = "en"  # ... in this language (en, de)

    def __post_init__(self) -> None:
        if not 0 <= self.popup_seconds <= MAX_POPUP_SECONDS:
            raise ValueError(f"popup_seconds is from 0 to {MAX_POPUP_SECONDS}")
        if self.transcript_language not in ("en", "de"):
            raise ValueError("transcript_language is en or de")

    def changed(self, changes: Mapping[str, Any]) -> Preferences:
        """These preferences with `changes` (a JSON object's fields) made; every name and
        value checked, so nothing is half applied."""
        fields = {field.name: field.type for field in dataclasses.fields(self)}
        for name, value in changes.items():
            kind = fields.get(name)
            if kind is None:
                raise InvalidInput(f"There is no preference {name[:40]!r}.",
                                   code="bad_preference")
            if kind == "bool" and not isinstance(value, bool):
                raise InvalidInput(f"{name} is true or false.", code="bad_preference")
            if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
                raise InvalidInput(f"{name} is a whole number.", code="bad_preference")
            if kind == "str" and not isinstance(value, str):
                raise InvalidInput(f"{name} is text.", code="bad_preference")
        try:
            return dataclasses.replace(self, **changes)
        except ValueError as exc:
            raise InvalidInput(f"{exc}.", code="bad_preference") from exc

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _stored(preferences: Preferences) -> str:
    """Only what differs from the defaults: a default changed later reaches everyone who
    never chose otherwise."""
    defaults = Preferences().as_json()
    return json.dumps({name: value for name, value in preferences.as_json().items()
                       if defaults[name] != value})


def _load(stored: str | None) -> Preferences:
    if stored is None:
        return Preferences()
    known = Preferences().as_json()
    # A preference that no longer exists is left behind, not an error.
    return Preferences().changed({name: value for name, value in json.loads(stored).items()
                                  if name in known})


class PreferenceStore:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def get(self, technician_id: int) -> Preferences:
        async with self._engine.connect() as conn:
            stored = await conn.scalar(sa.select(technician_preferences.c.preferences).where(
                technician_preferences.c.technician_id == technician_id))
        return _load(stored)

    async def change(self, technician_id: int, changes: Mapping[str, Any]) -> Preferences:
        """Make `changes` to the technician's preferences; the others keep their values."""
        Preferences().changed(changes)  # refuse bad input before touching anything
        try:
            return await self._change(technician_id, changes)
        except sa.exc.IntegrityError:
            # Another change made the row first: change that one.
            return await self._change(technician_id, changes)

    async def _change(self, technician_id: int, changes: Mapping[str, Any]) -> Preferences:
        row = technician_preferences.c.technician_id == technician_id
        async with self._engine.begin() as conn:
            stored = await conn.scalar(sa.select(technician_preferences.c.preferences)
                                       .where(row).with_for_update())
            preferences = _load(stored).changed(changes)
            values = {"preferences": _stored(preferences), "updated_at": self._clock.now()}
            if stored is None:
                await conn.execute(technician_preferences.insert().values(
                    technician_id=technician_id, **values))
            else:
                await conn.execute(technician_preferences.update().where(row).values(**values))
        return preferences
