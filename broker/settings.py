"""One frozen settings object, read from a TOML file and ``BROKER_*`` environment variables.

Every field can be set in the file (under its own name) and in the environment as
``BROKER_<NAME>`` (upper case); the environment wins. `docs/configuration.md` lists them.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from .errors import InvalidInput


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything an operator can tune. Tests build one directly instead of patching."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./data")
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

    reconnect_window_seconds: int = 600
    # A transfer not accepted within this time goes back to its sender.
    handoff_timeout_seconds: float = 120.0
    # How many technicians may be logged in at once (0: no limit).
    seats: int = 0
    # How often expired keys and lapsed reconnect windows are swept (their sessions end).
    sweep_interval_seconds: float = 5.0
    session_cookie_secure: bool = False
    login_failures_per_minute: int = 10

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

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidInput(f"port {self.port} is not a TCP port")
        if self.key_lifetime_seconds <= 0:
            raise InvalidInput("key_lifetime_seconds must be positive")
        if self.key_lifetime_seconds > self.key_lifetime_max_seconds:
            raise InvalidInput("key_lifetime_seconds exceeds key_lifetime_max_seconds")
        for name in ("chat_max_bytes", "ws_send_queue", "chat_burst", "chat_rate_per_second",
                     "ws_heartbeat_seconds", "redeem_base_delay_seconds",
                     "redeem_max_delay_seconds", "redeem_global_failures_per_minute",
                     "sweep_interval_seconds", "delivery_poll_seconds",
                     "delivery_retry_base_seconds", "smtp_timeout_seconds",
                     "handoff_timeout_seconds", "node_heartbeat_seconds"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{name} must be positive")
        for name in ("redeem_free_failures", "login_failures_per_minute", "seats",
                     "delivery_session_limit", "delivery_technician_limit"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} cannot be negative")
        if self.node_timeout_seconds < 2 * self.node_heartbeat_seconds:
            raise InvalidInput("node_timeout_seconds must be at least twice "
                               "node_heartbeat_seconds")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://",
                                                             "unix://")):
            raise InvalidInput("redis_url must start with redis://, rediss:// or unix://")
        if len(self.node_name) > 64:
            raise InvalidInput("node_name has at most 64 characters")
        if self.default_language not in ("en", "de"):
            raise InvalidInput("default_language must be 'en' or 'de'")
        for name in ("sms_backend", "email_backend"):
            if getattr(self, name) not in ("auto", "console", "off", "twilio", "smtp"):
                raise InvalidInput(f"{name} must be auto, console, off, twilio or smtp")
        if self.smtp_tls not in ("none", "starttls", "tls"):
            raise InvalidInput("smtp_tls must be none, starttls or tls")
        if self.delivery_max_attempts < 1:
            raise InvalidInput("delivery_max_attempts must be at least 1")
        self._check_transfer()
        self._check_rtc()

    def _check_transfer(self) -> None:
        for name in ("transfer_max_bytes", "transfer_session_quota_bytes",
                     "transfer_min_free_bytes", "transfer_rate_bytes_per_second",
                     "transfer_total_rate_bytes_per_second", "transfer_retention_seconds"):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} must not be negative")
        if self.transfer_upload_expiry_seconds <= 0:
            raise InvalidInput("transfer_upload_expiry_seconds must be positive")
        if self.transfer_master_key:
            try:
                key = base64.b64decode(self.transfer_master_key, validate=True)
            except ValueError as exc:
                raise InvalidInput("transfer_master_key is not base64") from exc
            if len(key) != 32:
                raise InvalidInput("transfer_master_key must be base64 of 32 bytes")
        for item in self.transfer_allowed_types.split(","):
            extension = item.strip().lstrip(".")
            if item.strip() and not (extension.isalnum() and len(extension) <= 16):
                raise InvalidInput(
                    f"transfer_allowed_types: {item.strip()!r} is not a file extension")

    def _check_rtc(self) -> None:
        for url in self.ice_server_urls:
            scheme = url.split(":", 1)[0]
            if scheme not in ("stun", "stuns", "turn", "turns") or ":" not in url:
                raise InvalidInput(f"ice_servers: {url!r} is not a stun:, stuns:, turn: or "
                                   "turns: URL")
            if scheme in ("turn", "turns") and not self.turn_secret:
                raise InvalidInput("ice_servers has a TURN URL: set turn_secret (coturn's "
                                   "static-auth-secret)")
        if self.ice_transport_policy not in ("all", "relay"):
            raise InvalidInput("ice_transport_policy must be all or relay")
        for name in ("turn_credential_seconds", "rtc_signal_burst",
                     "rtc_signal_rate_per_second", "rtc_queue_limit", "agent_link_seconds"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"{name} must be positive")

    @property
    def ice_server_urls(self) -> tuple[str, ...]:
        return tuple(url.strip() for url in self.ice_servers.split(",") if url.strip())

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
