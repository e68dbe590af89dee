"""Google Application Default Credentials (ADC) for Vertex AI, with the standard library only.

Policies:
- Where credentials come from follows google-auth's `default()` (PROTOCOLS 5.2):
  1. GOOGLE_APPLICATION_CREDENTIALS names a JSON file (an empty value counts as unset);
  2. `$CLOUDSDK_CONFIG/application_default_credentials.json`, else the same file under
     `~/.config/gcloud` (`%APPDATA%\\gcloud` on Windows), written by
     `gcloud auth application-default login`;
  3. the GCE metadata server (`metadata.google.internal`, or GCE_METADATA_HOST as host[:port]),
     unless NO_GCE_CHECK is true.
  A file that is named or present but unreadable, malformed or of an unsupported type is an error:
  we never fall through to the next step past a broken file, as google-auth does not either.
- Loading reads files only. The network is first touched by the first `token()` call, so a
  metadata server that does not exist shows up there, with a message saying what was searched.
- Supported file types: `service_account` and `authorized_user`. Others (`external_account`,
  `impersonated_service_account`, ...) are refused at load time, naming the type.
- Project: GOOGLE_CLOUD_PROJECT, then GCLOUD_PROJECT, then the file's `project_id`, then (for files
  without one) gcloud's own configuration (CLOUDSDK_CORE_PROJECT or `[core] project` of the active
  configuration), read from disk rather than by running gcloud. On the metadata server,
  `resolve_project_id()` asks `project/project-id` once.
- Service accounts sign their own JWT assertion with RS256 = RSASSA-PKCS1-v1_5 and SHA-256
  (RFC 8017 section 8.2) implemented here: PEM -> DER -> RSA integers -> CRT exponentiation. The
  signature is checked with the public exponent before it is used, which also rejects a key whose
  CRT values do not match (a wrong CRT signature would reveal a factor of n).
- Access tokens are cached until fewer than 225 seconds of validity remain (google-auth's refresh
  threshold). Concurrent callers share one refresh: a single Task, awaited through `shield`, so a
  cancelled caller does not cancel it for the others. A failed refresh is not cached: every caller
  waiting on it gets the same GoogleAuthError and the next call tries again.
- Every token call goes through the shared HTTPClient and is bounded by `request_timeout`
  (the client's read timeout is sized for slow model streams, not for a token endpoint).
- Errors are GoogleAuthError sentences naming the credential source and what failed, with the
  endpoint's OAuth `error`/`error_description`. They never contain a private key, client secret,
  refresh token, JWT assertion or access token. Repr of keys and tokens hides them too.

Known shortcuts:
- No workload identity federation (`external_account`), impersonation, domain-wide delegation
  (`sub`), self-signed JWTs without the token exchange, or non-default universe domains.
- No legacy App Engine step, and the metadata server is not probed for presence at start-up.
- Signing is not constant-time: we only ever sign our own JWTs, on our own machine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import configparser
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from translate.errors import ProxyError
from upstreams.http import HTTPClient
from upstreams.transport import parse_url

logger = logging.getLogger("switchboard.google_auth")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 3600  # Google accepts assertions valid for at most one hour
REFRESH_MARGIN_SECONDS = 225  # google-auth's REFRESH_THRESHOLD: 3 min 45 s
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600  # used only when a token answer has no usable expires_in
TOKEN_REQUEST_TIMEOUT_SECONDS = 30.0

DEFAULT_METADATA_HOST = "metadata.google.internal"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
METADATA_PROJECT_PATH = "/computeMetadata/v1/project/project-id"
ADC_FILE_NAME = "application_default_credentials.json"
SUPPORTED_FILE_TYPES = ("service_account", "authorized_user")

FORM_HEADERS = [("content-type", "application/x-www-form-urlencoded"), ("accept", "application/json")]
ERROR_DETAIL_MAX_CHARS = 300


class GoogleAuthError(Exception):
    """Google credentials could not be loaded or an access token could not be obtained.

    The message is a plain sentence naming the credential source and what failed; it never holds a
    secret. The caller reports it (a 502-class failure when it happens on a request).
    """


# ---------------------------------------------------------------------------------------------
# RS256 with the standard library: PEM -> DER -> RSA integers -> RSASSA-PKCS1-v1_5
# ---------------------------------------------------------------------------------------------

# RFC 8017 section 9.2 note 1: the DER of DigestInfo{sha256, <32-byte digest>} up to the digest.
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
OTHER_KEY_OIDS = {
    bytes.fromhex("2a8648ce3d0201"): "an EC key",  # 1.2.840.10045.2.1
    bytes.fromhex("2b6570"): "an Ed25519 key",  # 1.3.101.112
    bytes.fromhex("2a864886f70d01010a"): "an RSA-PSS key",  # 1.2.840.113549.1.1.10
}
DER_INTEGER, DER_OCTET_STRING, DER_OID, DER_SEQUENCE = 0x02, 0x04, 0x06, 0x30

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True, repr=False)
class RSAPrivateKey:
    """The integers of an RSA private key (RFC 8017 appendix A.1.2). Its repr shows only the size."""

    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int  # d mod (p - 1)
    dq: int  # d mod (q - 1)
    qinv: int  # q^-1 mod p

    @property
    def size_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def __repr__(self) -> str:
        return f"<RSAPrivateKey {self.n.bit_length()}-bit>"

    def sign_rs256(self, message: bytes) -> bytes:
        """The RSASSA-PKCS1-v1_5 SHA-256 signature of `message`, `size_bytes` long.

        Raises ValueError when the key is too small for the encoding or its CRT values are wrong.
        """
        k = self.size_bytes
        encoded_digest = SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
        # EMSA-PKCS1-v1_5 (RFC 8017 9.2): EM = 0x00 || 0x01 || PS (0xff, at least 8) || 0x00 || T.
        if k < len(encoded_digest) + 11:
            raise ValueError("The RSA key is too short for an RS256 signature.")
        padding = b"\xff" * (k - len(encoded_digest) - 3)
        m = int.from_bytes(b"\x00\x01" + padding + b"\x00" + encoded_digest, "big")
        # RSASP1 with the CRT (RFC 8017 5.2.1 step 2b): two half-size exponentiations.
        m1 = pow(m, self.dp, self.p)
        m2 = pow(m, self.dq, self.q)
        h = (self.qinv * (m1 - m2)) % self.p
        s = m2 + h * self.q
        if pow(s, self.e, self.n) != m:
            raise ValueError("The RSA private key is inconsistent: its CRT values do not match its modulus.")
        return s.to_bytes(k, "big")


def _der_element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, contents, offset just after) of the DER element at `offset`. Raises ValueError."""
    if offset + 2 > len(data):
        raise ValueError("The private key is not valid DER: it ends in the middle of an element.")
    tag, first_length_byte = data[offset], data[offset + 1]
    offset += 2
    if first_length_byte < 0x80:
        length = first_length_byte
    else:
        count = first_length_byte & 0x7F
        # 0 would be BER's indefinite length, which DER forbids; 4 bytes allow 4 GiB, plenty.
        if count == 0 or count > 4 or offset + count > len(data):
            raise ValueError("The private key is not valid DER: an element has a bad length.")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise ValueError("The private key is not valid DER: an element is longer than the key.")
    return tag, data[offset:end], end


def _der_children(contents: bytes) -> list[tuple[int, bytes]]:
    """The (tag, contents) elements that make up a constructed element's contents."""
    children = []
    offset = 0
    while offset < len(contents):
        tag, value, offset = _der_element(contents, offset)
        children.append((tag, value))
    return children


def _der_only_element(data: bytes, tag: int, what: str) -> bytes:
    """The contents of `data`, which must be exactly one element with `tag`."""
    found_tag, contents, end = _der_element(data, 0)
    if found_tag != tag or end != len(data):
        raise ValueError(f"The private key is not valid DER: {what} is malformed.")
    return contents


def _rsa_key_from_pkcs1(der: bytes) -> RSAPrivateKey:
    """Parse RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv, ... }."""
    fields = _der_children(_der_only_element(der, DER_SEQUENCE, "the RSAPrivateKey sequence"))
    if len(fields) < 9 or any(tag != DER_INTEGER for tag, _ in fields[:9]):
        raise ValueError("The private key is not an RSA private key (RFC 8017 RSAPrivateKey).")
    version, *numbers = [int.from_bytes(value, "big", signed=True) for _, value in fields[:9]]
    if version != 0:
        raise ValueError("Multi-prime RSA private keys are not supported.")
    if any(number <= 0 for number in numbers):
        raise ValueError("The RSA private key holds a zero or negative number.")
    key = RSAPrivateKey(*numbers)
    if key.p * key.q != key.n:
        raise ValueError("The RSA private key is inconsistent: p * q is not its modulus.")
    return key


def _rsa_key_from_pkcs8(der: bytes) -> RSAPrivateKey:
    """Parse PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }."""
    fields = _der_children(_der_only_element(der, DER_SEQUENCE, "the PrivateKeyInfo sequence"))
    if len(fields) < 3 or fields[0][0] != DER_INTEGER or fields[1][0] != DER_SEQUENCE or fields[2][0] != DER_OCTET_STRING:
        raise ValueError("The private key is not a PKCS#8 PrivateKeyInfo.")
    algorithm = _der_children(fields[1][1])
    if not algorithm or algorithm[0][0] != DER_OID:
        raise ValueError("The private key's algorithm identifier is malformed.")
    oid = algorithm[0][1]
    if oid != RSA_ENCRYPTION_OID:
        kind = OTHER_KEY_OIDS.get(oid, "not an RSA key")
        raise ValueError(f"The private key is {kind}; RS256 needs an RSA key.")
    return _rsa_key_from_pkcs1(fields[2][1])


def parse_rsa_private_key(pem: str) -> RSAPrivateKey:
    """Parse an unencrypted RSA private key in PEM: PKCS#8 ("BEGIN PRIVATE KEY", what Google's
    service account keys use) or PKCS#1 ("BEGIN RSA PRIVATE KEY").

    Raises ValueError with a sentence that never quotes the key.
    """
    # A key pasted through one JSON or shell layer too many keeps literal "\n" sequences.
    block = _PEM_BLOCK.search(pem.replace("\\n", "\n"))
    if block is None:
        raise ValueError("No PEM private key was found (expected -----BEGIN PRIVATE KEY-----).")
    label, body = block.group(1), block.group(2)
    if label == "ENCRYPTED PRIVATE KEY" or "Proc-Type:" in body:
        raise ValueError("The private key is encrypted; use an unencrypted key.")
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        raise ValueError(f"The PEM block is a {label}, not a private key.")
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("The private key's PEM body is not valid base64.") from None
    return _rsa_key_from_pkcs8(der) if label == "PRIVATE KEY" else _rsa_key_from_pkcs1(der)


def sign_rs256(private_key_pem: str, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 of `message` under a PEM RSA private key (PKCS#8 or #1).

    Returns the signature, as long as the modulus. Raises ValueError (never quoting the key) when
    the PEM is not an unencrypted, consistent RSA private key.
    """
    return parse_rsa_private_key(private_key_pem).sign_rs256(message)


def _b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS compact serialization wants (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact_json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Token cache and the shared refresh
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AccessToken:
    value: str = field(repr=False)
    expires_at: float  # on the credentials' clock

    def usable_at(self, now: float) -> bool:
        return now < self.expires_at - REFRESH_MARGIN_SECONDS


@dataclass(frozen=True)
class _TokenReply:
    status: int
    metadata_flavor: str | None
    body: bytes


def _describe_error_body(body: bytes) -> str:
    """The interesting part of a token endpoint's error answer: OAuth `error (error_description)`,
    Google's `STATUS: message`, or the start of the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, str) and error:
            description = parsed.get("error_description")
            detail = f"{error} ({description})" if isinstance(description, str) and description else error
            return detail[:ERROR_DETAIL_MAX_CHARS]
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("status", "message") if error.get(key)]
            if parts:
                return ": ".join(parts)[:ERROR_DETAIL_MAX_CHARS]
    flat = " ".join(text.split())
    return flat[:ERROR_DETAIL_MAX_CHARS] or "no details"


def _expires_in_seconds(payload: dict) -> float:
    value = payload.get("expires_in")
    try:
        seconds = float(value)  # Google sends a number; some servers send a numeric string
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_LIFETIME_SECONDS
    return seconds if seconds > 0 else DEFAULT_TOKEN_LIFETIME_SECONDS


class GoogleCredentials:
    """A source of OAuth2 access tokens for Google APIs, cached and refreshed as needed.

    `source` describes the credentials for the start-up banner, `project_id` is the project when
    known, and `quota_project` (user credentials) must be sent as `x-goog-user-project`.
    Subclasses implement `_refresh()`. Use from one event loop at a time.
    """

    def __init__(
        self,
        source: str,
        *,
        project_id: str | None = None,
        quota_project: str | None = None,
        clock: Callable[[], float] = time.time,
        request_timeout: float = TOKEN_REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        # Identity, fixed at load time.
        self.source = source
        self.project_id = project_id
        self.quota_project = quota_project
        self._clock = clock
        self._request_timeout = request_timeout
        # Token state: the cached token, and the refresh every caller waits on while it runs.
        self._token: _AccessToken | None = None
        self._refresh_task: asyncio.Task[_AccessToken] | None = None

    async def token(self, client: HTTPClient) -> str:
        """A valid access token: the cached one, or a fresh one when fewer than 225 s remain.

        Concurrent callers share one refresh. Raises GoogleAuthError when the refresh fails (the
        failure is not cached: the next call tries again).
        """
        cached = self._token
        if cached is not None and cached.usable_at(self._clock()):
            return cached.value
        loop = asyncio.get_running_loop()
        task = self._refresh_task
        if task is None or task.get_loop() is not loop:  # a task left by a finished loop is dead
            task = loop.create_task(self._refresh_and_cache(client))
            # Retrieve the outcome even if every waiter was cancelled, so asyncio does not log it.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._refresh_task = task
        token = await asyncio.shield(task)
        return token.value

    def invalidate(self) -> None:
        """Forget the cached token, so the next `token()` refreshes (after an upstream 401)."""
        self._token = None

    def current_token(self) -> str | None:
        """The access token last minted (for masking it in what upstreams say), or None."""
        return self._token.value if self._token is not None else None

    async def resolve_project_id(self, client: HTTPClient) -> str | None:
        """The project id, asking the credential source when it can and it is not yet known."""
        return self.project_id

    async def _refresh_and_cache(self, client: HTTPClient) -> _AccessToken:
        try:
            asked_at = self._clock()  # before the request, so the expiry errs on the early side
            try:
                payload = await asyncio.wait_for(self._refresh(client), self._request_timeout)
            except asyncio.TimeoutError:
                raise GoogleAuthError(
                    f"The token endpoint for {self.source} did not answer within {self._request_timeout:g} seconds."
                ) from None
            expires_in = _expires_in_seconds(payload)
            self._token = _AccessToken(payload["access_token"], asked_at + expires_in)
            logger.debug("token refreshed source=%s expires_in=%g", self.source, expires_in)
            return self._token
        except GoogleAuthError as exc:
            logger.debug("token refresh failed source=%s error=%s", self.source, exc)
            raise
        finally:
            if self._refresh_task is asyncio.current_task():
                self._refresh_task = None

    async def _refresh(self, client: HTTPClient) -> dict:
        """Ask for a new token; return the endpoint's JSON answer, which has `access_token`."""
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------------

    async def _send(
        self, client: HTTPClient, method: str, url: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> _TokenReply:
        """One exchange with the token endpoint; transport failures become GoogleAuthError."""
        try:
            response = await client.request(method, url, headers, body)
            async with response:
                data = await response.read()
        except ProxyError as exc:
            raise GoogleAuthError(self._unreachable_message(exc.message)) from exc
        return _TokenReply(response.status, response.header("metadata-flavor"), data)

    def _unreachable_message(self, reason: str) -> str:
        return f"Could not get an access token for {self.source}: {reason}"

    def _refusal_hint(self, detail: str) -> str:
        """A next step for the user when the endpoint refused, or ""."""
        return ""

    def _token_payload(self, reply: _TokenReply) -> dict:
        """The JSON of a successful token answer. Raises GoogleAuthError for anything else."""
        if reply.status != 200:
            detail = _describe_error_body(reply.body)
            raise GoogleAuthError(
                f"The token endpoint refused {self.source} with HTTP {reply.status}: {detail}.{self._refusal_hint(detail)}"
            )
        try:
            payload = json.loads(reply.body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
            raise GoogleAuthError(f"The token endpoint answered for {self.source} without an access_token.")
        return payload


# ---------------------------------------------------------------------------------------------
# The three kinds of credentials
# ---------------------------------------------------------------------------------------------


class ServiceAccountCredentials(GoogleCredentials):
    """A service account key: a self-signed JWT exchanged for an access token (RFC 7523)."""

    def __init__(
        self,
        source: str,
        *,
        client_email: str,
        private_key: RSAPrivateKey,
        private_key_id: str | None,
        token_uri: str = DEFAULT_TOKEN_URI,
        **options,
    ) -> None:
        super().__init__(source, **options)
        self.client_email = client_email
        self.token_uri = token_uri
        self._private_key = private_key
        self._private_key_id = private_key_id

    def assertion(self, now: int) -> str:
        """The signed JWT asking for a cloud-platform token, issued at `now` (Unix seconds)."""
        header = {"alg": "RS256", "typ": "JWT"}
        if self._private_key_id:
            header["kid"] = self._private_key_id
        claims = {
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + JWT_LIFETIME_SECONDS,
        }
        signing_input = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}"
        signature = self._private_key.sign_rs256(signing_input.encode("ascii"))
        return f"{signing_input}.{_b64url(signature)}"

    async def _refresh(self, client: HTTPClient) -> dict:
        form = {"grant_type": JWT_BEARER_GRANT_TYPE, "assertion": self.assertion(int(self._clock()))}
        reply = await self._send(client, "POST", self.token_uri, FORM_HEADERS, urlencode(form).encode())
        return self._token_payload(reply)

    def _refusal_hint(self, detail: str) -> str:
        if detail.startswith("invalid_grant"):
            return " Check that the system clock is right and that the key still exists (it may have been deleted)."
        return ""


class AuthorizedUserCredentials(GoogleCredentials):
    """User credentials from `gcloud auth application-default login`: a refresh token grant."""

    def __init__(
        self,
        source: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_uri: str = DEFAULT_TOKEN_URI,
        **options,
    ) -> None:
        super().__init__(source, **options)
        self.token_uri = token_uri
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token

    async def _refresh(self, client: HTTPClient) -> dict:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        reply = await self._send(client, "POST", self.token_uri, FORM_HEADERS, urlencode(form).encode())
        payload = self._token_payload(reply)
        # The server may rotate the refresh token; otherwise the old one stays valid.
        rotated = payload.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        return payload

    def _refusal_hint(self, detail: str) -> str:
        if detail.startswith("invalid_grant"):
            return " The refresh token has expired or was revoked: run `gcloud auth application-default login` again."
        return ""


class MetadataServerCredentials(GoogleCredentials):
    """The default service account of a GCE VM, Cloud Run service or GKE pod, via the metadata server."""

    def __init__(self, host: str, *, searched: str, **options) -> None:
        super().__init__(f"GCE metadata server {host}", **options)
        self.host = host
        self._searched = searched  # what ADC looked for before falling back here, for errors

    @property
    def token_url(self) -> str:
        # Ask for the scope Vertex needs, as google-auth does for scoped compute credentials.
        return f"http://{self.host}{METADATA_TOKEN_PATH}?{urlencode({'scopes': CLOUD_PLATFORM_SCOPE})}"

    async def _refresh(self, client: HTTPClient) -> dict:
        reply = await self._send(client, "GET", self.token_url, [("metadata-flavor", "Google")])
        self._check_flavor(reply)
        return self._token_payload(reply)

    async def resolve_project_id(self, client: HTTPClient) -> str | None:
        """The configured project id, else the metadata server's `project/project-id` (asked once).

        Raises GoogleAuthError when the metadata server cannot be asked.
        """
        if self.project_id:
            return self.project_id
        url = f"http://{self.host}{METADATA_PROJECT_PATH}"
        try:
            reply = await asyncio.wait_for(
                self._send(client, "GET", url, [("metadata-flavor", "Google")]), self._request_timeout
            )
        except asyncio.TimeoutError:
            raise GoogleAuthError(
                f"The {self.source} did not tell the project id within {self._request_timeout:g} seconds."
            ) from None
        self._check_flavor(reply)
        project = reply.body.decode("utf-8", "replace").strip()
        if reply.status != 200 or not project:
            raise GoogleAuthError(
                f"The {self.source} did not tell the project id (HTTP {reply.status}): {_describe_error_body(reply.body)}."
            )
        self.project_id = project
        return project

    def _check_flavor(self, reply: _TokenReply) -> None:
        # The real server always answers with this header; anything else on that name is not it.
        if reply.metadata_flavor != "Google":
            raise GoogleAuthError(
                f"{self.host} answered without the Metadata-Flavor: Google header, so it is not a GCE metadata server."
            )

    def _unreachable_message(self, reason: str) -> str:
        return f"No Google credentials were found ({self._searched}) and the GCE metadata server failed: {reason}"


# ---------------------------------------------------------------------------------------------
# Application Default Credentials: where to look, and reading the files
# ---------------------------------------------------------------------------------------------


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def gcloud_config_dir(env: Mapping[str, str], home: str | None = None) -> str:
    """gcloud's configuration directory: CLOUDSDK_CONFIG, else %APPDATA%\\gcloud on Windows,
    else <home>/.config/gcloud."""
    if env.get("CLOUDSDK_CONFIG"):
        return env["CLOUDSDK_CONFIG"]
    if os.name == "nt" and env.get("APPDATA"):
        return os.path.join(env["APPDATA"], "gcloud")
    home = home or env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".config", "gcloud")


def gcloud_config_project(env: Mapping[str, str], config_dir: str) -> str | None:
    """The project gcloud would use: CLOUDSDK_CORE_PROJECT, else `[core] project` of the active
    configuration file. None when unset or unreadable (this is only a fallback)."""
    if env.get("CLOUDSDK_CORE_PROJECT"):
        return env["CLOUDSDK_CORE_PROJECT"]
    name = env.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    try:
        if not name:
            with open(os.path.join(config_dir, "active_config"), encoding="utf-8") as file:
                name = file.read().strip()
    except (OSError, UnicodeDecodeError):
        pass
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(config_dir, "configurations", f"config_{name or 'default'}"), encoding="utf-8")
        project = parser.get("core", "project", fallback="").strip()
    except (configparser.Error, UnicodeDecodeError):
        return None
    return project or None


def _required(info: dict, name: str, path: str, kind: str) -> str:
    value = info.get(name)
    if not isinstance(value, str) or not value:
        raise GoogleAuthError(f'The Google credentials file {path} ({kind}) has no "{name}".')
    return value


def _token_uri(info: dict, path: str) -> str:
    token_uri = info.get("token_uri") or DEFAULT_TOKEN_URI
    try:
        if not isinstance(token_uri, str):
            raise ValueError("not a string")
        parse_url(token_uri)
    except ValueError:
        raise GoogleAuthError(f'The Google credentials file {path} has an unusable "token_uri".') from None
    return token_uri


def credentials_from_file(
    path: str, found_by: str, env: Mapping[str, str], config_dir: str, **options
) -> GoogleCredentials:
    """Credentials from a service_account or authorized_user JSON file; `found_by` says why this
    file was read (for messages). Raises GoogleAuthError for a missing, unreadable, malformed or
    unsupported file."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise GoogleAuthError(f"The Google credentials file {path} ({found_by}) does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise GoogleAuthError(f"The Google credentials file {path} ({found_by}) could not be read: {reason}.") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg and the position only: the text may hold a private key.
        raise GoogleAuthError(
            f"The Google credentials file {path} ({found_by}) is not valid JSON: {exc.msg} at line {exc.lineno}."
        ) from None
    if not isinstance(info, dict):
        raise GoogleAuthError(f"The Google credentials file {path} ({found_by}) is not a JSON object.")
    kind = info.get("type")
    if not isinstance(kind, str) or not kind:
        raise GoogleAuthError(f'The Google credentials file {path} ({found_by}) has no "type".')
    if kind not in SUPPORTED_FILE_TYPES:
        raise GoogleAuthError(
            f'The Google credentials file {path} ({found_by}) has type "{kind}", which is not supported; '
            f"use a service_account key or authorized_user credentials (gcloud auth application-default login)."
        )

    file_project = info.get("project_id") if isinstance(info.get("project_id"), str) else None
    project_id = (
        env.get("GOOGLE_CLOUD_PROJECT")
        or env.get("GCLOUD_PROJECT")
        or file_project
        or gcloud_config_project(env, config_dir)
    )
    quota_project = info.get("quota_project_id") if isinstance(info.get("quota_project_id"), str) else None
    options = {"project_id": project_id, "quota_project": quota_project or None, **options}

    if kind == "service_account":
        client_email = _required(info, "client_email", path, kind)
        try:
            private_key = parse_rsa_private_key(_required(info, "private_key", path, kind))
        except ValueError as exc:
            raise GoogleAuthError(f"The private key in the Google credentials file {path} is unusable: {exc}") from None
        key_id = info.get("private_key_id")
        return ServiceAccountCredentials(
            f"service account key {path} ({client_email})",
            client_email=client_email,
            private_key=private_key,
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
            token_uri=_token_uri(info, path),
            **options,
        )
    return AuthorizedUserCredentials(
        f"authorized_user credentials {path}",
        client_id=_required(info, "client_id", path, kind),
        client_secret=_required(info, "client_secret", path, kind),
        refresh_token=_required(info, "refresh_token", path, kind),
        token_uri=_token_uri(info, path),
        **options,
    )


def load_credentials(
    env: Mapping[str, str],
    *,
    home: str | None = None,
    clock: Callable[[], float] = time.time,
    request_timeout: float = TOKEN_REQUEST_TIMEOUT_SECONDS,
) -> GoogleCredentials:
    """Application Default Credentials from `env` (never os.environ) and the files it points at.

    Order: GOOGLE_APPLICATION_CREDENTIALS, gcloud's application_default_credentials.json
    (CLOUDSDK_CONFIG or <home>/.config/gcloud), then the GCE metadata server (GCE_METADATA_HOST
    overrides the host; NO_GCE_CHECK turns it off). Reads files only, no network. Raises
    GoogleAuthError with a sentence when a file is missing, malformed or unsupported, or when
    nothing is found and the metadata server is turned off.
    """
    options = {"clock": clock, "request_timeout": request_timeout}
    config_dir = gcloud_config_dir(env, home)
    explicit = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if explicit:
        return credentials_from_file(explicit, "named by GOOGLE_APPLICATION_CREDENTIALS", env, config_dir, **options)
    adc_path = os.path.join(config_dir, ADC_FILE_NAME)
    if os.path.exists(adc_path):
        return credentials_from_file(
            adc_path, "written by gcloud auth application-default login", env, config_dir, **options
        )
    searched = f"GOOGLE_APPLICATION_CREDENTIALS is not set and there is no {adc_path}"
    if _is_true(env.get("NO_GCE_CHECK")):
        raise GoogleAuthError(
            f"No Google credentials were found: {searched}, and NO_GCE_CHECK rules out the GCE metadata server. "
            "Run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a service account key."
        )
    return MetadataServerCredentials(
        env.get("GCE_METADATA_HOST") or DEFAULT_METADATA_HOST,
        searched=searched,
        project_id=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or None,
        **options,
    )
