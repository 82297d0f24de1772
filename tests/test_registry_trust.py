"""Where `layerforge push` sends credentials, against real docker-registry instances on
loopback and a second origin that records every Authorization header it receives:
credentials and tokens go to the registry's own origin only; an upload Location or a
redirect elsewhere is followed without them; a token realm elsewhere gets the login only
over HTTPS. And which registries are loopback (plain HTTP without --insecure)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerforge.registry import reference
from layerforge.registry.transport import Transport
from layerforge.trust import origins
from tests.helpers import image_parts, index_entry, run, run_cli, verify_blobs
from tests.push_support import SECRET, assert_secret_hidden, isolate, multi_layer_image, push, write_docker_config
from tests.registry_support import CredentialLog, FaultProxy, Registry, Rule

VECTORS = Path(__file__).parent / "vectors" / "registry_hosts.json"
BASIC = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("layerforge push: error: "), stderr
    return lines[0]


def trust_registry(monkeypatch: pytest.MonkeyPatch, reg: Registry) -> None:
    """The push (and skopeo) trust the test CA of the registry's token server."""
    for name, value in reg.client_env().items():
        monkeypatch.setenv(name, value)


def skopeo_digest(reg: Registry, ref: str) -> str:
    out = run("skopeo", "inspect", "--tls-verify=false", "--creds", f"alice:{SECRET}", f"docker://{reg.host}/{ref}")
    return str(json.loads(out.stdout)["Digest"])


# -- loopback --------------------------------------------------------------------------


def test_loopback_is_the_rule_of_the_shared_vectors() -> None:
    cases = json.loads(VECTORS.read_text())["cases"]
    assert len(cases) > 50
    wrong = []
    for case in cases:
        name = case["registry"]
        if (origins.valid_registry(name), reference.is_loopback(name)) != (case["valid"], case["loopback"]):
            wrong.append(name)
        elif case["valid"]:
            assert Transport(name).scheme == ("http" if case["loopback"] else "https"), name
    assert not wrong, f"disagree with {VECTORS.name}: {wrong}"


def test_names_that_look_like_loopback_are_https(tmp_path: Path) -> None:
    src = multi_layer_image(tmp_path, layers=1)
    reg = Registry(tmp_path / "reg").start()
    try:
        for host in (f"127.evil.example:{reg.port}", f"127.0.0.1.nip.io:{reg.port}"):
            proc = push(f"{src}:v1", f"{host}/team/app:1", "--retries", "1", "-v", check=False)
            assert proc.returncode == 1, proc.stderr
            assert f"https://{host}/" in proc.stderr and f"http://{host}/" not in proc.stderr, proc.stderr
        assert not reg.manifest_exists("team/app", "1")
    finally:
        reg.stop()
    for bad in ("[::1%lo]:5000", "127.0.0.1:99999", "local_host.example"):
        proc = push(f"{src}:v1", f"{bad}/team/app:1", check=False)
        assert proc.returncode == 2 and "is not a registry host[:port]" in proc.stderr, proc.stderr


# -- credentials go to the registry's origin only ---------------------------------------


@pytest.fixture(params=["htpasswd", "token"])
def auth_registry(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    reg = Registry(tmp_path / "reg", auth=request.param, users={"alice": SECRET}).start()
    trust_registry(monkeypatch, reg)
    yield reg
    reg.stop()


@contextlib.contextmanager
def storage_behind(reg: Registry, action: str, method: str, path: str) -> Iterator[tuple[FaultProxy, CredentialLog]]:
    """The registry behind a proxy whose ``action`` rule sends the client to a second origin
    (the storage service of the uploads). The storage forwards to the registry with
    credentials of its own (a storage service's signed URLs), never the client's; the
    client has credentials for the proxy's origin."""

    def own_auth(request_path: str) -> str:
        return f"Bearer {reg.token.token_for('storage', 'team/app')}" if reg.token else BASIC

    storage = CredentialLog(upstream=reg.host, upstream_auth=own_auth).start()
    proxy = FaultProxy(reg.host).start()
    proxy.rules.append(Rule(action, path=path, method=method, target=storage.origin))
    write_docker_config(Path(os.environ["DOCKER_CONFIG"]), proxy.host, "alice", SECRET)
    try:
        yield proxy, storage
    finally:
        proxy.stop()
        storage.stop()


def test_upload_location_on_another_origin_gets_no_credentials(tmp_path: Path, auth_registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=3)
    with storage_behind(auth_registry, "location", "POST", r"/blobs/uploads/$") as (proxy, storage):
        assert_secret_hidden(push(f"{src}:v1", f"{proxy.host}/team/app:1", "-v"))
    uploads = [path for method, path, _ in storage.seen if method in ("PUT", "PATCH")]
    assert len(uploads) == 4, storage.seen  # 3 layers + config went to the other origin
    assert storage.authorizations() == [], "no Basic or Bearer credential reached the other origin"
    assert skopeo_digest(auth_registry, "team/app:1") == image_parts(src, "v1")[0]["digest"]


def test_redirects_to_another_origin_carry_no_credentials(tmp_path: Path, auth_registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    with storage_behind(auth_registry, "redirect", "HEAD", r"/blobs/sha256:") as (proxy, storage):
        assert_secret_hidden(push(f"{src}:v1", f"{proxy.host}/team/app:1"))
        heads = [path for method, path, _ in storage.seen if method == "HEAD"]
        assert len(heads) == 3, storage.seen  # the redirected blob checks were followed
        assert storage.authorizations() == []
        # A redirected PUT is not followed at all: nothing is sent to the other origin.
        seen = len(storage.seen)
        proxy.rules[:] = [Rule("redirect", path=r"/manifests/", method="PUT", target=storage.origin)]
        other = multi_layer_image(tmp_path / "other", layers=1)
        proc = push(f"{other}:v1", f"{proxy.host}/team/app:2", check=False)
        assert proc.returncode == 1 and "redirected (307)" in one_error_line(proc.stderr)
        assert "not followed" in proc.stderr and SECRET not in proc.stderr
        assert len(storage.seen) == seen
    assert skopeo_digest(auth_registry, "team/app:1") == image_parts(src, "v1")[0]["digest"]


def test_pulled_blobs_redirected_to_storage_carry_no_credentials(tmp_path: Path, auth_registry: Registry) -> None:
    src = multi_layer_image(tmp_path, layers=2)
    with storage_behind(auth_registry, "redirect", "GET", r"/blobs/sha256:") as (proxy, storage):
        assert_secret_hidden(push(f"{src}:v1", f"{proxy.host}/team/app:1"))
        proc = run_cli("pull", f"{proxy.host}/team/app:1", "--out", tmp_path / "out", "-v", env=os.environ.copy())
        assert_secret_hidden(proc)
        gets = [path for method, path, _ in storage.seen if method == "GET"]
        assert len(gets) == 3, storage.seen  # 2 layers + config fetched from the other origin
        assert storage.authorizations() == [], "no Basic or Bearer credential reached the other origin"
    assert index_entry(tmp_path / "out", "1")["digest"] == image_parts(src, "v1")[0]["digest"]
    verify_blobs(tmp_path / "out")


def test_https_token_realm_elsewhere_gets_the_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry(tmp_path / "reg", auth="token", users={"alice": SECRET}).start()
    trust_registry(monkeypatch, reg)
    try:
        assert reg.token is not None and reg.token.realm.startswith("https://")
        src = multi_layer_image(tmp_path, layers=1)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
        assert_secret_hidden(push(f"{src}:v1", f"{reg.host}/team/app:1"))
        assert BASIC in reg.token.authorizations, "the login went to the HTTPS token service"
        assert not any(a and a.startswith("Bearer ") for a in reg.token.authorizations), "tokens stay home"
    finally:
        reg.stop()


def test_plain_http_token_realm_elsewhere_gets_nothing(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg", auth="token", users={"alice": SECRET}, token_tls=False).start()
    try:
        assert reg.token is not None and reg.token.realm.startswith("http://")
        src = multi_layer_image(tmp_path, layers=1)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), reg.host, "alice", SECRET)
        proc = push(f"{src}:v1", f"{reg.host}/team/app:1", check=False)
        assert proc.returncode == 1
        line = one_error_line(proc.stderr)
        assert f"token realm http://127.0.0.1:{reg.token.port}" in line and "plain HTTP" in line, line
        assert SECRET not in proc.stdout + proc.stderr
        assert [a for a in reg.token.authorizations if a] == [], "no credential reached the plain-HTTP realm"
    finally:
        reg.stop()


def test_token_realm_on_the_registrys_own_origin_may_be_plain_http(tmp_path: Path) -> None:
    proxy = FaultProxy("127.0.0.1:1")  # the upstream is set once the registry has its port
    reg = Registry(
        tmp_path / "reg", auth="token", users={"alice": SECRET}, token_tls=False, realm=f"http://{proxy.host}/token"
    ).start()
    assert reg.token is not None
    proxy.upstream = reg.host
    proxy.rules.append(Rule("token", path=r"^/token$", target=reg.token.realm))
    proxy.start()
    try:
        src = multi_layer_image(tmp_path, layers=2)
        write_docker_config(Path(os.environ["DOCKER_CONFIG"]), proxy.host, "alice", SECRET)
        assert_secret_hidden(push(f"{src}:v1", f"{proxy.host}/team/app:1"))
        assert BASIC in reg.token.authorizations, "the login went to the realm on the registry's origin"
        assert skopeo_digest(reg, "team/app:1") == image_parts(src, "v1")[0]["digest"]
    finally:
        proxy.stop()
        reg.stop()
