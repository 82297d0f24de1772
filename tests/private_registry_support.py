"""A private registry as companies run one: docker-registry serving HTTPS with a certificate
from a private CA, under a host name (not loopback), with htpasswd logins, optionally asking
for client certificates (mutual TLS).

The host name, certs.d directories and root's ``/run/containers/0/auth.json`` exist only for
the commands a test runs through :meth:`PrivateMounts.argv`: each runs in a mount namespace of
its own (``unshare -m``) where ``/etc/hosts`` is a copy naming the registry and
``/etc/containers``, ``/etc/docker`` and ``/run`` are overlays whose upper layers the test
fills. Nothing on the machine changes; the registry itself listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from layerforge._native import LayerSpec
from layerforge.layers.build import build_layers
from layerforge.layout.image_writer import write_image
from layerforge.layout.oci_layout import open_for_write
from layerforge.model.image_config import ImageConfig
from layerforge.model.platform import Platform
from tests.helpers import layerforge_bin
from tests.push_support import SECRET
from tests.registry_support import Registry

HOST = "registry.corp.test"
USER = "alice"
MARKER = "hello-from-the-private-registry"
#: The overlays of a namespace: what the test may add files under.
OVERLAID = ("/etc/containers", "/etc/docker", "/run")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class PrivateCA:
    """A certificate authority of the test's own; ``issue`` writes a certificate and key."""

    def __init__(self, root: Path, name: str = "Corp test CA") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.bundle = root / "ca.pem"
        self.bundle.write_bytes(self.pem)

    def issue(self, name: str, *, client: bool = False, dns: Sequence[str] = ()) -> tuple[Path, Path]:
        """(certificate, key) files for ``name``: a server certificate for the ``dns`` names,
        or a client certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if dns:
            names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.root / f"{name}.pem", self.root / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return cert_path, key_path


class PrivateMounts:
    """A private ``/etc/hosts`` naming ``hosts`` (name -> address) and overlays on
    :data:`OVERLAID`, for the commands :meth:`argv` wraps."""

    def __init__(self, root: Path, hosts: Mapping[str, str]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.hosts = root / "hosts"
        extra = "".join(f"{address} {name}\n" for name, address in hosts.items())
        self.hosts.write_text(Path("/etc/hosts").read_text() + extra)

    def _layer(self, target: str) -> tuple[Path, Path]:
        name = target.strip("/").replace("/", "-")
        upper, work = self.root / "upper" / name, self.root / "work" / name
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        return upper, work

    def path(self, target: str) -> Path:
        """Where to write what the namespace shows at ``target`` (under one of :data:`OVERLAID`);
        its parent directories are created."""
        top = next(t for t in OVERLAID if target.startswith(t + "/"))
        place = self._layer(top)[0] / target[len(top) + 1 :]
        place.parent.mkdir(parents=True, exist_ok=True)
        return place

    def argv(self, *command: str | os.PathLike[str]) -> list[str]:
        steps = [f"mount --bind {shlex.quote(str(self.hosts))} /etc/hosts"]
        for target in OVERLAID:
            upper, work = self._layer(target)
            steps.append(f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}")
        script = "set -e; " + "; ".join(steps) + '; exec "$@"'
        return ["unshare", "-m", "--propagation", "private", "--", "sh", "-c", script, "sh", *map(str, command)]

    def run(
        self, *command: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
        )

    def layerforge(
        self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(layerforge_bin(), *args, env=env)


def auth_json(registry: str, user: str, password: str) -> str:
    """An auth.json (containers-auth.json(5)) holding one login, as ``podman login`` writes it."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": auth}}})


class PrivateRegistry:
    """docker-registry on 127.0.0.1 serving HTTPS for :data:`HOST` (a certificate of ``ca``),
    with htpasswd ``users``; with ``mtls``, only for clients holding a certificate of ``ca``."""

    def __init__(self, root: Path, users: Mapping[str, str], *, mtls: bool = False) -> None:
        self.ca = PrivateCA(root / "ca")
        cert = self.ca.issue("server", dns=[HOST])
        self.registry = Registry(
            root / "registry", auth="htpasswd", users=dict(users), tls=cert, client_ca=self.ca.bundle if mtls else None
        )
        self.mounts = PrivateMounts(root / "ns", {HOST: "127.0.0.1"})

    @property
    def name(self) -> str:
        return f"{HOST}:{self.registry.port}"

    def start(self) -> PrivateRegistry:
        self.registry.start()
        return self

    def stop(self) -> None:
        self.registry.stop()

    def trust_in(self, certs_root: str) -> Path:
        """Put the CA in ``certs_root``/HOST:PORT/ca.crt (``/etc/containers/certs.d`` and
        ``/etc/docker/certs.d`` in the namespace's overlays; any other path as it is)."""
        target = f"{certs_root}/{self.name}/ca.crt"
        place = self.mounts.path(target) if target.startswith(OVERLAID) else Path(target)
        place.parent.mkdir(parents=True, exist_ok=True)
        place.write_bytes(self.ca.pem)
        return place

    def client_certificate(self, certs_root: str) -> None:
        """A client certificate of the CA beside the CA in ``certs_root``/HOST:PORT/."""
        cert, key = self.ca.issue("client", client=True)
        place = self.trust_in(certs_root).parent
        (place / "client.cert").write_bytes(cert.read_bytes())
        (place / "client.key").write_bytes(key.read_bytes())


def busybox_image(root: Path) -> Path:
    """A layout whose image ``v1`` runs busybox: ``echo`` prints :data:`MARKER`."""
    spec = LayerSpec()
    spec.add_file("/bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755)
    layout_dir = root / "layout"
    with open_for_write(layout_dir) as layout:
        built = build_layers(layout, [spec])
        config = ImageConfig(Platform("amd64", "linux"), "1970-01-01T00:00:01Z", tuple(b.diff_id for b in built))
        write_image(layout, config, [b.descriptor for b in built], annotations={}, ref="v1")
    return layout_dir


def login_file(path: Path, reg: PrivateRegistry, password: str = SECRET) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(auth_json(reg.name, USER, password))


def assert_hidden(proc: subprocess.CompletedProcess[str]) -> None:
    text = proc.stdout + proc.stderr
    assert SECRET not in text and base64.b64encode(f"{USER}:{SECRET}".encode()).decode() not in text


def one_line(proc: subprocess.CompletedProcess[str], command: str = "push") -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"layerforge {command}: error: "), proc.stderr
    assert_hidden(proc)
    return lines[0]
