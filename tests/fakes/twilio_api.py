"""A local HTTP server that answers like Twilio's Messages API, and sends status callbacks.

It is a real implementation of the part of Twilio the broker uses: account-scoped
Basic auth, form-encoded message creation, Twilio's JSON error bodies, and signed
status callbacks (X-Twilio-Signature computed with twilio's own RequestValidator).
Responses can be scripted per recipient or queued for the next requests.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "f" * 32
INVALID_NUMBER = "+15005550001"  # Twilio's own test number for "invalid To"

_ERRORS = {
    21211: (400, "The 'To' number is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
}


@dataclasses.dataclass
class SentSms:
    sid: str
    to: str
    sender: str
    body: str
    status_callback: str | None


class FakeTwilio:
    def __init__(self) -> None:
        self.messages: list[SentSms] = []
        self.requests = 0
        self.script: deque[int] = deque()  # Twilio error codes for the next requests
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(self, *codes: int) -> None:
        self.script.extend(codes)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def _error(self, code: int) -> web.Response:
        status, message = _ERRORS[code]
        return web.json_response({"code": code, "message": message, "status": status,
                                  "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                                 status=status)

    async def _create(self, request: web.Request) -> web.Response:
        self.requests += 1
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected or \
                request.match_info["account"] != ACCOUNT_SID:
            return self._error(20003)
        form = await request.post()
        if self.script:
            return self._error(self.script.popleft())
        to = str(form.get("To", ""))
        if to == INVALID_NUMBER or not to.startswith("+"):
            return self._error(21211)
        sms = SentSms("SM" + secrets.token_hex(16), to,
                      str(form.get("From") or form.get("MessagingServiceSid")),
                      str(form["Body"]), str(form["StatusCallback"])
                      if "StatusCallback" in form else None)
        self.messages.append(sms)
        return web.json_response({
            "sid": sms.sid, "account_sid": ACCOUNT_SID, "to": sms.to, "from": sms.sender,
            "body": sms.body, "status": "queued", "num_segments": "1", "direction":
            "outbound-api", "api_version": "2010-04-01", "price": None, "error_code": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sms.sid}.json",
        }, status=201)

    async def callback(self, sms: SentSms, status: str, *, error_code: str | None = None,
                       token: str = AUTH_TOKEN, url: str | None = None) -> int:
        """POST a status callback for `sms` as Twilio does; returns the HTTP status."""
        target = url or sms.status_callback
        assert target is not None
        params: dict[str, Any] = {"MessageSid": sms.sid, "SmsSid": sms.sid,
                                  "AccountSid": ACCOUNT_SID, "MessageStatus": status,
                                  "SmsStatus": status, "To": sms.to, "From": sms.sender,
                                  "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        signature = RequestValidator(token).compute_signature(target, params)
        async with aiohttp.ClientSession() as http:
            async with http.post(target, data=params,
                                 headers={"X-Twilio-Signature": signature}) as response:
                return response.status
