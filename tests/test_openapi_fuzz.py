"""schemathesis against a live broker: for every operation of /api/v1/openapi.json, calls
made from its description (valid and invalid), as an admin's API token (the end user's
participant token where only the end user may call), with path parameters that name real
things (tests/openapi_world.py) and now and then generated ones. No answer may be a 5xx,
or anything the description does not allow: an undescribed status, content type, header
or error code, or a body that does not match its schema; and the broker logs no error.

The budget is small for `make test` (deterministic, so CI runs the same calls each time);
BROKER_TEST_OPENAPI_EXAMPLES raises it for a release check (docs/api.md, OpenAPI).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any, Final

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web.openapi import document

from .live_broker import ErrorLog
from .openapi_world import BrokerThread, World

# The broker's thread uses the `random` module (email's MIME boundaries, for one) while
# Hypothesis draws a case in this one, which Hypothesis takes for a strategy using it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies")
EXAMPLES: Final = int(os.environ.get("BROKER_TEST_OPENAPI_EXAMPLES", "3"))
CHECKS: Final = [not_a_server_error, status_code_conformance, content_type_conformance,
                 response_headers_conformance, response_schema_conformance]
# Only the end user may call these; everything else is called as the admin.
END_USER_ONLY: Final = {("POST", "/api/v1/sessions/{session_id}/agent-link"),
                         ("POST", "/api/v1/sessions/{session_id}/survey"),
                         ("POST", "/api/v1/sessions/{session_id}/transcript-copy"),
                         ("POST", "/api/v1/sessions/{session_id}/transcript-copy/confirm")}
# Generous limits: a 429 is described, but would hide the rest of what a call does.
SETTINGS: Final = {"sms_backend": "console", "email_backend": "console",
                   "twilio_auth_token": "openapi-test", "transfer_min_free_bytes": 0,
                   "redeem_free_failures": 1_000_000, "chat_burst": 1_000_000,
                   "transfer_upload_burst": 1_000_000, "delivery_session_limit": 1_000_000,
                   "delivery_technician_limit": 1_000_000, "intake_address_burst": 1_000_000,
                   "intake_address_per_hour": 1e9, "intake_global_per_minute": 1_000_000,
                   "webhook_allow_private_targets": True,
                   "widget_origins": "https://portal.example.com"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, ErrorLog]]:
    broker = BrokerThread(tmp_path_factory.mktemp("openapi"), **SETTINGS)
    with ErrorLog().installed() as errors, broker.running() as base:
        yield World(base, broker), errors


CONFIG: Final = schemathesis.Config.from_dict({
    "seed": 21,
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none",
                   "mode": "all"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
})
# tus PATCH bodies are bytes, as application/octet-stream's are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
# The description itself (tests/test_openapi.py checks the broker serves exactly this).
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)


# A generated id here could be the calling token's own (ids start at 1): revoking it would
# end the run, so these calls always get a fresh object.
NEVER_GENERATED: Final = {("DELETE", "/api/v1/tokens/{token_id}")}


def _keeps_generated(method: str, path: str, value: Any) -> bool:
    """One call in five keeps the generated path parameters (mostly: nothing by that id)."""
    return (method, path) not in NEVER_GENERATED and zlib.crc32(repr(value).encode()) % 5 == 0


@schema.parametrize()
def test_the_broker_answers_as_described(case: Any, live: tuple[World, ErrorLog]) -> None:
    world, errors = live
    method, path = case.method.upper(), case.path
    described = case.operation.method.upper() == method  # else a method it must refuse
    if case.path_parameters and described and not _keeps_generated(method, path,
                                                                        case.path_parameters):
        case.path_parameters = {name: world.parameter(method, path, name)
                                for name in case.path_parameters}
    token = world.participant if (method, path) in END_USER_ONLY else world.root.token
    try:
        case.call_and_validate(base_url=world.base,
                               headers={"Authorization": f"Bearer {token}"},
                               checks=CHECKS, timeout=30)
    finally:
        logged = errors.take()  # this call's, also when it failed otherwise
    assert not logged, f"{method} {case.formatted_path}: the broker logged errors"
