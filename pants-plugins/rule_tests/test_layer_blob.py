"""How the package rule of nix_oci_image takes a layer's blob from the layer process's output
into the image without copying it (nix/package.py: layer_blob): only one blob, named by the
sha256 of its bytes, as the layer's layer.json describes it. A layer output that is not so (a
corrupt or hostile cache entry) is refused, naming the process; a good one gives an entry
whose path is made from the blob's own digest."""

from __future__ import annotations

import hashlib
import json

import pytest
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, DigestContents, DigestEntries, Directory, FileContent, FileDigest, FileEntry

from layerforge_pants.goals.tool import LayerforgeProcess
from layerforge_pants.nix.package import LayerOutputInvalid, layer_blob, layer_blobs, listed_layers, unique_blobs

ADDRESS = Address("app", target_name="img")
OUT = "layer-0"
REQUEST = LayerforgeProcess(
    argv=("nix-layer", "--out", OUT), description=f"Build layer 1/2 of {ADDRESS}", input_digest=EMPTY_DIGEST,
    output_directories=(OUT,),
)  # fmt: skip
BLOB = b"layer bytes"
HEX = hashlib.sha256(BLOB).hexdigest()
DIGEST = FileDigest(HEX, len(BLOB))


def layer_json(digest: str = f"sha256:{HEX}", size: int = len(BLOB)) -> bytes:
    doc = {"descriptor": {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}}
    return json.dumps({**doc, "diffId": "sha256:" + "0" * 64, "uncompressedSize": 20}).encode()


def contents(content: bytes | None) -> DigestContents:
    """The layer.json subset's contents, as the rule reads them (None: the output has none)."""
    return DigestContents([] if content is None else [FileContent(f"{OUT}/layer.json", content)])


def entries(*files: tuple[str, FileDigest]) -> DigestEntries:
    meta = FileDigest(hashlib.sha256(layer_json()).hexdigest(), len(layer_json()))
    listed = [Directory(OUT), Directory(f"{OUT}/blobs"), FileEntry(f"{OUT}/layer.json", meta)]
    return DigestEntries([*listed, *(FileEntry(path, digest) for path, digest in files)])


def test_a_good_layer_output_gives_its_blob_under_the_layout_by_its_own_digest() -> None:
    blob = layer_blob(entries((f"{OUT}/blobs/sha256/{HEX}", DIGEST)), contents(layer_json()), REQUEST, OUT, "dist/img")
    assert blob == FileEntry(f"dist/img/blobs/sha256/{HEX}", DIGEST)


def test_a_batch_gives_the_blob_of_each_of_its_layer_directories_by_its_own_json() -> None:
    """A process building a batch writes one layer directory per layer: each directory's blob
    is checked against that directory's layer.json, not a neighbour's."""
    other = b"other layer"
    other_hex = hashlib.sha256(other).hexdigest()
    other_digest = FileDigest(other_hex, len(other))
    request = LayerforgeProcess(
        argv=("nix-layer",), description=f"Build layers 1-2/3 of {ADDRESS}", input_digest=EMPTY_DIGEST,
        output_directories=("layer1", "layer10"),
    )  # fmt: skip
    files = DigestEntries([FileEntry(f"layer1/blobs/sha256/{HEX}", DIGEST),
                           FileEntry(f"layer10/blobs/sha256/{other_hex}", other_digest)])  # fmt: skip
    metas = DigestContents([FileContent("layer10/layer.json", layer_json(f"sha256:{other_hex}", len(other))),
                            FileContent("layer1/layer.json", layer_json())])  # fmt: skip
    assert layer_blobs(files, metas, request, "dist/img") == [
        FileEntry(f"dist/img/blobs/sha256/{HEX}", DIGEST), FileEntry(f"dist/img/blobs/sha256/{other_hex}", other_digest)
    ]  # fmt: skip
    swapped = DigestContents([FileContent("layer1/layer.json", layer_json(f"sha256:{other_hex}", len(other))),
                              FileContent("layer10/layer.json", layer_json())])  # fmt: skip
    with pytest.raises(LayerOutputInvalid, match=r"^Build layers 1-2/3 of app:img gave a bad layer directory layer1/"):
        layer_blobs(files, swapped, request, "dist/img")


@pytest.mark.parametrize(
    "files, meta, why",
    [
        ((), layer_json(), "0 blobs under blobs/, not 1"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST), (f"{OUT}/blobs/sha256/{'1' * 64}", DIGEST)), layer_json(), "2 blobs"),
        (((f"{OUT}/blobs/sha256/{'1' * 64}", DIGEST),), layer_json(), f"holds bytes of digest sha256:{HEX}"),
        (((f"{OUT}/blobs/sha512/{HEX}", DIGEST),), layer_json(), f"holds bytes of digest sha256:{HEX}"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST),), layer_json(digest="sha256:" + "2" * 64), "describes sha256:222"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST),), layer_json(size=len(BLOB) + 1), f"({len(BLOB) + 1} bytes)"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST),), None, "layer.json does not describe a layer"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST),), b"", "layer.json does not describe a layer"),
        (((f"{OUT}/blobs/sha256/{HEX}", DIGEST),), b'{"descriptor": {}}', "layer.json does not describe a layer"),
    ],
)
def test_a_bad_layer_output_is_refused_naming_the_process(
    files: tuple[tuple[str, FileDigest], ...], meta: bytes | None, why: str
) -> None:
    with pytest.raises(LayerOutputInvalid) as e:
        layer_blob(entries(*files), contents(meta), REQUEST, OUT, "dist/img")
    message = str(e.value)
    assert message.startswith(f"Build layer 1/2 of {ADDRESS} gave a bad layer directory {OUT}/: ")
    assert why in message and "\n" not in message


def test_two_layers_of_the_same_bytes_are_one_blob() -> None:
    one = FileEntry(f"dist/img/blobs/sha256/{HEX}", DIGEST)
    other = FileEntry("dist/img/blobs/sha256/" + "3" * 64, FileDigest("3" * 64, 5))
    assert unique_blobs([one, other, one]) == [one, other]


def test_the_record_reads_the_contents_of_layers_that_have_them_and_the_blobs_of_the_others() -> None:
    """nix/package.py: listed_layers: a layer directory with a contents.json goes to the build
    record as a --layer-dir (under its l<i>/ prefix), the blob of one without (a layer process
    of an older tool) goes into the record's input."""
    two = LayerforgeProcess(
        argv=("nix-layer",), description="Build layers 2-3/3", input_digest=EMPTY_DIGEST, output_directories=("a", "b")
    )
    blobs = [
        [FileEntry("dist/img/blobs/sha256/1", DIGEST)],
        [FileEntry(f"dist/img/blobs/sha256/{n}", DIGEST) for n in "23"],
    ]
    metas = [
        DigestContents([FileContent(f"{OUT}/layer.json", b""), FileContent(f"{OUT}/contents.json", b"")]),
        DigestContents(
            [FileContent("a/layer.json", b""), FileContent("b/layer.json", b""), FileContent("b/contents.json", b"")]
        ),
    ]
    args, unlisted = listed_layers(metas, [REQUEST, two], blobs)
    assert args == (f"--layer-dir=l0/{OUT}", "--layer-dir=l1/b")
    assert unlisted == [blobs[1][0]]
