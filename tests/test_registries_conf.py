"""containers-registries.conf(5) as podman reads it (issue 34): a registry marked ``insecure =
true`` is used without --insecure (HTTPS without checking its certificate, or plain HTTP when
it speaks no TLS), a ``blocked`` one is refused in one line, and ``[[registry.mirror]]`` s serve
pulls first, every document and blob they send checked against its digest (a mirror that lies
gives way to the next source). The files live in /etc/containers of a private mount namespace
(``tests/private_registry_support.py``). And the TOML reader agrees with ``tomllib``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tomllib

from layerforge.registry import registries_conf
from layerforge.registry.reference import parse_image_name
from layerforge.trust.toml_subset import TomlRefused, loads
from tests.helpers import image_parts, index_entry, verify_blobs
from tests.private_registry_support import USER, PrivateMounts, PrivateRegistry, auth_json, busybox_image, one_line
from tests.push_support import SECRET
from tests.registry_support import FaultProxy, Registry, Rule

CONF = "/etc/containers/registries.conf"


def write_conf(mounts: PrivateMounts, text: str) -> None:
    mounts.path(CONF).write_text(Path(CONF).read_text() + "\n" + text)


def test_an_insecure_tls_registry_needs_no_ca_and_no_flag(
    tmp_path: Path,
    corp: PrivateRegistry,
    client_env: dict[str, str],
) -> None:
    write_conf(corp.mounts, f'[[registry]]\nlocation = "{corp.name}"\ninsecure = true\n')
    (tmp_path / "auth.json").write_text(auth_json(corp.name, USER, SECRET))
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    src = busybox_image(tmp_path)
    pushed = corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env)
    assert pushed.returncode == 0, pushed.stderr
    pulled = corp.mounts.layerforge("pull", f"{corp.name}/team/app:1", "--out", tmp_path / "out", env=client_env)
    assert pulled.returncode == 0, pulled.stderr
    assert index_entry(tmp_path / "out", "1")["digest"] == image_parts(src, "v1")[0]["digest"]


def test_an_insecure_plain_http_registry_under_a_host_name(tmp_path: Path, client_env: dict[str, str]) -> None:
    reg = Registry(tmp_path / "plain").start()
    mounts = PrivateMounts(tmp_path / "ns", {"plain.corp.test": "127.0.0.1"})
    name = f"plain.corp.test:{reg.port}"
    try:
        src = busybox_image(tmp_path)
        refused = mounts.layerforge("push", f"{src}:v1", f"{name}/team/app:1", env=client_env)
        assert "does not answer with TLS" in one_line(refused) and "--insecure" in refused.stderr
        write_conf(mounts, f'[[registry]]\nprefix = "{name}/team"\nlocation = "{name}/team"\ninsecure = true\n')
        pushed = mounts.layerforge("push", f"{src}:v1", f"{name}/team/app:1", env=client_env)
        assert pushed.returncode == 0, pushed.stderr
        assert reg.manifest_exists("team/app", "1")
    finally:
        reg.stop()


def test_a_blocked_registry_is_one_line(tmp_path: Path, client_env: dict[str, str]) -> None:
    mounts = PrivateMounts(tmp_path / "ns", {})
    write_conf(mounts, '[[registry]]\nprefix = "evil.example.com"\nblocked = true\n')
    line = one_line(
        mounts.layerforge("pull", "evil.example.com/x/y:1", "--out", tmp_path / "o", env=client_env), "pull"
    )
    assert "blocked" in line and CONF in line, line


@pytest.fixture
def mirrored(tmp_path: Path, corp: PrivateRegistry, client_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """The image in the private registry ``corp`` (trusted, with a login) and in a plain registry on
    loopback behind a proxy: the mirror."""
    corp.trust_in("/etc/containers/certs.d")
    (tmp_path / "auth.json").write_text(auth_json(corp.name, USER, SECRET))
    client_env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    src = busybox_image(tmp_path)
    assert corp.mounts.layerforge("push", f"{src}:v1", f"{corp.name}/team/app:1", env=client_env).returncode == 0
    mirror = Registry(tmp_path / "mirror").start()
    assert corp.mounts.layerforge("push", f"{src}:v1", f"{mirror.host}/mirror/app:1", env=client_env).returncode == 0
    proxy = FaultProxy(mirror.host).start()
    yield src, proxy
    proxy.stop()
    mirror.stop()


def test_mirrors_serve_pulls_first_and_their_answers_are_checked(
    tmp_path: Path,
    corp: PrivateRegistry,
    client_env: dict[str, str],
    mirrored: tuple[Path, FaultProxy],
) -> None:
    src, proxy = mirrored
    digest = image_parts(src, "v1")[0]["digest"]
    write_conf(
        corp.mounts,
        f'[[registry]]\nprefix = "{corp.name}/team"\nlocation = "{corp.name}/team"\n'
        f'[[registry.mirror]]\nlocation = "{proxy.host}/mirror"\n',
    )
    out = tmp_path / "from-mirror"
    proc = corp.mounts.layerforge("pull", f"{corp.name}/team/app@{digest}", "--out", out, env=client_env)
    assert proc.returncode == 0 and proc.stderr.count("\n") == 1, proc.stderr
    assert index_entry(out, "latest")["digest"] == digest
    verify_blobs(out)
    assert any("/v2/mirror/app/blobs/" in r for r in proxy.log), "the blobs came from the mirror"

    # A mirror that lies about a manifest: refused by its digest, the registry serves it.
    proxy.log.clear()
    fake = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
    proxy.rules.append(
        Rule(
            "respond",
            path=r"/manifests/",
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": digest},
            body=fake,
        )
    )
    out = tmp_path / "past-a-lying-mirror"
    proc = corp.mounts.layerforge("pull", f"{corp.name}/team/app@{digest}", "--out", out, env=client_env)
    assert proc.returncode == 0, proc.stderr
    assert f"mirror {proxy.host}" in proc.stderr and "trying the next source" in proc.stderr, proc.stderr
    assert index_entry(out, "latest")["digest"] == digest
    verify_blobs(out)
    assert any("/manifests/" in r for r in proxy.log), "the mirror was asked first"


def test_digest_only_mirrors_are_not_asked_for_tags(
    tmp_path: Path,
    corp: PrivateRegistry,
    client_env: dict[str, str],
    mirrored: tuple[Path, FaultProxy],
) -> None:
    _, proxy = mirrored
    write_conf(
        corp.mounts,
        f'[[registry]]\nlocation = "{corp.name}"\n'
        f'[[registry.mirror]]\nlocation = "{proxy.host}/mirror"\npull-from-mirror = "digest-only"\n',
    )
    proc = corp.mounts.layerforge("pull", f"{corp.name}/team/app:1", "--out", tmp_path / "o", env=client_env)
    assert proc.returncode == 0, proc.stderr
    assert proxy.log == [], "a tag is never resolved by a digest-only mirror"


def test_a_malformed_registries_conf_is_one_line(tmp_path: Path, client_env: dict[str, str]) -> None:
    mounts = PrivateMounts(tmp_path / "ns", {})
    write_conf(mounts, "[[registry]]\nlocation = {inline = 1}\n")
    line = one_line(mounts.layerforge("pull", "a.example.com/x/y:1", "--out", tmp_path / "o", env=client_env), "pull")
    assert CONF in line and "line" in line, line


DOCS = [
    Path("/etc/containers/registries.conf").read_text(),
    'a = ["x", \'y\',]\n[[registry]]\nprefix = "p"\ninsecure = true\n[[registry.mirror]]\nlocation = "m"\n',
    '[t]\nk = -12 # c\n\n[[t.list]]\ns = "a\\u00e9\\""\n[[t.list]]\nn = [[1, 2], []]\n',
]


@pytest.mark.parametrize("doc", DOCS)
def test_the_toml_reader_agrees_with_tomllib(doc: str) -> None:
    assert loads(doc) == tomllib.loads(doc)


@pytest.mark.parametrize("doc", ['a = "x', "[a]\n[a]", "a = 1\na = 2", "a = [1,", "a = 1 b", "[[a]]\n[a]"])
def test_the_toml_reader_refuses_what_tomllib_refuses(doc: str) -> None:
    with pytest.raises(TomlRefused, match=r"^line \d+: "):
        loads(doc)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(doc)


def test_no_file_of_the_machine_changed() -> None:
    assert "plain.corp.test" not in Path("/etc/hosts").read_text()
    assert not os.path.exists("/etc/containers/certs.d")


def conf_entries(tmp_path: Path, text: str) -> list[registries_conf.Entry]:
    conf = tmp_path / "registries.conf"
    conf.write_text(text)
    return registries_conf.load({"CONTAINERS_REGISTRIES_CONF": str(conf), "HOME": str(tmp_path / "nohome")})


def test_entries_match_the_longest_prefix_on_a_component_boundary(tmp_path: Path) -> None:
    entries = conf_entries(
        tmp_path,
        '[[registry]]\nprefix = "corp.example/team"\nlocation = "mirror.example:5000/corp-team"\n'
        '[[registry]]\nprefix = "corp.example"\ninsecure = true\n'
        '[[registry]]\nprefix = "*.internal.example"\n[[registry.mirror]]\nlocation = "cache.example/int"\n'
        '[[registry]]\nprefix = "docker.io/library"\nlocation = "hub-cache.example/library"\n',
    )
    moved = registries_conf.pull_sources(parse_image_name("corp.example/team/app:1"), entries)
    assert [(str(s.name), s.insecure) for s in moved] == [("mirror.example:5000/corp-team/app:1", False)]
    other = registries_conf.pull_sources(parse_image_name("corp.example/teammate/app:1"), entries)
    assert [(str(s.name), s.insecure) for s in other] == [("corp.example/teammate/app:1", True)]
    wild = registries_conf.pull_sources(parse_image_name("reg.internal.example/a/b@sha256:" + "a" * 64), entries)
    assert [(str(s.name), s.mirror) for s in wild] == [
        ("cache.example/int/a/b@sha256:" + "a" * 64, True),
        ("reg.internal.example/a/b@sha256:" + "a" * 64, False),
    ]
    hub = registries_conf.pull_sources(parse_image_name("busybox:1"), entries)
    assert [str(s.name) for s in hub] == ["hub-cache.example/library/busybox:1"]
    assert registries_conf.push_insecure(parse_image_name("corp.example/x/y:1"), entries)
    assert not registries_conf.push_insecure(parse_image_name("other.example/x/y:1"), entries)


def test_v1_lists_count_and_a_later_entry_of_the_same_prefix_replaces_one(tmp_path: Path) -> None:
    entries = conf_entries(
        tmp_path,
        '[registries.insecure]\nregistries = ["old.example:5000"]\n'
        '[registries.block]\nregistries = ["bad.example"]\n'
        '[[registry]]\nlocation = "old.example:5000"\ninsecure = false\n',
    )
    assert not registries_conf.push_insecure(parse_image_name("old.example:5000/a/b:1"), entries)
    with pytest.raises(registries_conf.ConfRefused, match="blocked"):
        registries_conf.pull_sources(parse_image_name("bad.example/a/b:1"), entries)


@pytest.mark.parametrize(
    "text",
    [
        '[[registry]]\nprefix = "x.example"\ninsecure = "yes"\n',
        '[[registry]]\nprefix = "x.example"\n[[registry.mirror]]\nlocation = "m.example"\n'
        'pull-from-mirror = "sometimes"\n',
        "[[registry]]\ninsecure = true\n",
        'registry = "x"\n',
    ],
)
def test_malformed_entries_are_one_line_naming_the_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(registries_conf.ConfRefused, match=r"registries\.conf'"):
        conf_entries(tmp_path, text)
