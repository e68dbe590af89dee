"""Google Application Default Credentials: RS256 signing, the three token flows, caching, the
shared refresh, failures and the ADC search order. Token endpoints are FakeUpstream servers on
127.0.0.1; keys are generated here with the `cryptography` package (a test-only dependency)."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from fake_upstream import FakeUpstream, Reply
from upstreams.google_auth import (
    CLOUD_PLATFORM_SCOPE,
    AuthorizedUserCredentials,
    GoogleAuthError,
    MetadataServerCredentials,
    ServiceAccountCredentials,
    load_credentials,
    parse_rsa_private_key,
    sign_rs256,
)
from upstreams.http import ClientSettings, HTTPClient

START = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand, so expiry is tested without sleeping."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@functools.lru_cache(maxsize=None)
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def pem(key, fmt: str = "pkcs8") -> str:
    private_format = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
    }[fmt]
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption()).decode()


def write_json(path, value: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return str(path)


def service_account_info(token_uri: str | None, **extra) -> dict:
    info = {
        "type": "service_account",
        "project_id": "sa-project",
        "private_key_id": "kid-123",
        "private_key": pem(rsa_key()),
        "client_email": "sa@sa-project.iam.gserviceaccount.com",
        "client_id": "1234",
    }
    if token_uri is not None:
        info["token_uri"] = token_uri
    info.update(extra)
    return info


def user_info(token_uri: str | None = None, **extra) -> dict:
    info = {
        "type": "authorized_user",
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": "client-secret-xyz",
        "refresh_token": "refresh-token-1",
        "quota_project_id": "quota-project",
    }
    if token_uri is not None:
        info["token_uri"] = token_uri
    info.update(extra)
    return info


def token_reply(value: str = "ya29.first", expires_in: object = 3599, **extra) -> Reply:
    return Reply.json({"access_token": value, "expires_in": expires_in, "token_type": "Bearer", **extra})


def with_client(scenario):
    """Run `scenario(client)` on a fresh event loop with a real HTTPClient."""

    async def main():
        client = HTTPClient(ClientSettings(connect_timeout=2.0, read_timeout=5.0))
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in parsed.values())
    return {name: values[0] for name, values in parsed.items()}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_account_credentials(tmp_path, upstream: FakeUpstream, clock=None, **kwargs) -> ServiceAccountCredentials:
    path = write_json(tmp_path / "key.json", service_account_info(f"{upstream.url}/token"))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": path}
    return load_credentials(env, home=str(tmp_path / "home"), clock=clock or FakeClock(), **kwargs)


# ---------------------------------------------------------------------------------------------
# RS256 signing with the standard library
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("fmt", ["pkcs8", "pkcs1"])
def test_sign_rs256_equals_the_cryptography_signature(bits, fmt):
    """PKCS#1 v1.5 is deterministic, so our signature must equal cryptography's byte for byte."""
    key = rsa_key(bits)
    for message in (b"", b"header.claims", bytes(range(256)) * 40):
        expected = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        assert sign_rs256(pem(key, fmt), message) == expected


def test_pem_with_literal_backslash_n_sequences_is_accepted():
    """A key that kept its JSON-escaped \\n sequences still parses."""
    key = rsa_key()
    escaped = pem(key).replace("\n", "\\n")
    assert sign_rs256(escaped, b"m") == key.sign(b"m", padding.PKCS1v15(), hashes.SHA256())


def test_private_key_repr_shows_only_the_size():
    """The parsed key's repr never prints its integers."""
    key = parse_rsa_private_key(pem(rsa_key()))
    assert repr(key) == "<RSAPrivateKey 2048-bit>"
    assert str(key.d) not in repr(key)


def test_encrypted_private_key_is_refused_without_quoting_it():
    """An encrypted PKCS#8 key gets a plain sentence that does not contain the PEM body."""
    encrypted = rsa_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(ValueError, match="encrypted") as caught:
        sign_rs256(encrypted, b"m")
    assert encrypted.splitlines()[1] not in str(caught.value)


def test_ec_private_key_is_refused_as_not_rsa():
    """A PKCS#8 EC key is named as such."""
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match="EC key"):
        sign_rs256(ec_pem, b"m")


def test_public_key_and_garbage_are_refused():
    """A public key PEM, text without PEM, and bad base64 each give a sentence."""
    public_pem = rsa_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="PUBLIC KEY, not a private key"):
        sign_rs256(public_pem, b"m")
    with pytest.raises(ValueError, match="No PEM private key"):
        sign_rs256("not a key", b"m")
    with pytest.raises(ValueError, match="base64"):
        sign_rs256("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", b"m")


def test_truncated_der_is_refused_without_quoting_the_key():
    """A key cut short fails as invalid DER, and the message holds no key material."""
    lines = pem(rsa_key()).splitlines()
    truncated = "\n".join(lines[:10] + [lines[-1]])
    with pytest.raises(ValueError, match="DER") as caught:
        sign_rs256(truncated, b"m")
    assert not any(line in str(caught.value) for line in lines[1:10])


def test_key_with_wrong_crt_values_is_refused():
    """A key whose CRT exponent is wrong is caught by verifying the signature before use."""
    key = parse_rsa_private_key(pem(rsa_key()))
    broken = type(key)(key.n, key.e, key.d, key.p, key.q, key.dp + 2, key.dq, key.qinv)
    with pytest.raises(ValueError, match="inconsistent"):
        broken.sign_rs256(b"m")


# ---------------------------------------------------------------------------------------------
# Service account flow
# ---------------------------------------------------------------------------------------------


def test_service_account_posts_a_jwt_that_verifies_with_the_public_key(tmp_path):
    """The assertion is an RS256 JWT with kid, iss, scope, aud = token_uri and a one-hour lifetime."""
    with FakeUpstream([token_reply("ya29.sa")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)
        assert with_client(credentials.token) == "ya29.sa"
    request = upstream.requests[0]
    assert (request.method, request.path) == ("POST", "/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = form(request.body)
    assert fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert set(fields) == {"grant_type", "assertion"}

    header_b64, claims_b64, signature_b64 = fields["assertion"].split(".")
    assert "=" not in fields["assertion"]
    rsa_key().public_key().verify(
        b64url_decode(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert json.loads(b64url_decode(header_b64)) == {"alg": "RS256", "typ": "JWT", "kid": "kid-123"}
    claims = json.loads(b64url_decode(claims_b64))
    assert claims == {
        "iss": "sa@sa-project.iam.gserviceaccount.com",
        "scope": CLOUD_PLATFORM_SCOPE,
        "aud": f"{upstream.url}/token",
        "iat": int(START),
        "exp": int(START) + 3600,
    }


def test_tampered_assertion_does_not_verify():
    """The verification above is meaningful: a changed claim breaks the signature."""
    credentials = ServiceAccountCredentials(
        "test",
        client_email="a@b",
        private_key=parse_rsa_private_key(pem(rsa_key())),
        private_key_id=None,
        clock=FakeClock(),
    )
    header_b64, claims_b64, signature_b64 = credentials.assertion(int(START)).split(".")
    assert json.loads(b64url_decode(header_b64)) == {"alg": "RS256", "typ": "JWT"}  # no kid without an id
    forged = json.loads(b64url_decode(claims_b64)) | {"exp": int(START) + 7200}
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        rsa_key().public_key().verify(
            b64url_decode(signature_b64), f"{header_b64}.{forged_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )


def test_service_account_source_and_project_come_from_the_file(tmp_path):
    """The banner names the file and the account; the project is the file's project_id."""
    path = write_json(tmp_path / "key.json", service_account_info(None))
    credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
    assert isinstance(credentials, ServiceAccountCredentials)
    assert credentials.source == f"service account key {path} (sa@sa-project.iam.gserviceaccount.com)"
    assert credentials.project_id == "sa-project"
    assert credentials.quota_project is None
    assert credentials.token_uri == "https://oauth2.googleapis.com/token"


def test_project_environment_variables_override_the_file(tmp_path):
    """GOOGLE_CLOUD_PROJECT wins over GCLOUD_PROJECT, which wins over the file's project_id."""
    path = write_json(tmp_path / "key.json", service_account_info(None))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": path, "GCLOUD_PROJECT": "from-gcloud-project"}
    assert load_credentials(env, home=str(tmp_path)).project_id == "from-gcloud-project"
    env["GOOGLE_CLOUD_PROJECT"] = "from-google-cloud-project"
    assert load_credentials(env, home=str(tmp_path)).project_id == "from-google-cloud-project"


def test_unusable_private_key_fails_at_load_time_naming_the_file(tmp_path):
    """A broken private_key is a load-time GoogleAuthError naming the file, not the key."""
    broken_key = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\n-----END PRIVATE KEY-----\n"
    path = write_json(tmp_path / "key.json", service_account_info(None, private_key=broken_key))
    with pytest.raises(GoogleAuthError, match="private key in the Google credentials file") as caught:
        load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
    assert path in str(caught.value)
    assert "MIIBVQ" not in str(caught.value)


def test_missing_service_account_field_is_named(tmp_path):
    """A service account file without client_email says so."""
    info = service_account_info(None)
    del info["client_email"]
    path = write_json(tmp_path / "key.json", info)
    with pytest.raises(GoogleAuthError, match='has no "client_email"'):
        load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))


def test_unusable_token_uri_is_a_load_time_error(tmp_path):
    """A token_uri that is not http(s) is refused when the file is read."""
    path = write_json(tmp_path / "key.json", service_account_info("ftp://example/token"))
    with pytest.raises(GoogleAuthError, match="token_uri"):
        load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Authorized user flow
# ---------------------------------------------------------------------------------------------


def test_authorized_user_sends_the_refresh_grant_and_exposes_the_quota_project(tmp_path):
    """The refresh grant carries client_id, client_secret and refresh_token; quota_project is exposed."""
    with FakeUpstream([token_reply("ya29.user")]) as upstream:
        path = write_json(tmp_path / "adc.json", user_info(f"{upstream.url}/token"))
        credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
        assert isinstance(credentials, AuthorizedUserCredentials)
        assert credentials.quota_project == "quota-project"
        assert credentials.source == f"authorized_user credentials {path}"
        assert with_client(credentials.token) == "ya29.user"
    request = upstream.requests[0]
    assert (request.method, request.path) == ("POST", "/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request.body) == {
        "grant_type": "refresh_token",
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": "client-secret-xyz",
        "refresh_token": "refresh-token-1",
    }


def test_authorized_user_defaults_to_googles_token_endpoint(tmp_path):
    """Without token_uri (the usual gcloud file) the token goes to oauth2.googleapis.com."""
    path = write_json(tmp_path / "adc.json", user_info())
    credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
    assert credentials.token_uri == "https://oauth2.googleapis.com/token"


def test_refresh_token_is_kept_unless_a_new_one_is_returned(tmp_path):
    """A token answer without refresh_token keeps the old one; a rotated one replaces it."""
    clock = FakeClock()
    script = [token_reply("ya29.1"), token_reply("ya29.2", refresh_token="refresh-token-2"), token_reply("ya29.3")]
    with FakeUpstream(script) as upstream:
        path = write_json(tmp_path / "adc.json", user_info(f"{upstream.url}/token"))
        credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path), clock=clock)

        async def scenario(client):
            tokens = [await credentials.token(client)]
            for _ in range(2):
                clock.now += 3600
                tokens.append(await credentials.token(client))
            return tokens

        assert with_client(scenario) == ["ya29.1", "ya29.2", "ya29.3"]
    sent = [form(request.body)["refresh_token"] for request in upstream.requests]
    assert sent == ["refresh-token-1", "refresh-token-1", "refresh-token-2"]


def test_invalid_grant_for_user_credentials_suggests_logging_in_again(tmp_path):
    """A revoked refresh token names invalid_grant and the gcloud command, never the secrets."""
    refusal = Reply.json({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, status=400)
    with FakeUpstream([refusal]) as upstream:
        path = write_json(tmp_path / "adc.json", user_info(f"{upstream.url}/token"))
        credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
        with pytest.raises(GoogleAuthError) as caught:
            with_client(credentials.token)
    message = str(caught.value)
    assert "invalid_grant (Token has been expired or revoked.)" in message
    assert "gcloud auth application-default login" in message
    assert path in message
    assert "client-secret-xyz" not in message and "refresh-token-1" not in message


# ---------------------------------------------------------------------------------------------
# Metadata server flow
# ---------------------------------------------------------------------------------------------


def metadata_reply(value: str = "ya29.gce") -> Reply:
    reply = token_reply(value)
    reply.headers.append(("metadata-flavor", "Google"))
    return reply


def test_metadata_server_is_asked_with_the_metadata_flavor_header(tmp_path):
    """With no files, GCE_METADATA_HOST points the token GET at our server, with Metadata-Flavor."""
    with FakeUpstream([metadata_reply()]) as upstream:
        env = {"GCE_METADATA_HOST": f"127.0.0.1:{upstream.port}"}
        credentials = load_credentials(env, home=str(tmp_path))
        assert isinstance(credentials, MetadataServerCredentials)
        assert credentials.source == f"GCE metadata server 127.0.0.1:{upstream.port}"
        assert with_client(credentials.token) == "ya29.gce"
    request = upstream.requests[0]
    assert request.method == "GET"
    target = urlsplit(request.path)
    assert target.path == "/computeMetadata/v1/instance/service-accounts/default/token"
    assert parse_qs(target.query) == {"scopes": [CLOUD_PLATFORM_SCOPE]}
    assert request.headers["metadata-flavor"] == "Google"


def test_metadata_answer_without_metadata_flavor_is_refused(tmp_path):
    """Something answering on the metadata address without Metadata-Flavor: Google is not trusted."""
    with FakeUpstream([token_reply()]) as upstream:
        credentials = load_credentials({"GCE_METADATA_HOST": f"127.0.0.1:{upstream.port}"}, home=str(tmp_path))
        with pytest.raises(GoogleAuthError, match="not a GCE metadata server"):
            with_client(credentials.token)


def test_unreachable_metadata_server_says_what_was_searched(tmp_path):
    """When nothing is configured and no metadata server answers, the error lists what ADC tried."""
    credentials = load_credentials({"GCE_METADATA_HOST": f"127.0.0.1:{closed_port()}"}, home=str(tmp_path))
    with pytest.raises(GoogleAuthError) as caught:
        with_client(credentials.token)
    message = str(caught.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS is not set" in message
    assert str(tmp_path / ".config" / "gcloud" / "application_default_credentials.json") in message
    assert "refused the connection" in message


def test_metadata_project_id_is_asked_once_when_not_configured(tmp_path):
    """resolve_project_id() GETs project/project-id once and then remembers it."""
    project_reply = Reply(headers=[("content-type", "text/plain"), ("metadata-flavor", "Google")], body=b"gce-project")
    with FakeUpstream([project_reply]) as upstream:
        credentials = load_credentials({"GCE_METADATA_HOST": f"127.0.0.1:{upstream.port}"}, home=str(tmp_path))
        assert credentials.project_id is None

        async def scenario(client):
            return [await credentials.resolve_project_id(client), await credentials.resolve_project_id(client)]

        assert with_client(scenario) == ["gce-project", "gce-project"]
    assert [request.path for request in upstream.requests] == ["/computeMetadata/v1/project/project-id"]
    assert upstream.requests[0].headers["metadata-flavor"] == "Google"


def test_metadata_project_id_from_environment_needs_no_request(tmp_path):
    """GOOGLE_CLOUD_PROJECT sets the project for metadata credentials without asking."""
    env = {"GCE_METADATA_HOST": f"127.0.0.1:{closed_port()}", "GOOGLE_CLOUD_PROJECT": "env-project"}
    credentials = load_credentials(env, home=str(tmp_path))
    assert with_client(credentials.resolve_project_id) == "env-project"


# ---------------------------------------------------------------------------------------------
# Caching, refresh and concurrency
# ---------------------------------------------------------------------------------------------


def test_second_token_call_uses_the_cache(tmp_path):
    """A valid cached token is returned without a second request."""
    with FakeUpstream([token_reply("ya29.once")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            return [await credentials.token(client), await credentials.token(client)]

        assert with_client(scenario) == ["ya29.once", "ya29.once"]
    assert len(upstream.requests) == 1


def test_token_is_refreshed_once_fewer_than_225_seconds_remain(tmp_path):
    """At 226 s before expiry the cache holds; at 224 s a new token is fetched."""
    clock = FakeClock()
    with FakeUpstream([token_reply("ya29.1", 3600), token_reply("ya29.2", 3600)]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream, clock)

        async def scenario(client):
            first = await credentials.token(client)
            clock.now = START + 3600 - 226
            still = await credentials.token(client)
            clock.now = START + 3600 - 224
            return [first, still, await credentials.token(client)]

        assert with_client(scenario) == ["ya29.1", "ya29.1", "ya29.2"]
    assert len(upstream.requests) == 2
    # The new assertion is issued at the clock's new time.
    claims = json.loads(b64url_decode(form(upstream.requests[1].body)["assertion"].split(".")[1]))
    assert claims["iat"] == int(START + 3600 - 224)


def test_missing_expires_in_counts_as_one_hour(tmp_path):
    """A token answer without expires_in is cached for an hour (less the refresh margin)."""
    clock = FakeClock()
    with FakeUpstream([token_reply("ya29.1", None), token_reply("ya29.2")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream, clock)

        async def scenario(client):
            first = await credentials.token(client)
            clock.now = START + 3000
            still = await credentials.token(client)
            clock.now = START + 3400
            return [first, still, await credentials.token(client)]

        assert with_client(scenario) == ["ya29.1", "ya29.1", "ya29.2"]


def test_invalidate_forces_a_refresh(tmp_path):
    """After invalidate() (an upstream 401) the next call fetches a new token."""
    with FakeUpstream([token_reply("ya29.1"), token_reply("ya29.2")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            first = await credentials.token(client)
            credentials.invalidate()
            return [first, await credentials.token(client)]

        assert with_client(scenario) == ["ya29.1", "ya29.2"]


def test_twenty_concurrent_callers_share_one_refresh(tmp_path):
    """Twenty simultaneous token() calls make exactly one request and all get its token."""
    slow = token_reply("ya29.shared")
    slow.delay_before_head = 0.2
    with FakeUpstream([slow]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            return await asyncio.gather(*[credentials.token(client) for _ in range(20)])

        assert with_client(scenario) == ["ya29.shared"] * 20
    assert len(upstream.requests) == 1


def test_concurrent_callers_share_one_failure_and_the_next_call_retries(tmp_path):
    """A failed shared refresh fails every waiter once; a later call makes a new request."""
    refusal = Reply.json({"error": "invalid_grant", "error_description": "Bad"}, status=400)
    refusal.delay_before_head = 0.2
    with FakeUpstream([refusal, token_reply("ya29.after")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            results = await asyncio.gather(*[credentials.token(client) for _ in range(20)], return_exceptions=True)
            return results, await credentials.token(client)

        results, after = with_client(scenario)
    assert all(isinstance(result, GoogleAuthError) for result in results)
    assert after == "ya29.after"
    assert len(upstream.requests) == 2


def test_refused_refresh_names_the_oauth_error_and_the_next_call_retries(tmp_path):
    """A 400 invalid_grant raises GoogleAuthError with error and description, never the assertion."""
    refusal = Reply.json({"error": "invalid_grant", "error_description": "Bad"}, status=400)
    with FakeUpstream([refusal, token_reply("ya29.retry")]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            with pytest.raises(GoogleAuthError) as caught:
                await credentials.token(client)
            return str(caught.value), await credentials.token(client)

        message, retried = with_client(scenario)
    assert "HTTP 400: invalid_grant (Bad)" in message
    assert credentials.source in message
    assert "system clock" in message
    assert form(upstream.requests[0].body)["assertion"] not in message
    assert retried == "ya29.retry"


def test_google_shaped_and_plain_text_errors_are_described(tmp_path):
    """Google's {"error": {"status", "message"}} and a plain text body both reach the message."""
    google_error = Reply.json({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "No access."}}, status=403)
    text_error = Reply(status=503, headers=[("content-type", "text/plain")], body=b"  upstream\n  overloaded ")
    with FakeUpstream([google_error, text_error]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            messages = []
            for _ in range(2):
                with pytest.raises(GoogleAuthError) as caught:
                    await credentials.token(client)
                messages.append(str(caught.value))
            return messages

        google_message, text_message = with_client(scenario)
    assert "HTTP 403: PERMISSION_DENIED: No access." in google_message
    assert "HTTP 503: upstream overloaded." in text_message


def test_answer_without_access_token_is_refused(tmp_path):
    """A 200 answer lacking access_token is an error, not an empty bearer token."""
    with FakeUpstream([Reply.json({"token_type": "Bearer", "expires_in": 3599})]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)
        with pytest.raises(GoogleAuthError, match="without an access_token"):
            with_client(credentials.token)


def test_unreachable_token_endpoint_is_a_google_auth_error(tmp_path):
    """A refused connection becomes a GoogleAuthError naming the credential source."""
    path = write_json(tmp_path / "key.json", service_account_info(f"http://127.0.0.1:{closed_port()}/token"))
    credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))
    with pytest.raises(GoogleAuthError, match="Could not get an access token for service account key") as caught:
        with_client(credentials.token)
    assert "refused the connection" in str(caught.value)


def test_slow_token_endpoint_times_out_with_request_timeout(tmp_path):
    """A token endpoint slower than request_timeout fails quickly, not after the read timeout."""
    slow = token_reply()
    slow.delay_before_head = 3.0
    with FakeUpstream([slow]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream, request_timeout=0.2)
        with pytest.raises(GoogleAuthError, match="did not answer within 0.2 seconds"):
            with_client(credentials.token)


def test_cancelled_caller_does_not_cancel_the_shared_refresh(tmp_path):
    """Cancelling one waiter leaves the refresh running for the others, and it is cached."""
    slow = token_reply("ya29.survivor")
    slow.delay_before_head = 0.3
    with FakeUpstream([slow]) as upstream:
        credentials = service_account_credentials(tmp_path, upstream)

        async def scenario(client):
            first = asyncio.ensure_future(credentials.token(client))
            second = asyncio.ensure_future(credentials.token(client))
            await asyncio.sleep(0.05)
            first.cancel()
            token = await second
            return first.cancelled(), token, await credentials.token(client)

        assert with_client(scenario) == (True, "ya29.survivor", "ya29.survivor")
    assert len(upstream.requests) == 1


# ---------------------------------------------------------------------------------------------
# ADC search order and file errors
# ---------------------------------------------------------------------------------------------


def test_google_application_credentials_wins_over_the_gcloud_file(tmp_path):
    """An explicit GOOGLE_APPLICATION_CREDENTIALS file is used even when gcloud's file exists."""
    home = tmp_path / "home"
    write_json(home / ".config" / "gcloud" / "application_default_credentials.json", user_info())
    explicit = write_json(tmp_path / "key.json", service_account_info(None))
    credentials = load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": explicit}, home=str(home))
    assert isinstance(credentials, ServiceAccountCredentials)


def test_gcloud_file_under_home_is_used(tmp_path):
    """Without the variable, <home>/.config/gcloud/application_default_credentials.json is read."""
    home = tmp_path / "home"
    path = write_json(home / ".config" / "gcloud" / "application_default_credentials.json", user_info())
    credentials = load_credentials({}, home=str(home))
    assert isinstance(credentials, AuthorizedUserCredentials)
    assert credentials.source == f"authorized_user credentials {path}"


def test_cloudsdk_config_directory_is_respected(tmp_path):
    """CLOUDSDK_CONFIG replaces ~/.config/gcloud as the place of the gcloud file."""
    home = tmp_path / "home"
    write_json(home / ".config" / "gcloud" / "application_default_credentials.json", user_info())
    config = tmp_path / "custom-gcloud"
    write_json(config / "application_default_credentials.json", service_account_info(None))
    credentials = load_credentials({"CLOUDSDK_CONFIG": str(config)}, home=str(home))
    assert isinstance(credentials, ServiceAccountCredentials)


def test_metadata_server_is_the_fallback_when_no_file_exists(tmp_path):
    """No variable and no gcloud file: credentials come from metadata.google.internal."""
    credentials = load_credentials({}, home=str(tmp_path))
    assert isinstance(credentials, MetadataServerCredentials)
    assert credentials.host == "metadata.google.internal"
    assert credentials.token_url.startswith(
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token?"
    )


def test_no_gce_check_without_files_is_a_clear_error(tmp_path):
    """NO_GCE_CHECK with nothing else configured says what to do instead."""
    with pytest.raises(GoogleAuthError, match="gcloud auth application-default login"):
        load_credentials({"NO_GCE_CHECK": "True"}, home=str(tmp_path))


@pytest.mark.parametrize("kind", ["external_account", "impersonated_service_account"])
def test_unsupported_credential_type_is_named(tmp_path, kind):
    """Types other than service_account and authorized_user are refused, naming the type."""
    path = write_json(tmp_path / "creds.json", {"type": kind})
    with pytest.raises(GoogleAuthError, match=f'has type "{kind}", which is not supported'):
        load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": path}, home=str(tmp_path))


def test_missing_named_file_is_an_error_not_a_fallthrough(tmp_path):
    """A GOOGLE_APPLICATION_CREDENTIALS path that does not exist fails, even with a gcloud file."""
    home = tmp_path / "home"
    write_json(home / ".config" / "gcloud" / "application_default_credentials.json", user_info())
    missing = str(tmp_path / "nope.json")
    with pytest.raises(GoogleAuthError, match="does not exist") as caught:
        load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": missing}, home=str(home))
    assert missing in str(caught.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(caught.value)


def test_malformed_files_are_clear_errors(tmp_path):
    """Invalid JSON, a JSON array and a missing type each get their own sentence."""
    cases = {"bad.json": ("{not json", "not valid JSON"), "list.json": ("[]", "not a JSON object"), "untyped.json": ("{}", 'no "type"')}
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(GoogleAuthError, match=expected):
            load_credentials({"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / name)}, home=str(tmp_path))


def test_broken_gcloud_file_is_an_error_not_a_fallthrough_to_metadata(tmp_path):
    """A gcloud ADC file that exists but is broken fails loudly instead of trying the metadata server."""
    path = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text("{")
    with pytest.raises(GoogleAuthError, match="gcloud auth application-default login"):
        load_credentials({}, home=str(tmp_path))


def test_user_credentials_take_the_project_from_gcloud_configuration(tmp_path):
    """Without a project variable, user credentials use the active gcloud configuration's project."""
    config = tmp_path / "gcloud"
    write_json(config / "application_default_credentials.json", user_info())
    (config / "configurations").mkdir()
    (config / "active_config").write_text("work\n")
    (config / "configurations" / "config_work").write_text("[core]\naccount = me@example.com\nproject = work-project\n")
    env = {"CLOUDSDK_CONFIG": str(config)}
    assert load_credentials(env).project_id == "work-project"
    assert load_credentials({**env, "CLOUDSDK_CORE_PROJECT": "core-project"}).project_id == "core-project"
    assert load_credentials({**env, "GOOGLE_CLOUD_PROJECT": "env-project"}).project_id == "env-project"
    (config / "active_config").unlink()
    assert load_credentials(env).project_id is None  # config_default does not exist
