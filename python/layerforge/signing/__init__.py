"""Supply chain: cosign-format signatures and in-toto attestations of images, in a layout
or a registry (keys, payloads, DSSE envelopes, the cosign objects, where they are stored,
signing, attesting and verifying)."""
