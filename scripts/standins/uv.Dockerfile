# Test stand-in for ghcr.io/astral-sh/uv:<version> (scripts/standin-images): the uv and uvx
# binaries of the same version, from its PyPI wheel, at /uv and /uvx as in the official image.
FROM scratch
COPY uv uvx /
ENTRYPOINT ["/uv"]
