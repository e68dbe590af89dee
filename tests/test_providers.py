"""Providers through the full server, each against a fake upstream with its quirks (PROTOCOLS.md 5-7)."""

from __future__ import annotations

import json

import anthropic
import pytest

from fake_upstream import FakeUpstream, Received, Reply, RunningProxy, chunk, completion, frames
from loopback import request
from test_server import MESSAGE

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather",
    "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "exclusiveMinimum": 0}},
        "required": ["city"],
    },
}


def sdk(proxy: RunningProxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="x", max_retries=0, timeout=10)


# ---------------------------------------------------------------------------------------------
# Azure OpenAI
# ---------------------------------------------------------------------------------------------


def azure_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    env = {"AZURE_OPENAI_ENDPOINT": upstream.url, "AZURE_OPENAI_API_KEY": "azure-secret", "PREFERRED_PROVIDER": "azure", "BIG_MODEL": "my-gpt-deployment"}
    env.update(extra)
    return env


def test_azure_classic_url_uses_the_deployment_and_api_key_header():
    """The classic form puts the deployment in the path with api-version, and auth in api-key."""
    with FakeUpstream([Reply.json(completion("hi from azure"))]) as upstream, RunningProxy(azure_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-opus-4-1"))
    assert answer.status == 200 and answer.body["content"][0]["text"] == "hi from azure"
    sent = upstream.requests[0]
    assert sent.path == "/openai/deployments/my-gpt-deployment/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == "azure-secret" and "authorization" not in sent.headers


def test_azure_v1_url_puts_the_deployment_in_the_body():
    """AZURE_API_VERSION=v1 uses /openai/v1/chat/completions with model = deployment."""
    with FakeUpstream([Reply.json(completion("v1"))]) as upstream, RunningProxy(azure_env(upstream, AZURE_API_VERSION="v1")) as proxy:
        request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="azure/other-deployment"))
    sent = upstream.requests[0]
    assert sent.path == "/openai/v1/chat/completions" and sent.json()["model"] == "other-deployment"


def test_azure_stream_with_filter_frames_and_a_filtered_completion():
    """The prompt_filter_results frame (empty choices, id "") is skipped; a content_filter finish is a refusal."""
    filter_frame = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}]}
    stream = frames(filter_frame, chunk({"role": "assistant", "content": ""}), chunk({"content": "Some"}), chunk({}, "content_filter"),
                    chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}))
    with FakeUpstream([Reply.sse(stream)]) as upstream, RunningProxy(azure_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-opus-4-1", stream=True))
        events = answer.events()
    assert answer.status == 200
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"


def test_azure_filtered_prompt_is_a_400_with_azure_message():
    """Azure's 400 content_filter reaches the Claude client as a 400 invalid_request_error saying why."""
    error = {"error": {"code": "content_filter", "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
                       "param": "prompt", "innererror": {"code": "ResponsibleAIPolicyViolation"}}}
    with FakeUpstream([Reply.json(error, status=400)]) as upstream, RunningProxy(azure_env(upstream)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 400 and "content management policy" in answer.body["error"]["message"]


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------


def test_ollama_gets_max_tokens_no_user_and_only_inline_images():
    """Ollama reads only max_tokens; user and tool_choice are not sent; URL images become a text note."""
    body = dict(MESSAGE, model="ollama/qwen3:8b", metadata={"user_id": "u1"}, tools=[WEATHER_TOOL], tool_choice={"type": "auto"},
                messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://example.invalid/cat.png"}},
                                                        {"type": "text", "text": "What is it?"}]}])
    whole_call = chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "chatcmpl-1", "type": "function",
                                                             "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]})
    stream = frames(whole_call, chunk({}, "tool_calls"), chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
    with FakeUpstream([Reply.sse(stream)]) as upstream, RunningProxy({"OLLAMA_BASE_URL": upstream.url + "/v1"}) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(body, stream=True))
        events = answer.events()
    sent = upstream.requests[0].json()
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert sent["model"] == "qwen3:8b" and sent["max_tokens"] == 100 and "max_completion_tokens" not in sent
    assert "user" not in sent and "tool_choice" not in sent
    parts = sent["messages"][0]["content"]
    assert parts[0]["type"] == "text" and "http://example.invalid/cat.png" in parts[0]["text"]
    starts = [d for n, d in events if n == "content_block_start"]
    assert starts[0]["content_block"]["type"] == "tool_use" and starts[0]["content_block"]["name"] == "get_weather"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_preferred_ollama_needs_no_other_setting_and_keeps_requested_names():
    """PREFERRED_PROVIDER=ollama alone configures Ollama; with SMALL_MODEL set, haiku maps to it."""
    with FakeUpstream([Reply.json(completion("local"))]) as upstream, RunningProxy(
        {"PREFERRED_PROVIDER": "ollama", "OLLAMA_BASE_URL": upstream.url + "/v1", "SMALL_MODEL": "llama3.2:3b"}
    ) as proxy:
        answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-haiku-4-5"))
    assert answer.status == 200 and upstream.requests[0].json()["model"] == "llama3.2:3b"


# ---------------------------------------------------------------------------------------------
# Routing across providers
# ---------------------------------------------------------------------------------------------


def test_prefix_to_an_unconfigured_provider_names_its_variables():
    """azure/x and gemini/x without their settings are 400s naming what to set."""
    with FakeUpstream([]) as upstream, RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url}) as proxy:
        azure = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="azure/dep")).body
        gemini = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="gemini/gemini-2.5-pro")).body
    assert "AZURE_OPENAI_ENDPOINT" in azure["error"]["message"]
    assert "GEMINI_API_KEY" in gemini["error"]["message"] and "USE_VERTEX_AUTH" in gemini["error"]["message"]


def test_models_list_reflects_every_configured_provider():
    """GET /v1/models lists each configured provider's names with its prefix."""
    with FakeUpstream([]) as upstream, RunningProxy({
        "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url, "GEMINI_API_KEY": "g", "GEMINI_BASE_URL": upstream.url,
        "AZURE_OPENAI_ENDPOINT": upstream.url, "AZURE_OPENAI_API_KEY": "a",
    }) as proxy:
        answer = request(proxy, "GET", "/v1/models")
    ids = {m["id"] for m in answer.body["data"]}
    assert {"gpt-4.1", "gemini/gemini-2.5-pro", "gemini/gemini-2.5-flash"} <= ids


@pytest.mark.parametrize("value", ["google", "gemini"])
def test_preferred_google_maps_tiers_to_gemini_defaults(value):
    """PREFERRED_PROVIDER=google: opus -> gemini-2.5-pro, haiku -> gemini-2.5-flash."""
    replies = [Reply.json(completion("a")), Reply.json(completion("b"))]
    with FakeUpstream(replies) as upstream, RunningProxy({"PREFERRED_PROVIDER": value, "GEMINI_API_KEY": "g", "GEMINI_BASE_URL": upstream.url}) as proxy:
        request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-opus-4-1"))
        request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-haiku-4-5"))
    assert [r.json()["model"] for r in upstream.requests] == ["gemini-2.5-pro", "gemini-2.5-flash"]


# ---------------------------------------------------------------------------------------------
# Gemini (AI Studio and Vertex AI)
# ---------------------------------------------------------------------------------------------

GEMINI_REJECTED_SCHEMA_KEYS = ("$schema", "additionalProperties", "exclusiveMinimum", "exclusiveMaximum", "const", "propertyNames")
GEMINI_FIELDS = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop", "stream",
                 "stream_options", "tools", "tool_choice", "response_format", "reasoning_effort", "extra_body"}
SIGNATURE = "EjQKMgEMOdbHsignature+/=="


def google_error(message: str, status: int = 400) -> Reply:
    return Reply.json([{"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}}], status=status)


def gemini_upstream(replies: list[Reply]):
    """A fake Gemini endpoint that rejects what the real one rejects, then answers from `replies`."""

    def answer(received: Received) -> Reply:
        body = received.json()
        unknown = set(body) - GEMINI_FIELDS
        if unknown:
            return google_error(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
        schemas = json.dumps([t["function"].get("parameters", {}) for t in body.get("tools", [])])
        for key in GEMINI_REJECTED_SCHEMA_KEYS:
            if f'"{key}"' in schemas:
                return google_error(f'Invalid JSON payload received. Unknown name "{key}" at \'tools[0].function_declarations[0].parameters\'')
        for position, message in enumerate(body["messages"]):
            # Gemini checks the first function call of each step (it signs only that one).
            for call in (message.get("tool_calls") or [])[:1]:
                if not (call.get("extra_content") or {}).get("google", {}).get("thought_signature"):
                    return google_error(f"Function call is missing a thought_signature in functionCall parts. position {position}")
        return replies.pop(0)

    return answer


def gemini_tool_stream() -> list[bytes]:
    """Gemini 3 style: two whole calls in separate chunks, no index, a signature on the first, finish 'stop'."""
    first = {"id": "jm4owj31", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
             "extra_content": {"google": {"thought_signature": SIGNATURE}}}
    second = {"id": "kq9x2p", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}}
    return frames(
        chunk({"role": "assistant", "tool_calls": [first]}),
        chunk({"tool_calls": [second]}),
        chunk({}, "stop"),
        chunk(None, usage={"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 80}),
    )


def test_gemini_accepts_claude_code_tool_schemas_and_keeps_thought_signatures_across_turns():
    """Schemas are cleaned, fields allowlisted, and Gemini's thought signature comes back on the next turn."""
    replies = [Reply.sse(gemini_tool_stream()), Reply.json(completion("Oslo 4, Bergen 7"))]
    upstream_script = gemini_upstream(replies)
    with FakeUpstream(upstream_script) as upstream, RunningProxy({"GEMINI_API_KEY": "gem-key", "GEMINI_BASE_URL": upstream.url + "/v1beta/openai"}) as proxy:
        client = sdk(proxy)
        messages = [{"role": "user", "content": "Weather in Oslo and Bergen?"}]
        kwargs = dict(model="claude-sonnet-5", max_tokens=512, tools=[WEATHER_TOOL],
                      metadata={"user_id": "u"}, stop_sequences=["a", "b", "c", "d", "e"])
        with client.messages.stream(messages=messages, **kwargs) as stream:
            first = stream.get_final_message()
        calls = [b for b in first.content if b.type == "tool_use"]
        assert first.stop_reason == "tool_use" and [c.input for c in calls] == [{"city": "Oslo"}, {"city": "Bergen"}]
        messages += [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": "4" if i == 0 else "7"} for i, c in enumerate(calls)]},
        ]
        second = client.messages.create(messages=messages, **kwargs)
    assert second.content[0].text == "Oslo 4, Bergen 7"
    first_request, second_request = (r.json() for r in upstream.requests)
    assert upstream.requests[0].path == "/v1beta/openai/chat/completions"
    assert upstream.requests[0].headers["authorization"] == "Bearer gem-key"
    assert first_request["model"] == "gemini-2.5-pro" and len(first_request["stop"]) == 5
    sent_calls = second_request["messages"][1]["tool_calls"]
    assert [c["id"] for c in sent_calls] == ["jm4owj31", "kq9x2p"]
    assert sent_calls[0]["extra_content"]["google"]["thought_signature"] == SIGNATURE
    assert [(m["tool_call_id"], m.get("name")) for m in second_request["messages"][2:4]] == [("jm4owj31", "get_weather"), ("kq9x2p", "get_weather")]


def test_gemini_errors_wrapped_in_arrays_keep_their_message():
    """Google's array-wrapped error body reaches the client as a readable 400."""
    with FakeUpstream([google_error("API key not valid. Please pass a valid API key.")]) as upstream, RunningProxy(
        {"GEMINI_API_KEY": "bad", "GEMINI_BASE_URL": upstream.url}
    ) as proxy:
        answer = request(proxy, "POST", "/v1/messages", MESSAGE)
    assert answer.status == 400 and "API key not valid" in answer.body["error"]["message"]


def test_vertex_uses_a_service_account_token_and_the_publisher_prefix(tmp_path):
    """USE_VERTEX_AUTH signs a JWT with the key file, trades it at token_uri, and calls Vertex with the token."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    token_reply = Reply.json({"access_token": "ya29.vertex-token", "expires_in": 3599, "token_type": "Bearer"})
    with FakeUpstream([token_reply]) as token_server, FakeUpstream([Reply.json(completion("from vertex")), Reply.json(completion("again"))]) as vertex:
        key_file = tmp_path / "sa.json"
        key_file.write_text(json.dumps({
            "type": "service_account", "project_id": "my-proj", "private_key_id": "kid1", "private_key": pem,
            "client_email": "sa@my-proj.iam.gserviceaccount.com", "token_uri": token_server.url + "/token",
        }))
        env = {"USE_VERTEX_AUTH": "true", "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "VERTEX_BASE_URL": vertex.url + "/v1/openapi",
               "VERTEX_LOCATION": "europe-west4"}
        with RunningProxy(env) as proxy:
            assert request(proxy, "POST", "/v1/messages", MESSAGE).status == 200
            assert request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="gemini/gemini-2.5-flash")).status == 200
    assert len(token_server.requests) == 1, "the token is cached"
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in token_server.requests[0].body.decode()
    sent = vertex.requests[0]
    assert sent.path == "/v1/openapi/chat/completions"
    assert sent.headers["authorization"] == "Bearer ya29.vertex-token"
    assert [r.json()["model"] for r in vertex.requests] == ["google/gemini-2.5-pro", "google/gemini-2.5-flash"]


def test_vertex_base_url_is_built_from_project_and_location():
    """The regional host, and the global one, as documented."""
    from upstreams.gemini import vertex_base_url

    assert vertex_base_url("p", "us-central1") == "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi"
    assert vertex_base_url("p", "global") == "https://aiplatform.googleapis.com/v1/projects/p/locations/global/endpoints/openapi"


def test_openai_sdk_on_gemini_gets_its_request_cleaned_not_rejected():
    """Same dialect, but Gemini rejects fields OpenAI accepts: frequency_penalty and seed are dropped, no 400."""
    import openai

    with FakeUpstream(gemini_upstream([Reply.json(completion("gemini says hi"))])) as upstream, RunningProxy(
        {"GEMINI_API_KEY": "g", "GEMINI_BASE_URL": upstream.url, "PREFERRED_PROVIDER": "google"}
    ) as proxy:
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
        answer = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}],
                                                frequency_penalty=0.5, seed=3, user="someone")
    assert answer.choices[0].message.content == "gemini says hi"
    assert not {"frequency_penalty", "seed", "user"} & set(upstream.requests[0].json())


# ---------------------------------------------------------------------------------------------
# Adding a provider: one module and one registry line
# ---------------------------------------------------------------------------------------------

ACME_MODULE = '''
"""A made-up OpenAI-compatible provider, declared the way every provider module is."""

from upstreams import settings
from upstreams.openai import OpenAICompatibleProvider
from upstreams.provider import ProviderSpec


class AcmeProvider(OpenAICompatibleProvider):
    well_known_models = ("acme-1",)

    async def auth_headers(self, client, api_key):
        return [("x-acme-key", api_key)]


def configured(env, defaults):
    return bool(settings.text(env, "ACME_API_KEY"))


def from_env(env, defaults):
    url = settings.url(env, "ACME_BASE_URL", "https://acme.invalid/v1")
    return AcmeProvider("acme", url, settings.text(env, "ACME_API_KEY"), max_tokens_limit=defaults.max_tokens_limit)


SPEC = ProviderSpec(
    name="acme",
    dialect="chat",
    variables="ACME_API_KEY (and ACME_BASE_URL)",
    configured=configured,
    from_env=from_env,
    aliases=("acme-cloud",),
    prefixes=("acme", "ac"),
    tier_defaults=("acme-large", "acme-small"),
)
'''


def test_adding_a_provider_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    """A new module with a SPEC plus one PROVIDER_MODULES line: settings, preference, tiers, prefixes, auth, models and redaction follow."""
    from server.config import Config
    from upstreams import registry

    (tmp_path / "acme_provider.py").write_text(ACME_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PROVIDER_MODULES", [*registry.PROVIDER_MODULES, "acme_provider"])

    with pytest.raises(Exception, match="ACME_BASE_URL"):
        Config.from_env({"ACME_API_KEY": "k", "ACME_BASE_URL": "not a url"})
    replies = [Reply.json(completion("hi from acme")), Reply.json(completion("again")), Reply.json(completion("short prefix"))]
    with FakeUpstream(replies) as upstream:
        env = {"ACME_API_KEY": "acme-secret-key", "ACME_BASE_URL": upstream.url + "/v1", "PREFERRED_PROVIDER": "acme-cloud"}
        assert "acme-secret-key" in Config.from_env(env).secrets()
        with RunningProxy(env) as proxy:
            answer = request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="claude-sonnet-4-5"))
            assert answer.status == 200 and answer.body["content"][0]["text"] == "hi from acme"
            answer = request(proxy, "POST", "/v1/chat/completions",
                             {"model": "acme/acme-2", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status == 200 and answer.body["choices"][0]["message"]["content"] == "again"
            request(proxy, "POST", "/v1/messages", dict(MESSAGE, model="ac/acme-3"))
            models = request(proxy, "GET", "/v1/models").body
    first, second, third = upstream.requests
    assert first.path == "/v1/chat/completions" and first.headers["x-acme-key"] == "acme-secret-key"
    assert first.json()["model"] == "acme-large"  # sonnet -> MIDDLE_MODEL, defaulting to the big tier default
    assert second.json()["model"] == "acme-2" and third.json()["model"] == "acme-3"
    assert "acme-1" in [model["id"] for model in models["data"]]


# ---------------------------------------------------------------------------------------------
# History thinking: `reasoning_content` only where the server accepts it
# ---------------------------------------------------------------------------------------------

# The message fields Chat Completions defines; api.openai.com answers 400 to any other.
OPENAI_MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"}

THINKING_HISTORY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 100,
    "messages": [
        {"role": "user", "content": "What is in /tmp?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should list the folder.", "signature": "c2lnbmF0dXJl"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls /tmp"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
    ],
    "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
}


def strict_openai(request: Received) -> Reply:
    """Rejects unknown message fields exactly as api.openai.com does."""
    for i, message in enumerate(request.json()["messages"]):
        for name in message:
            if name not in OPENAI_MESSAGE_FIELDS:
                return Reply.json({"error": {"message": f"Unrecognized request argument supplied: {name}",
                                             "type": "invalid_request_error", "param": f"messages[{i}].{name}",
                                             "code": "unknown_parameter"}}, status=400)
    return Reply.json(completion("a.txt is there"))


@pytest.mark.parametrize(
    "env_of",
    [
        # A strict OpenAI-compatible server behind OPENAI_BASE_URL: turned off by the setting.
        lambda url: {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": url, "OPENAI_REASONING_CONTENT": "off"},
        # Azure and Gemini never get it, whatever their address.
        lambda url: {"AZURE_OPENAI_ENDPOINT": url, "AZURE_OPENAI_API_KEY": "k", "PREFERRED_PROVIDER": "azure"},
        lambda url: {"GEMINI_API_KEY": "k", "GEMINI_BASE_URL": url, "PREFERRED_PROVIDER": "google"},
    ],
    ids=["openai-off", "azure", "gemini"],
)
def test_thinking_history_is_not_sent_to_servers_that_reject_unknown_fields(env_of):
    """A session moved from Claude (or DeepSeek) to GPT mid-way goes on instead of dying with a 400."""
    with FakeUpstream(strict_openai) as upstream, RunningProxy(env_of(upstream.url)) as proxy:
        answer = request(proxy, "POST", "/v1/messages", THINKING_HISTORY)
    assert answer.status == 200, answer.body
    assert answer.body["content"][0]["text"] == "a.txt is there"


def test_thinking_history_goes_back_as_reasoning_content_to_other_compatible_servers():
    """DeepSeek and Kimi need reasoning_content back on tool-call turns: the default for other hosts."""
    with FakeUpstream([Reply.json(completion("ok"))]) as upstream, \
            RunningProxy({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": upstream.url}) as proxy:
        assert request(proxy, "POST", "/v1/messages", THINKING_HISTORY).status == 200
    assistant = upstream.requests[0].json()["messages"][1]
    assert assistant["reasoning_content"] == "I should list the folder."


def test_ollama_gets_history_thinking_as_reasoning():
    with FakeUpstream([Reply.json(completion("ok"))]) as upstream, \
            RunningProxy({"OLLAMA_BASE_URL": upstream.url, "PREFERRED_PROVIDER": "ollama"}) as proxy:
        assert request(proxy, "POST", "/v1/messages", THINKING_HISTORY).status == 200
    assistant = upstream.requests[0].json()["messages"][1]
    assert assistant["reasoning"] == "I should list the folder." and "reasoning_content" not in assistant


@pytest.mark.parametrize(
    ("base_url", "setting", "field"),
    [
        ("https://api.openai.com/v1", None, None),
        ("https://my-resource.openai.azure.com/openai/v1", None, None),
        ("https://generativelanguage.googleapis.com/v1beta/openai", None, None),
        ("https://api.deepseek.com", None, "reasoning_content"),
        ("https://api.moonshot.ai/v1", None, "reasoning_content"),
        ("http://127.0.0.1:8000/v1", None, "reasoning_content"),
        ("https://api.openai.com/v1", "on", "reasoning_content"),
        ("https://api.deepseek.com", "off", None),
    ],
)
def test_reasoning_content_capability_by_host_and_setting(base_url, setting, field):
    from server.config import Config

    env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": base_url}
    if setting:
        env["OPENAI_REASONING_CONTENT"] = setting
    provider = Config.from_env(env).providers["openai"]
    assert provider.target("gpt-4.1").reasoning_history_field == field
