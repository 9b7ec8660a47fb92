"""One frozen settings object, read from a TOML file and ``BROKER_*`` environment variables.

Every field can be set in the file (under its own name) and in the environment as
``BROKER_<NAME>`` (upper case); the environment wins. `docs/configuration.md` lists them.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from .errors import InvalidInput
from .settings_checks import check, origins


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything an operator can tune. Tests build one directly instead of patching."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
    # The broker refuses to start when others may read data_dir (it makes it 0700 and its
    # files 0600); true: the operator wants that, and the broker leaves the modes alone.
    data_dir_shared_ok: bool = False
    # Base of join links, e.g. https://support.example.com; defaults to http://host:port.
    public_url: str = ""
    # Unset: SQLite in data_dir. Otherwise an SQLAlchemy URL (PostgreSQL in multi-node setups).
    database_url: str = ""
    # Unset: events stay in this process (one node). redis://host:6379/0: several nodes
    # share events through Redis (with database_url on PostgreSQL); see docs/deploy.md.
    redis_url: str = ""
    # This node's name among several: unique per node, the same across its restarts
    # (default <hostname>:<port>).
    node_name: str = ""
    # Each node writes a heartbeat this often; one silent for node_timeout_seconds is dead,
    # and the end users who were connected to it start their reconnect windows.
    node_heartbeat_seconds: float = 5.0
    node_timeout_seconds: float = 20.0
    product_name: str = "Support"
    default_language: str = "en"
    admin_email: str = "admin@localhost"

    key_lifetime_seconds: int = 3600
    key_lifetime_max_seconds: int = 24 * 3600

    # Guessing typed codes: per client address, the first `redeem_free_failures` failures
    # are free; each further one doubles the lockout from `redeem_base_delay_seconds` up
    # to `redeem_max_delay_seconds`. Globally, more than `redeem_global_failures_per_minute`
    # failures in a minute lock typed-code redemption for everyone, growing the same way.
    redeem_free_failures: int = 10
    redeem_base_delay_seconds: float = 1.0
    redeem_max_delay_seconds: float = 3600.0
    redeem_global_failures_per_minute: int = 60
    trust_forwarded_for: bool = False

    chat_max_bytes: int = 4096
    # Token bucket per participant: `chat_burst` messages at once, then
    # `chat_rate_per_second`.
    chat_burst: int = 20
    chat_rate_per_second: float = 5.0
    ws_send_queue: int = 512
    ws_heartbeat_seconds: float = 30.0

    # Key delivery. "auto": Twilio when twilio_account_sid is set, SMTP when smtp_host is
    # set, else off; "console" writes messages to the log (development); "off" disables.
    sms_backend: str = "auto"
    email_backend: str = "auto"
    sms_default_country: str = "US"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_key_sid: str = ""
    twilio_api_key_secret: str = ""
    # A sender number (+15005550006) or a Messaging Service SID (MG...).
    twilio_from: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: str = "starttls"
    smtp_timeout_seconds: float = 30.0
    # A CA bundle to verify the SMTP server's certificate with (default: the system's).
    smtp_ca_file: str = ""
    mail_from: str = ""
    delivery_max_attempts: int = 5
    delivery_retry_base_seconds: float = 10.0
    delivery_poll_seconds: float = 1.0
    # At most this many deliveries per session per 10 minutes, per technician per hour.
    delivery_session_limit: int = 5
    delivery_technician_limit: int = 30
    # How long the code that confirms an end user's address for a transcript copy works.
    transcript_code_seconds: float = 900.0

    reconnect_window_seconds: int = 600
    # A transfer not accepted within this time goes back to its sender.
    handoff_timeout_seconds: float = 120.0
    # How many technicians may be logged in at once (0: no limit).
    seats: int = 0
    # How often expired keys and lapsed reconnect windows are swept (their sessions end).
    sweep_interval_seconds: float = 5.0
    session_cookie_secure: bool = False
    login_failures_per_minute: int = 10
    # Failed logins at one account, from all addresses together, before its delays start
    # (1 s, doubling up to login_account_max_delay_seconds; quiet that long, it starts
    # over). A browser that logged in to the account before is counted apart.
    login_account_free_failures: int = 5
    login_account_max_delay_seconds: float = 900.0
    # Wrong second-factor codes (authenticator or recovery) per technician, from anywhere,
    # before the delays start (1 s, doubling up to factor_max_delay_seconds).
    factor_free_failures: int = 5
    factor_max_delay_seconds: float = 900.0

    # -- File transfer (broker/transfer, docs/transfer.md) ----------------------------------
    # Largest file in bytes (default 2 GiB); 0 = no limit.
    transfer_max_bytes: int = 2 * 1024**3
    # Comma list of allowed extensions ("pdf,zip,jpg"); each file's content must match its
    # extension. Empty: every type.
    transfer_allowed_types: str = ""
    # All files of one session together, in bytes (0 = no limit).
    transfer_session_quota_bytes: int = 10 * 1024**3
    # Uploads stop while less than this is free on the disk of the transfer directory.
    transfer_min_free_bytes: int = 1024**3
    # Rate caps in bytes per second, for each transfer and for all together (0 = none).
    transfer_rate_bytes_per_second: int = 0
    transfer_total_rate_bytes_per_second: int = 0
    # An unfinished upload is dropped this long after its last data arrived.
    transfer_upload_expiry_seconds: int = 24 * 3600
    # Files of an ended session are removed this long after it ended.
    transfer_retention_seconds: int = 7 * 24 * 3600
    # Uploads a participant may start (each one a file event in the chat): a burst, then
    # a steady rate, as for chat lines.
    transfer_upload_burst: int = 20
    transfer_upload_rate_per_second: float = 1.0
    # Base64 of 32 bytes wrapping each file's key; empty: a key kept in data_dir.
    transfer_master_key: str = ""
    # Where the encrypted files are kept; empty: <data_dir>/files.
    transfer_dir: str = ""

    # -- Screen sharing (broker/rtc, docs/protocol.md) ---------------------------------------
    # Comma list of STUN/TURN URLs given to every participant ("stun:turn.example.com:3478,
    # turn:turn.example.com:3478?transport=udp"). Empty: none, not even a public STUN server.
    ice_servers: str = ""
    # coturn's static-auth-secret (use-auth-secret): turn:/turns: URLs get time-limited
    # credentials made with it. Required when ice_servers has a TURN URL.
    turn_secret: str = ""
    # How long TURN credentials stay valid; each new share and each rtc.ready get fresh ones.
    turn_credential_seconds: int = 24 * 3600
    # "all", or "relay" to send media only through TURN (hides the peers' addresses).
    ice_transport_policy: str = "all"
    # Signaling frames per participant: a burst, then a steady rate.
    rtc_signal_burst: int = 200
    rtc_signal_rate_per_second: float = 50.0
    # Signaling frames held for a peer who is not ready yet, per share and peer.
    rtc_queue_limit: int = 500

    # -- The native agent (agent/, docs/agent.md) --------------------------------------------
    # How long an agent link from the end user's chat page can be redeemed by the agent.
    agent_link_seconds: int = 600
    # The command the chat page shows for starting the agent; the agent link is appended.
    agent_command: str = 'pipx run --spec "supportbroker[agent]" supportbroker-agent'

    # -- Customers' requests (broker/intake, docs/portal.md) ---------------------------------
    # Business hours for response targets counted in business time: the days, the hours
    # ("09:00-17:00", local time) and their IANA time zone.
    business_timezone: str = "Europe/Berlin"
    business_days: str = "mon,tue,wed,thu,fri"
    business_hours: str = "09:00-17:00"
    # POST /api/v1/requests per client address: a burst, then so many an hour; and for
    # everyone together so many a minute (counted on each node).
    intake_address_burst: int = 5
    intake_address_per_hour: float = 20.0
    intake_global_per_minute: int = 60
    # Requests waiting in one team's queue at most; further ones are refused (429).
    intake_max_waiting: int = 200
    # The longest answer to a short-text field and to a long one (the description).
    intake_max_field_chars: int = 200
    intake_max_text_chars: int = 4000
    # Customers hear of their new places in a queue at most this long after a change.
    intake_queue_update_seconds: float = 0.25
    # The expected wait is measured from the team's pick-ups within this window.
    intake_wait_window_seconds: float = 1800.0
    # GET /api/v1/availability answers from a cache this old at most.
    availability_cache_seconds: float = 5.0
    # -- Webhooks (broker/webhooks, docs/webhooks.md) -----------------------------------------
    # Targets are https:// URLs; http:// only to the hosts in this comma list.
    webhook_http_hosts: str = ""
    # Targets whose addresses are loopback, private, link-local or otherwise not public are
    # refused (checked when each request is sent); true allows them (tests, closed networks).
    webhook_allow_private_targets: bool = False
    # One request's time limit; a receiver slower than this counts as failed.
    webhook_timeout_seconds: float = 15.0
    # Requests in flight at once per endpoint and node (each for another session).
    webhook_concurrency: int = 10
    # How often each node looks for new events and due retries.
    webhook_poll_seconds: float = 1.0
    # An endpoint without a successful delivery for this long is disabled, and admins told.
    webhook_disable_after_seconds: float = 24 * 3600.0
    # After a secret rotation the old secret still signs (a second signature) this long.
    webhook_rotation_grace_seconds: float = 24 * 3600.0
    # Finished deliveries stay in each endpoint's delivery log this long.
    webhook_log_retention_seconds: float = 7 * 24 * 3600.0

    # -- The audit log (broker/audit, docs/audit.md) ----------------------------------------
    # Records older than this are deleted (an anchor record keeps the rest checkable);
    # 0 keeps them forever.
    audit_retention_seconds: float = 365 * 24 * 3600.0

    # -- Supervisors (broker/supervision, docs/supervision.md) -------------------------------
    # true: the end user's chat says "A supervisor is watching this session" while one does.
    supervision_tell_end_user: bool = False

    # -- Single sign-on with OpenID Connect (broker/sso, docs/configuration.md) -----------
    # The provider's issuer URL (its discovery document is below it); empty: no SSO.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    # The ID token claim that names the technician: their email address.
    oidc_email_claim: str = "email"
    # The claim with the person's groups (a list of names).
    oidc_groups_claim: str = "groups"
    # Members of this group are admins, others are not, from their next sign-in on
    # (empty: sign-ins leave admin rights alone).
    oidc_admin_group: str = ""
    # true: at each sign-in the technician is put into the teams named like their groups,
    # and out of the others.
    oidc_team_groups: bool = False
    # true: a first sign-in with an email no technician has creates one; false: refused.
    oidc_create_technicians: bool = False
    # false (with oidc_issuer set): the login form takes no passwords, except one-time
    # passwords (the emergency path: supportbroker technician reset-password).
    password_login: bool = True

    # -- The chat button on other websites (web/static/widget.js, docs/portal.md) -----------
    # Comma list of the origins whose pages may show the chat button and embed the chat
    # ("https://www.example.com,https://shop.example.com"): CORS on the availability and
    # request APIs, frame-ancestors of the embedded pages. Empty: no other site may.
    widget_origins: str = ""

    def __post_init__(self) -> None:
        check(self)  # raises InvalidInput naming the setting (broker/settings_checks.py)

    @property
    def webhook_http_host_set(self) -> frozenset[str]:
        """The hosts webhooks may reach over plain http, lower case."""
        return frozenset(host.strip().lower().rstrip(".")
                         for host in self.webhook_http_hosts.split(",") if host.strip())

    @property
    def ice_server_urls(self) -> tuple[str, ...]:
        return tuple(url.strip() for url in self.ice_servers.split(",") if url.strip())

    @property
    def widget_origin_list(self) -> tuple[str, ...]:
        """`widget_origins` as origins the way browsers send them (scheme://host[:port],
        lower case, no default port); raises InvalidInput for anything else."""
        return origins(self.widget_origins)

    @property
    def transfer_path(self) -> Path:
        return Path(self.transfer_dir) if self.transfer_dir else self.data_dir / "files"

    @property
    def sms_mode(self) -> str:
        """"twilio", "console" or "off", with "auto" resolved."""
        if self.sms_backend == "auto":
            # Only what can actually send counts as set up; anything less stays "off",
            # so the dashboard and the API say what is missing instead of failing later.
            login = self.twilio_auth_token or (self.twilio_api_key_sid
                                               and self.twilio_api_key_secret)
            ready = self.twilio_account_sid and login and self.twilio_from
            return "twilio" if ready else "off"
        return self.sms_backend

    @property
    def email_mode(self) -> str:
        """"smtp", "console" or "off", with "auto" resolved."""
        if self.email_backend == "auto":
            return "smtp" if self.smtp_host and self.mail_from else "off"
        return self.email_backend

    @property
    def sso(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def several_nodes(self) -> bool:
        """Events go between nodes (redis_url is set): presence and sequence numbers are
        kept in the database for all of them."""
        return bool(self.redis_url)

    @property
    def node_id(self) -> str:
        return self.node_name or f"{socket.gethostname()}:{self.port}"[:64]

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'broker.db').resolve()}"
        for prefix, driver in (("postgresql://", "postgresql+asyncpg://"),
                               ("postgres://", "postgresql+asyncpg://"),
                               ("sqlite://", "sqlite+aiosqlite://")):
            if url.startswith(prefix):
                return driver + url[len(prefix):]
        return url

    @classmethod
    def load(cls, config_file: Path | None = None,
             environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the TOML file, then ``BROKER_*`` variables, then `overrides`."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        if config_file is not None:
            try:
                data = tomllib.loads(config_file.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise InvalidInput(f"cannot read config file {config_file}: {exc}") from exc
            unknown = set(data) - set(hints)
            if unknown:
                names = ", ".join(sorted(unknown))
                raise InvalidInput(f"unknown settings in {config_file}: {names}")
            values.update({k: _convert(k, hints[k], v) for k, v in data.items()})
        for field in dataclasses.fields(cls):
            raw = environ.get(f"BROKER_{field.name.upper()}")
            if raw is not None:
                values[field.name] = _convert(field.name, hints[field.name], raw)
        values.update(overrides)
        return cls(**values)


def _convert(name: str, kind: Any, value: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is Path:
            return Path(str(value))
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(value)  # TOML true or 8080.9 is no port number
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"setting {name}: {value!r} is not a valid {kind.__name__}") from exc
