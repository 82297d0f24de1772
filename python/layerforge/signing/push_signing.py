"""What ``push`` does with signatures once the image is in the registry: the cosign objects
the layout holds (``layerforge sign``/``attest``) join the registry's under the image's
``sha256-<hex>.sig``/``.att`` tags; with ``--sign-key``, each manifest and index pushed is
signed there, and the image attested with the provenance and SBOMs its layout holds."""

from __future__ import annotations

from layerforge._native import SigningKey
from layerforge.errors import LayerforgeError
from layerforge.layout.oci_layout import OciLayout
from layerforge.registry.client import RegistryClient
from layerforge.registry.push import PushResult
from layerforge.signing.cosign_objects import kind_of
from layerforge.signing.registry_store import RegistryStore
from layerforge.signing.sign import Signed, add_layers, attest, sign
from layerforge.signing.statements import layout_statements


def sign_pushed(
    layout: OciLayout, client: RegistryClient, result: PushResult, key: SigningKey, source_revision: str | None
) -> list[Signed]:
    store = RegistryStore(client, result.target.repository)
    repository = f"{result.target.registry}/{result.target.repository}"
    out = sign(store, result.manifests, repository, key)
    for subject in result.manifests:
        statements = layout_statements(layout, repository, subject.digest, source_revision)
        if statements:
            out.append(attest(store, subject, statements, key))
    return out


def push_cosign_objects(layout: OciLayout, client: RegistryClient, result: PushResult) -> list[Signed]:
    store = RegistryStore(client, result.target.repository)
    out = []
    for artifact in result.cosign_objects:
        kind = kind_of(artifact.artifact_type)
        assert kind is not None
        manifest = layout.read_manifest(artifact)
        if manifest.subject is None:
            raise LayerforgeError(f"{layout.where(artifact, 'manifest')}: a {kind.suffix} object without a subject")
        layers = [(d, layout.read_blob(d.digest, d.size)) for d in manifest.layers]
        out.append(add_layers(store, kind, manifest.subject, layers))
    return out
