"""`fedseed registry serve` as a real process on 127.0.0.1: publish and pull through
it with the CLI, and every refusal as a 4xx JSON error that stores nothing."""

from __future__ import annotations

import shutil

import httpx
import pytest

from fedseed.provenance.envelope import MAX_ENVELOPE_BYTES
from fedseed.provenance.trust import load_trust, save_trust
from fedseed.recipe import digest_bytes


def post(server, body: bytes, **params: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/recipes", content=body, params=params,
                      headers={"content-type": "application/json"}, timeout=30)


def test_healthz_answers_ok(server):
    response = httpx.get(f"{server.url}/healthz", timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openapi_describes_the_endpoints(server):
    response = httpx.get(f"{server.url}/openapi.json", timeout=10)

    assert response.status_code == 200
    spec = response.json()
    assert {"/healthz", "/v1/recipes", "/v1/recipes/{digest}",
            "/v1/tags/{name}/{tag}"} <= set(spec["paths"])
    publish = spec["paths"]["/v1/recipes"]["post"]
    assert {p["name"] for p in publish.get("parameters", [])} <= {"name", "tag"}


def test_publish_then_pull_over_http(fedseed, keys, trust, recipe_file, server, tmp_path):
    trust("alice")
    recipe = recipe_file(seed=11, name="http-digits")

    published = fedseed("recipe", "publish", str(recipe), "--key", "alice", "--tag", "v1",
                        "--registry", server.url)
    digest = published.out.strip()
    by_tag = fedseed("recipe", "pull", "http-digits:v1", "--registry", server.url,
                     "-o", str(tmp_path / "by-tag.json"))
    by_digest = fedseed("recipe", "pull", digest, "--registry", server.url,
                        "-o", str(tmp_path / "by-digest.json"))
    listing = fedseed("recipe", "list", "--registry", server.url)

    assert published.code == 0, published.err
    assert by_tag.code == 0 and by_digest.code == 0, by_tag.err + by_digest.err
    served = httpx.get(f"{server.url}/v1/recipes/{digest}", timeout=10).content
    assert (tmp_path / "by-tag.json").read_bytes() == served
    assert (tmp_path / "by-digest.json").read_bytes() == served
    assert f"http-digits          v1           {digest}" in listing.out


def test_pull_over_http_refuses_an_untrusted_publisher(fedseed, keys, sign, variant, server,
                                                       tmp_path):
    created = post(server, sign(variant(12, "http-untrusted")).to_json())
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", "http-untrusted", "--registry", server.url,
                     "-o", str(out))

    assert created.status_code == 201, created.text
    assert pulled.code == 1
    assert f"signed by unknown key {keys['alice'].keyid[:16]}" in pulled.err
    assert not out.exists()


def test_cli_publish_with_a_key_the_server_does_not_trust_exits_1(fedseed, keys, recipe_file,
                                                                  server):
    before = server.held()

    published = fedseed("recipe", "publish", str(recipe_file(seed=13)), "--key", "bob",
                        "--registry", server.url)

    assert published.code == 1
    assert f"signed by unknown key {keys['bob'].keyid[:16]}" in published.err
    assert server.held() == before


def test_verify_chain_over_http(fedseed, trust, sign, variant, child_of, server):
    trust("alice")
    parent = sign(variant(16, "http-parent"))
    child = sign(child_of(variant(16, "http-parent")))
    for envelope in (parent, child):
        assert post(server, envelope.to_json()).status_code == 201

    verified = fedseed("recipe", "verify", "--chain", digest_bytes(child.payload),
                       "--registry", server.url)

    assert verified.code == 0, verified.err
    assert "lineage: every ancestor verified" in verified.out


def test_revoking_a_publisher_on_the_server_takes_effect_at_once(keys, sign, variant, serve,
                                                                 server_trust, tmp_path):
    trust_file = tmp_path / "server-trust.json"
    shutil.copy(server_trust, trust_file)
    server = serve(trust_file=trust_file)
    accepted = post(server, sign(variant(17)).to_json())
    store, _ = load_trust(path=trust_file).revoke(keys["alice"].keyid)
    save_trust(store, path=trust_file)

    refused = post(server, sign(variant(18)).to_json())

    assert accepted.status_code == 201, accepted.text
    assert refused.status_code == 403
    assert "revoked key" in refused.json()["error"]
    assert server.count() == 1


def test_moving_the_tag_of_another_key_is_409(sign, variant, assets, server):
    owned = post(server, sign(variant(14, "http-owned")).to_json(), tag="v1")
    before = server.count()

    moved = post(server, (assets / "good.dsse.json").read_bytes(), name="http-owned", tag="v1")

    assert owned.status_code == 201, owned.text
    assert moved.status_code == 409
    assert "belongs to key" in moved.json()["error"]
    assert server.count() == before
    tagged = httpx.get(f"{server.url}/v1/tags/http-owned/v1", timeout=10)
    assert tagged.content == sign(variant(14, "http-owned")).to_json()


def test_unknown_digest_is_404_json(server):
    response = httpx.get(f"{server.url}/v1/recipes/sha256:{'0' * 64}", timeout=10)

    assert response.status_code == 404
    assert "no recipe" in response.json()["error"]


def test_envelope_over_1_mib_is_413(server):
    before = server.held()

    response = post(server, b'{"payload":"' + b"A" * MAX_ENVELOPE_BYTES + b'"}')

    assert response.status_code == 413
    assert "envelope over 1048576 bytes" in response.json()["error"]
    assert server.held() == before


def test_streamed_envelope_over_1_mib_is_413(server):
    before = server.held()

    def chunks():
        for _ in range(17):
            yield b"A" * 65536

    response = httpx.post(f"{server.url}/v1/recipes", content=chunks(), timeout=30)

    assert response.status_code == 413
    assert server.held() == before


def test_malformed_json_is_400(server):
    before = server.held()

    response = post(server, b'{"payload": "abc", ')

    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]
    assert server.held() == before


def test_json_that_is_not_an_envelope_is_400(server):
    before = server.held()

    response = post(server, b'{"recipe": {"name": "digits-mlp"}}')

    assert response.status_code == 400
    assert "not a DSSE envelope" in response.json()["error"]
    assert server.held() == before


@pytest.mark.parametrize(("asset", "status", "reason"), [
    ("truncated.dsse.json", 400, "not JSON"),
    ("tampered-payload.dsse.json", 403, "payload was tampered with"),
    ("tampered-signature.dsse.json", 403, "payload was tampered with or the signature"),
    ("unsigned.dsse.json", 403, "unsigned envelope"),
    ("invalid-recipe.dsse.json", 403, "not a valid recipe"),
])
def test_bad_envelope_is_refused(assets, server, asset, status, reason):
    before = server.held()

    response = post(server, (assets / asset).read_bytes())

    assert response.status_code == status
    assert reason in response.json()["error"]
    assert server.held() == before


def test_envelope_signed_by_an_untrusted_key_is_403(keys, sign, variant, server):
    before = server.held()

    response = post(server, sign(variant(15), key="mallory").to_json())

    assert response.status_code == 403
    assert f"unknown key {keys['mallory'].keyid[:16]}" in response.json()["error"]
    assert server.held() == before


@pytest.mark.parametrize("params", [
    {"name": "../escape"}, {"name": "a/b"}, {"name": ".."}, {"name": "..\\x"},
    {"name": "/abs"}, {"tag": "../x"}, {"tag": "a/b"}, {"tag": ".."},
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_names_with_path_parts_are_refused(assets, server, params):
    before = server.held()

    response = post(server, (assets / "good.dsse.json").read_bytes(), **params)

    assert 400 <= response.status_code < 500
    assert "must be 1-64" in response.json()["error"]
    assert server.held() == before
    assert not (server.store.parent / "escape").exists()


@pytest.mark.parametrize("path", [
    "/v1/recipes/..%2Findex.sqlite",
    "/v1/recipes/..",
    "/v1/recipes/%2E%2E",
    "/v1/tags/..%2F..%2Fblobs/latest",
    "/v1/tags/%2E%2E/latest",
    "/v1/tags/digits-mlp/..%2F..%2Findex.sqlite",
])
def test_fetch_with_path_parts_is_a_4xx_json_error(server, path):
    response = httpx.get(server.url + path, timeout=10)

    assert 400 <= response.status_code < 500
    assert isinstance(response.json(), dict)
    assert b"SQLite format" not in response.content


def test_envelope_with_a_number_of_5000_digits_is_400_not_500(server):
    # Found by `fedseed bench robustness`: Python refuses integers past 4,300 digits
    # with a ValueError, which the server answered with a 500.
    before = server.held()

    response = post(server, b'{"payload":"e30=","payloadType":' + b"1" * 5000
                    + b',"signatures":[]}')

    assert response.status_code == 400
    assert "too many digits" in response.json()["error"]
    assert server.held() == before


def test_openapi_documents_the_body_and_every_status_with_a_schema(server):
    # The document drives schemathesis (`fedseed bench robustness`): without the
    # request body and the error statuses in it, a fuzzer cannot check either.
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    publish = spec["paths"]["/v1/recipes"]["post"]
    fetches = [spec["paths"]["/v1/recipes/{digest}"]["get"],
               spec["paths"]["/v1/tags/{name}/{tag}"]["get"]]

    assert publish["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DSSEEnvelope"}
    assert {"201", "400", "403", "409", "413", "422"} <= set(publish["responses"])
    for operation in fetches:
        assert {"200", "404", "422"} <= set(operation["responses"])
    for path in spec["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                assert response["content"]["application/json"]["schema"]
    assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
