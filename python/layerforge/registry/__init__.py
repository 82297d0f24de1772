"""An OCI distribution-spec registry client: references, credentials, authentication, a
retrying HTTP transport, blob and manifest operations, and the push of a layout's images."""
