"""The pre-chat form: configured by admins, checked on the server; and business hours."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from broker.errors import InvalidInput
from broker.intake.hours import BusinessHours

from .intake_support import MakeTech, json_of, queue_of, submit, team_of
from .intake_support import settings as settings  # noqa: F401 - a fixture

BERLIN = ZoneInfo("Europe/Berlin")
FORM = {
    "fields": [
        {"name": "phone", "required": True},
        {"name": "severity", "enabled": False},
        {"name": "order", "kind": "short_text", "required": True,
         "label": {"en": "Order number", "de": "Bestellnummer"}},
        {"name": "product", "kind": "choice", "label": "Product",
         "choices": ["Printer", "Scanner"]},
        {"name": "steps", "kind": "long_text", "label": "What did you try?"},
    ],
    "severities": [{"level": "standard", "target_seconds": 1800, "business_hours": False}],
    "default_severity": "high",
}


def at(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize("start, seconds, due", [
    # Seed 003: two business hours on a Friday afternoon fall due on Monday morning.
    (at(2027, 1, 15, 16, 30), 7200, at(2027, 1, 18, 10, 30)),
    # Across the weekend the clocks go forward (28 March 2027): still 10:00 local.
    (at(2027, 3, 26, 16, 0), 7200, at(2027, 3, 29, 10, 0)),
    # ...and back (31 October 2027).
    (at(2027, 10, 29, 16, 0), 7200, at(2027, 11, 1, 10, 0)),
    # Before opening, on a Saturday, after closing: the clock starts at the next opening.
    (at(2027, 1, 18, 7, 0), 3600, at(2027, 1, 18, 10, 0)),
    (at(2027, 1, 16, 12, 0), 3600, at(2027, 1, 18, 10, 0)),
    (at(2027, 1, 18, 17, 0), 60, at(2027, 1, 19, 9, 1)),
    # A business day (eight business hours) from Wednesday noon: Thursday noon.
    (at(2027, 1, 20, 12, 0), 8 * 3600, at(2027, 1, 21, 12, 0)),
])
def test_business_hours_skip_nights_and_weekends(start: float, seconds: float,
                                                 due: float) -> None:
    hours = BusinessHours.parse("Europe/Berlin", "mon,tue,wed,thu,fri", "09:00-17:00")
    assert hours.add(start, seconds) == due


def test_across_the_change_to_summer_time_is_an_hour_less_in_utc() -> None:
    hours = BusinessHours.parse("Europe/Berlin", "mon,tue,wed,thu,fri", "09:00-17:00")
    due = hours.add(at(2027, 3, 26, 16, 0), 7200)
    assert dt.datetime.fromtimestamp(due, dt.UTC).hour == 8  # 10:00 CEST; CET would be 9


@pytest.mark.parametrize("zone, days, hours", [
    ("Mars/Olympus", "mon", "09:00-17:00"), ("UTC", "", "09:00-17:00"),
    ("UTC", "mon,funday", "09:00-17:00"), ("UTC", "mon", "17:00-09:00"),
    ("UTC", "mon", "nine to five"),
])
def test_bad_business_hours_are_refused(zone: str, days: str, hours: str) -> None:
    with pytest.raises(InvalidInput):
        BusinessHours.parse(zone, days, hours)


async def test_admins_configure_the_form(client: TestClient, make_tech: MakeTech) -> None:
    admin, alice = await make_tech("Root", admin=True), await make_tech("Alice")
    default = await json_of(await client.get("/api/v1/intake-form"), 200)  # public
    assert [f["name"] for f in default["fields"]] == [
        "name", "email", "phone", "description", "severity", "team"]
    assert [(s["level"], s["target_seconds"], s["business_hours"])
            for s in default["severities"]] == [
        ("critical", 3600, False), ("high", 3600, False), ("standard", 7200, True),
        ("bugfix", 28800, True), ("request", 28800, True)]
    refused = await client.put("/api/v1/intake-form", headers=alice.auth, json=FORM)
    assert refused.status == 403
    saved = await json_of(await client.put("/api/v1/intake-form", headers=admin.auth,
                                           json=FORM), 200)
    assert saved == await json_of(await client.get("/api/v1/intake-form"), 200)
    fields = {f["name"]: f for f in saved["fields"]}
    assert list(fields) == ["name", "email", "phone", "description", "severity", "team",
                            "order", "product", "steps"]
    assert fields["phone"]["required"] and not fields["severity"]["enabled"]
    assert fields["order"] == {"name": "order", "kind": "short_text", "required": True,
                               "enabled": True, "built_in": False,
                               "label": {"de": "Bestellnummer", "en": "Order number"}}
    assert fields["product"]["choices"] == ["Printer", "Scanner"]
    assert fields["product"]["label"] == {"en": "Product"}
    assert saved["severities"][2] == {"level": "standard", "target_seconds": 1800,
                                      "business_hours": False}
    assert saved["default_severity"] == "high"
    # What GET answers can be PUT back as it is; the teams come along for the portal.
    await team_of(client, "Tier 1", alice, online=False)
    again = await json_of(await client.get("/api/v1/intake-form"), 200)
    assert again["teams"] == [{"team_id": 1, "name": "Tier 1", "slug": "tier-1"}]
    assert await json_of(await client.put("/api/v1/intake-form", headers=admin.auth,
                                          json=again), 200) == again


@pytest.mark.parametrize("document", [
    [], {"fields": {}}, {"colour": "blue"},
    {"fields": [{"name": "order", "kind": "date", "label": "When"}]},
    {"fields": [{"name": "x", "kind": "short_text", "label": "X"},
                {"name": "x", "kind": "short_text", "label": "Y"}]},
    {"fields": [{"name": "website", "kind": "short_text", "label": "Site"}]},
    {"fields": [{"name": "Order No", "kind": "short_text", "label": "Order"}]},
    {"fields": [{"name": "order", "kind": "short_text"}]},
    {"fields": [{"name": "order", "kind": "short_text", "label": {"fr": "Commande"}}]},
    {"fields": [{"name": "order", "kind": "short_text", "label": "x" * 101}]},
    {"fields": [{"name": "product", "kind": "choice", "label": "P", "choices": []}]},
    {"fields": [{"name": "product", "kind": "choice", "label": "P", "choices": ["a", "a"]}]},
    {"fields": [{"name": "email", "kind": "long_text"}]},
    {"fields": [{"name": "email", "required": "yes"}]},
    {"fields": [{"name": "order", "kind": "short_text", "label": "O", "size": 3}]},
    {"fields": [{"name": f"f{n}", "kind": "short_text", "label": "F"} for n in range(21)]},
    {"severities": [{"level": "urgent", "target_seconds": 60}]},
    {"severities": [{"level": "high", "target_seconds": 59}]},
    {"severities": [{"level": "high", "target_seconds": 60, "business_hours": "no"}]},
    {"severities": [{"level": "high", "target_seconds": 60},
                    {"level": "high", "target_seconds": 90}]},
    {"default_severity": "urgent"},
])
async def test_a_bad_form_is_refused_whole(client: TestClient, make_tech: MakeTech,
                                           document: Any) -> None:
    admin = await make_tech("Root", admin=True)
    response = await client.put("/api/v1/intake-form", headers=admin.auth, json=document)
    assert response.status == 400, await response.text()
    assert (await response.json())["error"] in ("invalid_form", "bad_json")
    assert len((await json_of(await client.get("/api/v1/intake-form"), 200))["fields"]) == 6


async def test_answers_are_checked_on_the_server(client: TestClient,
                                                 make_tech: MakeTech) -> None:
    admin, alice = await make_tech("Root", admin=True), await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    await json_of(await client.put("/api/v1/intake-form", headers=admin.auth, json=FORM), 200)
    good = {"phone": "+49 30 1234567", "order": "A-1", "product": "Printer"}
    for change, field, code in [
            ({"order": " \t "}, "order", "field_required"),
            ({"phone": None}, "phone", "field_required"),
            ({"email": "carla@"}, "email", "invalid_email"),
            ({"phone": "12"}, "phone", "invalid_phone"),
            ({"product": "Toaster"}, "product", "invalid_choice"),
            ({"order": "x" * 201}, "order", "field_too_long"),
            ({"name": "x" * 81}, "name", "field_too_long"),
            ({"description": "y" * 4001}, "description", "field_too_long"),
            ({"order": 42}, "order", "invalid_field"),
            ({"severity": "critical"}, "severity", "unknown_field"),
            ({"colour": "blue"}, "colour", "unknown_field"),
            ({"team": "Tier 9"}, "team", "unknown_team")]:
        refused = await client.post("/api/v1/requests", json={
            "name": "Carla", "email": "carla@example.com", "description": "Help",
            **good, **change})
        assert refused.status == 400, (change, await refused.text())
        body = await refused.json()
        assert (body["field"], body["error"]) == (field, code), change
    assert await queue_of(client, alice) == []
    answer = await submit(client, **good, email="Carla@Example.COM",
                          name="  Carla\x1b  Kunde ", steps="Turned it off\r\n\x07and on.")
    (item,) = await queue_of(client, alice)
    request = item["request"]
    assert request["request_id"] == answer["request_id"]
    assert (request["name"], request["email"]) == ("Carla Kunde", "Carla@example.com")
    assert request["fields"] == {"order": "A-1", "product": "Printer",
                                 "steps": "Turned it off\nand on."}
    # The severity field is off: the default severity, and its target (an hour, always).
    assert request["severity"] == "high" and request["remaining_seconds"] == 3600


async def test_a_filled_honeypot_makes_nothing(client: TestClient, make_tech: MakeTech) -> None:
    alice = await make_tech("Alice")
    await team_of(client, "Tier 1", alice)
    decoy = await submit(client, 202, website="http://spam.example")
    assert decoy["status"] == "unanswered" and decoy["online"] is False
    assert len(decoy["request_id"]) >= 16
    assert await queue_of(client, alice) == []
    listed = await json_of(await client.get("/api/v1/requests", headers=alice.auth), 200)
    assert listed["requests"] == []
    sessions = await json_of(await client.get("/api/v1/sessions", headers=(
        await make_tech("Root", admin=True)).auth), 200)
    assert sessions["sessions"] == []
