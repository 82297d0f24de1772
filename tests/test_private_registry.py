"""`layerforge push`/`pull` against a private registry as companies run one (issue 34): HTTPS
with a certificate from a private CA, under a host name, htpasswd logins, optionally mutual
TLS. The CA is trusted the ways podman, skopeo and docker trust it (containers-certs.d(5):
``/etc/containers/certs.d``, ``/etc/docker/certs.d``, ``~/.config/containers/certs.d``; and
``SSL_CERT_FILE``); logins are found where ``podman login`` and ``docker login`` leave them,
in containers-auth.json(5) order. An unknown CA, a wrong password, a missing login, a missing
client certificate and ``--insecure`` against TLS each give one line. podman pulls and runs
what was pushed. Every command runs in a mount namespace of its own (see
``tests/private_registry_support.py``): nothing on the machine changes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat

from tests.helpers import image_parts, index_entry, layerforge_bin, verify_blobs
from tests.private_registry_support import (
    HOST,
    MARKER,
    USER,
    PrivateRegistry,
    assert_hidden,
    auth_json,
    busybox_image,
    login_file,
    one_line,
)
from tests.push_support import SECRET
from tests.registry_support import Registry
from tests.runtime_support import Podman


def push_and_pull(reg: PrivateRegistry, src: Path, out: Path, client_env: dict[str, str]) -> None:
    pushed = reg.mounts.layerforge("push", f"{src}:v1", f"{reg.name}/team/app:1", env=client_env)
    assert pushed.returncode == 0, pushed.stderr
    assert_hidden(pushed)
    digest = image_parts(src, "v1")[0]["digest"]
    assert f"{reg.name}/team/app:1 {digest}" in pushed.stdout
    pulled = reg.mounts.layerforge("pull", f"{reg.name}/team/app:1", "--out", out, env=client_env)
    assert pulled.returncode == 0, pulled.stderr
    assert index_entry(out, "1")["digest"] == digest
    verify_blobs(out)


# -- trust --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "certs_root", ["/etc/containers/certs.d", "/etc/docker/certs.d", "~/.config/containers/certs.d"]
)
def test_a_ca_in_certs_d_trusts_the_registry(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str], certs_root: str
) -> None:
    corp.trust_in(certs_root.replace("~", client_env["HOME"]))
    login_file(tmp_path / "auth.json", corp)
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    push_and_pull(corp, busybox_image(tmp_path), tmp_path / "out", client_env)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_ssl_cert_file_and_dir_still_trust_the_registry(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str], variable: str
) -> None:
    login_file(tmp_path / "auth.json", corp)
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    if variable == "SSL_CERT_FILE":
        client_env["SSL_CERT_FILE"] = str(corp.ca.bundle)
    else:  # a hashed directory, as OpenSSL reads one
        cas = tmp_path / "cas"
        cas.mkdir()
        (cas / "corp.pem").write_bytes(corp.ca.pem)
        subprocess.run(["openssl", "rehash", str(cas)], check=True, capture_output=True, timeout=60)
        client_env["SSL_CERT_DIR"] = str(cas)
    push_and_pull(corp, busybox_image(tmp_path), tmp_path / "out", client_env)


def test_an_unknown_ca_is_one_line_naming_the_three_ways_and_is_not_retried(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    login_file(tmp_path / "auth.json", corp)
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    src = busybox_image(tmp_path)
    line = one_line(corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env))
    assert corp.name in line and "not trusted" in line, line
    assert f"/etc/containers/certs.d/{corp.name}/ca.crt" in line and "SSL_CERT_FILE" in line, line
    assert "update-ca-certificates" in line and "attempts" not in line, line
    verbose = corp.mounts.layerforge("push", "-v", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    assert verbose.returncode == 1 and "retrying" not in verbose.stderr, verbose.stderr
    pulled = corp.mounts.layerforge("pull", f"{corp.name}/team/app:1", "--out", tmp_path / "out", env=client_env)
    assert "not trusted" in one_line(pulled, "pull")


def test_insecure_against_a_tls_registry_says_so(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    src = busybox_image(tmp_path)
    proc = corp.mounts.layerforge("push", "--insecure", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    line = one_line(proc)
    assert "speaks HTTPS" in line and "--insecure" in line and "HTTP 400" not in line, line


# -- logins -------------------------------------------------------------------------------


LOGINS = {
    "REGISTRY_AUTH_FILE": lambda tmp, client_env: tmp / "elsewhere" / "auth.json",
    "XDG_RUNTIME_DIR (rootless podman login)": lambda tmp, client_env: tmp / "xdg-run" / "containers" / "auth.json",
    "/run/containers/UID (root's podman login)": lambda tmp, client_env: Path(
        f"/run/containers/{os.getuid()}/auth.json"
    ),
    "~/.config/containers/auth.json": lambda tmp, client_env: (
        Path(client_env["HOME"]) / ".config" / "containers" / "auth.json"
    ),
    "DOCKER_CONFIG": lambda tmp, client_env: Path(client_env["DOCKER_CONFIG"]) / "config.json",
    "~/.docker/config.json": lambda tmp, client_env: Path(client_env["HOME"]) / ".docker" / "config.json",
}


@pytest.mark.parametrize("where", list(LOGINS))
def test_logins_are_found_where_podman_and_docker_leave_them(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str], where: str
) -> None:
    corp.trust_in("/etc/containers/certs.d")
    path = LOGINS[where](tmp_path, client_env)
    if where == "REGISTRY_AUTH_FILE":
        client_env["REGISTRY_AUTH_FILE"] = str(path)
    if where.startswith("XDG_RUNTIME_DIR"):
        client_env["XDG_RUNTIME_DIR"] = str(tmp_path / "xdg-run")
    if where == "~/.docker/config.json":
        del client_env["DOCKER_CONFIG"]
    login_file(corp.mounts.path(str(path)) if str(path).startswith("/run/") else path, corp)
    push_and_pull(corp, busybox_image(tmp_path), tmp_path / "out", client_env)


def test_the_first_file_with_a_login_wins(tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]) -> None:
    """containers-auth.json(5) order: REGISTRY_AUTH_FILE before XDG_RUNTIME_DIR before Docker's."""
    corp.trust_in("/etc/containers/certs.d")
    client_env.update(REGISTRY_AUTH_FILE=str(tmp_path / "first.json"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    login_file(tmp_path / "first.json", corp)
    login_file(tmp_path / "run" / "containers" / "auth.json", corp, "wrong-password")
    login_file(Path(client_env["DOCKER_CONFIG"]) / "config.json", corp, "wrong-password")
    push_and_pull(corp, busybox_image(tmp_path), tmp_path / "out", client_env)
    del client_env["REGISTRY_AUTH_FILE"]
    proc = corp.mounts.layerforge(
        "push", f"{busybox_image(tmp_path / 'b')}:v1", f"{corp.name}/team/b:1", env=client_env
    )
    line = one_line(proc)
    assert f"{tmp_path / 'run' / 'containers' / 'auth.json'}" in line and f"podman login {corp.name}" in line, line


def test_a_missing_login_lists_where_it_looked_and_the_command(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    corp.trust_in("/etc/containers/certs.d")
    client_env.update(REGISTRY_AUTH_FILE=str(tmp_path / "none.json"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    src = busybox_image(tmp_path)
    line = one_line(corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env))
    for place in (
        tmp_path / "none.json",
        tmp_path / "run" / "containers" / "auth.json",
        Path(f"/run/containers/{os.getuid()}/auth.json"),
        Path(client_env["HOME"]) / ".config" / "containers" / "auth.json",
        Path(client_env["DOCKER_CONFIG"]) / "config.json",
    ):
        assert str(place) in line, line
    assert f"podman login {corp.name}" in line, line
    assert line.index(str(tmp_path / "none.json")) < line.index(str(Path(client_env["DOCKER_CONFIG"])))


# -- mutual TLS ---------------------------------------------------------------------------


def test_client_certificates_in_certs_d_for_mutual_tls(tmp_path: Path, client_env: dict[str, str]) -> None:
    reg = PrivateRegistry(tmp_path / "mtls", {USER: SECRET}, mtls=True).start()
    try:
        login_file(tmp_path / "auth.json", reg)
        client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
        reg.trust_in("/etc/containers/certs.d")
        src = busybox_image(tmp_path)
        line = one_line(reg.mounts.layerforge("push", f"{src}:v1", f"{reg.name}/team/app:1", env=client_env))
        assert "client certificate" in line and f"/etc/containers/certs.d/{reg.name}/" in line, line
        reg.client_certificate("/etc/containers/certs.d")
        push_and_pull(reg, src, tmp_path / "out", client_env)
    finally:
        reg.stop()


def test_a_client_certificate_without_its_key_is_one_line(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    place = corp.trust_in("/etc/containers/certs.d").parent
    (place / "client.cert").write_bytes(corp.ca.pem)
    src = busybox_image(tmp_path)
    line = one_line(corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env))
    assert "client.cert" in line and "client.key" in line, line


def test_an_encrypted_client_key_is_one_line_not_a_prompt(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    place = corp.trust_in("/etc/containers/certs.d").parent
    key = ec.generate_private_key(ec.SECP256R1())
    (place / "client.cert").write_bytes(corp.ca.pem)
    (place / "client.key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pass"))
    )
    src = busybox_image(tmp_path)
    line = one_line(corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env))
    assert "client.key" in line and "encrypted" in line, line


# -- a wrong password; podman runs what was pushed -----------------------------------------


def test_a_wrong_password_is_one_line(tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]) -> None:
    corp.trust_in("/etc/containers/certs.d")
    login_file(tmp_path / "auth.json", corp, "not-the-password")
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    src = busybox_image(tmp_path)
    line = one_line(corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env))
    assert "HTTP 401" in line and str(tmp_path / "auth.json") in line and f"podman login {corp.name}" in line, line
    assert "not-the-password" not in line


def test_podman_pulls_and_runs_what_was_pushed(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    corp.trust_in("/etc/containers/certs.d")
    login_file(corp.mounts.path(f"/run/containers/{os.getuid()}/auth.json"), corp)
    src = busybox_image(tmp_path)
    pushed = corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    assert pushed.returncode == 0, pushed.stderr
    with Podman() as podman:
        ref = f"{corp.name}/team/app:1"
        podman_env = {k: v for k, v in client_env.items() if k != "DOCKER_CONFIG"}  # podman refuses a missing one
        pulled = corp.mounts.run(*podman.base_argv(), "pull", "--quiet", f"docker://{ref}", env=podman_env)
        assert pulled.returncode == 0, pulled.stderr
        ran = podman.run_image(ref, "echo", MARKER, entrypoint="/bin/busybox")
        assert ran.stdout.strip() == MARKER
    assert HOST not in Path("/etc/hosts").read_text(), "the host name stayed in the namespace"


# -- inspect ------------------------------------------------------------------------------


def test_inspect_reads_registry_references_with_the_same_trust_and_logins(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    corp.trust_in("/etc/docker/certs.d")
    client_env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    login_file(tmp_path / "run" / "containers" / "auth.json", corp)
    src = busybox_image(tmp_path)
    pushed = corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    assert pushed.returncode == 0, pushed.stderr
    digest = image_parts(src, "v1")[0]["digest"]
    for ref in (f"{corp.name}/team/app:1", f"docker://{corp.name}/team/app@{digest}"):
        proc = corp.mounts.layerforge("inspect", ref, "--json", env=client_env)
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout)
        assert (
            info["digest"] == digest and info["layers"][0]["digest"] == image_parts(src, "v1")[1]["layers"][0]["digest"]
        )
    text = corp.mounts.layerforge("inspect", f"{corp.name}/team/app:1", env=client_env)
    assert f"Manifest:  {digest}" in text.stdout, text.stderr
    del client_env["XDG_RUNTIME_DIR"]
    line = one_line(corp.mounts.layerforge("inspect", f"{corp.name}/team/app:1", env=client_env), "inspect")
    assert "requires a login" in line and f"podman login {corp.name}" in line, line


# -- the digest lookup of a digest-less remote_oci_image ----------------------------------

LOOKUP = """
import sys
sys.path.insert(0, sys.argv[1])
from layerforge_pants.remote.tag import resolve_digest
try:
    print(resolve_digest(sys.argv[2], "team/app", "1"))
except ValueError as e:
    print("refused:", e)
"""


def lookup(reg: PrivateRegistry, client_env: dict[str, str]) -> str:
    """What the Pants plugin's digest lookup (run when a BUILD file is read) finds, in the namespace."""
    plugins = Path(__file__).resolve().parent.parent / "pants-plugins"
    proc = reg.mounts.run(sys.executable, "-c", LOOKUP, plugins, reg.name, env=client_env)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1, proc.stderr
    return proc.stdout.strip()


def test_the_digest_lookup_uses_the_registrys_login_and_trust(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    corp.trust_in("/etc/containers/certs.d")
    src = busybox_image(tmp_path)
    login_file(corp.mounts.path(f"/run/containers/{os.getuid()}/auth.json"), corp)
    pushed = corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    assert pushed.returncode == 0, pushed.stderr
    assert lookup(corp, client_env) == image_parts(src, "v1")[0]["digest"]
    (corp.mounts.path(f"/run/containers/{os.getuid()}/auth.json")).unlink()
    refused = lookup(corp, client_env)
    assert refused.startswith("refused: the registry wants credentials") and f"podman login {corp.name}" in refused
    assert f"/run/containers/{os.getuid()}/auth.json" in refused, refused
    login_file(Path(client_env["DOCKER_CONFIG"]) / "config.json", corp, "wrong-password")
    assert "refuses the login from" in lookup(corp, client_env)
    assert SECRET not in refused


def test_the_digest_lookup_runs_the_credential_helper_docker_names(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]
) -> None:
    """A login kept by a credential helper (`credHelpers`, as `docker login` leaves it with a
    keychain): the lookup runs the helper as the tool does, with the registry on stdin."""
    corp.trust_in("/etc/containers/certs.d")
    src = busybox_image(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-lftest"
    answer = json.dumps({"ServerURL": corp.name, "Username": USER, "Secret": SECRET})
    helper.write_text(
        f'#!/bin/sh\n[ "$1" = get ] || exit 2\nread host\n[ "$host" = "{corp.name}" ] && echo \'{answer}\' && exit 0\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(0o755)
    config = Path(client_env["DOCKER_CONFIG"]) / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"credHelpers": {corp.name: "lftest"}}))
    env = {**client_env, "PATH": f"{bindir}:{client_env['PATH']}"}
    pushed = corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert lookup(corp, env) == image_parts(src, "v1")[0]["digest"]
    config.write_text(json.dumps({"credsStore": "lftest"}))
    assert lookup(corp, env) == image_parts(src, "v1")[0]["digest"], "credsStore too"
    config.write_text(json.dumps({"credHelpers": {corp.name: "missing"}}))
    refused = lookup(corp, env)
    assert "docker-credential-missing" in refused and "is not installed" in refused, refused
    assert SECRET not in refused


def test_the_digest_lookup_sends_a_login_to_its_registrys_token_realm_only(
    tmp_path: Path, client_env: dict[str, str]
) -> None:
    reg = Registry(tmp_path / "reg", auth="token", users={USER: SECRET}).start()
    try:
        assert reg.token is not None
        client_env.update(reg.client_env())
        src = busybox_image(tmp_path)
        auth = tmp_path / "auth.json"
        auth.write_text(auth_json(reg.host, USER, SECRET))
        pushed = subprocess.run(
            [layerforge_bin(), "push", f"{src}:v1", f"{reg.host}/team/app:1"],
            env={**client_env, "REGISTRY_AUTH_FILE": str(auth)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert pushed.returncode == 0, pushed.stderr
        reg.token.authorizations.clear()
        plugins = Path(__file__).resolve().parent.parent / "pants-plugins"
        for login_for, expected in ((f"other.example:{reg.port}", None), (reg.host, basic_of(USER, SECRET))):
            auth.write_text(auth_json(login_for, USER, SECRET))
            proc = subprocess.run(
                [sys.executable, "-c", LOOKUP, plugins, reg.host],
                env={**client_env, "REGISTRY_AUTH_FILE": str(auth)},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert proc.stdout.strip() == image_parts(src, "v1")[0]["digest"], proc.stdout + proc.stderr
            assert reg.token.authorizations == [expected], "a login goes to its own registry's token realm only"
            reg.token.authorizations.clear()
    finally:
        reg.stop()


def basic_of(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- local files read as hostile ----------------------------------------------------------


@pytest.mark.parametrize("where", ["certs.d CA", "certs.d key", "registries.conf", "auth file"])
def test_a_fifo_in_place_of_a_file_is_one_line_never_a_hang(
    tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str], where: str
) -> None:
    place = corp.trust_in("/etc/containers/certs.d")
    if where == "certs.d CA":
        place.unlink()
        os.mkfifo(place)
    elif where == "certs.d key":
        (place.parent / "client.cert").write_bytes(corp.ca.pem)
        os.mkfifo(place.parent / "client.key")
    elif where == "registries.conf":
        os.mkfifo(tmp_path / "registries.conf")
        client_env["CONTAINERS_REGISTRIES_CONF"] = str(tmp_path / "registries.conf")
    else:
        os.mkfifo(tmp_path / "auth.json")
        client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    src = busybox_image(tmp_path)
    proc = corp.mounts.run(layerforge_bin(), "push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env, timeout=60)
    line = one_line(proc)
    assert "regular file" in line or "not a file" in line, line
    if where != "registries.conf":  # the digest lookup reads certs.d and logins too
        refused = lookup(corp, client_env)
        assert refused.startswith("refused: ") and "regular file" in refused, refused
