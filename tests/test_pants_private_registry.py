"""`pants publish` and a remote_oci_image base against a private registry as companies run one
(issue 34): HTTPS from a private CA in ``/etc/containers/certs.d``, under a host name, with the
login of a rootless ``podman login`` (``$XDG_RUNTIME_DIR/containers/auth.json``); and with mutual
TLS, the CA and client certificate in ``/etc/docker/certs.d`` and root's ``podman login``
(``/run/containers/0/auth.json``). Pants runs in
a mount namespace of its own (``tests/private_registry_support.py``). The processes that talk
to the registry see ``[layerforge].registry_env_vars``; none of it enters a cache key (a second
run with other values rebuilds nothing), and no secret reaches Pants' output."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import image_parts
from tests.pants_support import PantsRepo
from tests.private_registry_support import USER, PrivateRegistry, auth_json, busybox_image
from tests.push_support import SECRET

BUILD = """
remote_oci_image(name="base", image="{name}/team/app:1@{digest}")
oci_image_index(name="idx", images=[":base"], repository="team/idx", image_tags=["1"], registries=["@corp"])
"""


def test_publish_and_a_remote_base_with_certs_d_and_a_rootless_podman_login(tmp_path: Path) -> None:
    reg = PrivateRegistry(tmp_path / "private", {USER: SECRET}).start()
    try:
        reg.trust_in("/etc/containers/certs.d")
        run_dir = tmp_path / "xdg-run"
        (run_dir / "containers").mkdir(parents=True)
        (run_dir / "containers" / "auth.json").write_text(auth_json(reg.name, USER, SECRET))
        home = tmp_path / "home"
        home.mkdir()
        client_env = {
            k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "SSL_CERT_FILE")
        }
        client_env.update(XDG_RUNTIME_DIR=str(run_dir), HOME=str(home), LAYERFORGE_CACHE_DIR=str(tmp_path / "cache"))
        src = busybox_image(tmp_path)
        pushed = reg.mounts.layerforge("push", f"{src}:v1", f"{reg.name}/team/app:1", env=client_env)
        assert pushed.returncode == 0, pushed.stderr
        digest = image_parts(src, "v1")[0]["digest"]

        repo = PantsRepo(tmp_path / "repo", extra_toml=f'[layerforge.registries.corp]\naddress = "{reg.name}"\n')
        repo.write("images/BUILD", BUILD.format(name=reg.name, digest=digest))

        scripts: dict[str, str] = {}

        def pants(*args: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
            proc = repo.run(*args, env={**client_env, **extra}, wrap=reg.mounts.argv, scripts=scripts)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert SECRET not in proc.stdout + proc.stderr
            return proc

        published = pants("publish", "images:idx", extra={})
        ran = PantsRepo.executed(published, ("Pull ",))
        assert f"{reg.name}/team/idx:1 published" in published.stdout + published.stderr, published.stderr
        assert any(r.endswith("(with the registry's login and trust)") for r in ran), ran
        # The processes that talk to the registry see where logins and CAs are; no cacheable one does.
        ours = {d: script for d, script in scripts.items() if d.startswith(("Pull ", "Package "))}
        assert len(ours) == 3, list(ours)
        for description, script in ours.items():
            uncached = description.endswith("(with the registry's login and trust)")
            assert (f"XDG_RUNTIME_DIR={run_dir}" in script) == uncached, script
            for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
                assert uncached or f"{name}=" not in script, script
            assert SECRET not in script
        inspected = reg.mounts.layerforge("inspect", f"{reg.name}/team/idx:1", "--json", env=client_env)
        assert inspected.returncode == 0, inspected.stderr
        assert [m["digest"] for m in json.loads(inspected.stdout)["manifests"]] == [digest]

        # Other values of registry variables: only what runs with the same values runs again (the
        # uncached pull; what is cached on its output is answered by the cache). Not SSL_CERT_*:
        # Pants keys its own PEX builds by them ([subprocess-environment].env_vars).
        same = PantsRepo.executed(pants("package", "images:idx", extra={}), ("",))
        other = {"REGISTRY_AUTH_FILE": str(tmp_path / "none.json"), "DOCKER_CONFIG": str(tmp_path / "none")}
        again = PantsRepo.executed(pants("package", "images:idx", extra=other), ("",))
        assert again == same, "\n".join(again) + "\n--- with the same values:\n" + "\n".join(same)
        assert "Package the image index images:idx" not in again
    finally:
        reg.stop()


def test_publish_and_a_remote_base_with_mutual_tls_from_docker_certs_d_and_roots_podman_login(tmp_path: Path) -> None:
    reg = PrivateRegistry(tmp_path / "private", {USER: SECRET}, mtls=True).start()
    try:
        reg.client_certificate("/etc/docker/certs.d")
        reg.mounts.path(f"/run/containers/{os.getuid()}/auth.json").write_text(auth_json(reg.name, USER, SECRET))
        home = tmp_path / "home"
        home.mkdir()
        dropped = ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "SSL_CERT_FILE", "XDG_RUNTIME_DIR")
        client_env = {k: v for k, v in os.environ.items() if k not in dropped}
        client_env.update(HOME=str(home), LAYERFORGE_CACHE_DIR=str(tmp_path / "cache"))
        src = busybox_image(tmp_path)
        pushed = reg.mounts.layerforge("push", f"{src}:v1", f"{reg.name}/team/app:1", env=client_env)
        assert pushed.returncode == 0, pushed.stderr
        digest = image_parts(src, "v1")[0]["digest"]
        repo = PantsRepo(tmp_path / "repo", extra_toml=f'[layerforge.registries.corp]\naddress = "{reg.name}"\n')
        repo.write("images/BUILD", BUILD.format(name=reg.name, digest=digest))
        published = repo.run("publish", "images:idx", env=client_env, wrap=reg.mounts.argv)
        text = published.stdout + published.stderr
        assert published.returncode == 0 and f"{reg.name}/team/idx:1 published" in text, text
        assert SECRET not in text
        inspected = reg.mounts.layerforge("inspect", f"{reg.name}/team/idx:1", "--json", env=client_env)
        assert inspected.returncode == 0, inspected.stderr
        assert [m["digest"] for m in json.loads(inspected.stdout)["manifests"]] == [digest]
    finally:
        reg.stop()
