# facerec as a container image (README.md, "Deployment"):
#
#   docker build -t facerec .                                    # CPU (the default)
#   docker build --build-arg TORCH_VARIANT=cuda -t facerec:cuda .  # NVIDIA GPUs
#
# Stages: `build` installs the locked packages into /app/.venv, `models` fetches and verifies
# the VGGFace2 weights, `runtime` is what ships: the venv, the source, the weights, a non-root
# user. Nothing of uv, its cache or the build context's other files reaches the last stage.

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=trixie
# The release asset facerec downloads by default (app/config.py). Point WEIGHTS_URL at a mirror
# for builds without GitHub; other weights of the same architecture need their WEIGHTS_SHA256.
ARG WEIGHTS_URL=https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt
ARG WEIGHTS_SHA256=281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b
# Or weights supplied with the build, not downloaded: an image holding 20180402-114759-vggface2.pt
# at its root (README.md, "Weights in the image"). The default, the base image, holds no such file.
ARG WEIGHTS_IMAGE=python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}

# uv, pinned to the version that writes uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Weights supplied with the build instead of downloaded: WEIGHTS_IMAGE (any Docker with BuildKit),
# or with buildx `--build-context weights=DIR`, where DIR holds 20180402-114759-vggface2.pt, which
# replaces this stage. Without either it has no such file, and the `models` stage downloads it.
FROM ${WEIGHTS_IMAGE} AS weights

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
# cpu: torch and torchvision from PyTorch's CPU wheel index, no CUDA libraries (~1 GB image).
# cuda: exactly the lock, whose PyPI torch is the CUDA 13 build (~6 GB image; NVIDIA driver >= 580).
ARG TORCH_VARIANT=cpu
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:${PATH}
# VIRTUAL_ENV makes every `uv pip` install into the venv (UV_PYTHON would send them to the base
# image's Python instead). bash for pipefail, arrays and here-strings; SHELL follows the stage's
# ARG and ENV lines because hadolint 2.15 lints the RUNs after a later ARG or ENV as POSIX sh.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=uv /uv /usr/local/bin/uv
WORKDIR /app

# Third-party packages first, so that their layer survives code changes. Every version comes from
# uv.lock through `uv sync --frozen` (no re-resolution, hashes checked), with one exception for
# TORCH_VARIANT=cpu: PyPI's Linux torch wheel is the CUDA build, and swapping it in the lock (a
# [tool.uv.sources] index with markers) would change the environment every developer and CI test
# with. So the CPU build installs torch and torchvision *of the locked versions* from PyTorch's
# CPU index, and `uv sync` installs everything else from the lock, skipping torch, torchvision and
# the CUDA-only wheels (nvidia-*, cuda-*, triton) that only the CUDA build needs.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    no_install=() \
    && case "${TORCH_VARIANT}" in \
        cuda) ;; \
        cpu) \
            locked="$(uv export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate)" \
            && mapfile -t no_install < <(grep -oE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)==' <<<"${locked}" \
                | sed -E 's/^(.*)==$/--no-install-package=\1/') \
            && uv venv "${VIRTUAL_ENV}" \
            && uv pip install --no-deps --index-url https://download.pytorch.org/whl/cpu \
                "$(grep -E '^torch==' <<<"${locked}")" "$(grep -E '^torchvision==' <<<"${locked}")" ;; \
        *) echo "TORCH_VARIANT must be cpu or cuda, not '${TORCH_VARIANT}'" >&2; exit 1 ;; \
    esac \
    && uv sync --frozen --no-dev --no-install-project --inexact "${no_install[@]}" \
    && python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'CUDA', torch.version.cuda); assert (torch.version.cuda is None) == ('${TORCH_VARIANT}' == 'cpu')"

# The project itself, editable: app/db/session.py finds the alembic migrations beside the
# source tree (/app/migrations), which a wheel in site-packages would not carry.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps --editable . \
    && python -m compileall -q app migrations

FROM build AS models
ARG WEIGHTS_URL
ARG WEIGHTS_SHA256
ENV FACEREC_WEIGHTS_URL=${WEIGHTS_URL} \
    FACEREC_WEIGHTS_SHA256=${WEIGHTS_SHA256} \
    FACEREC_WEIGHTS_PATH=/models/20180402-114759-vggface2.pt \
    FACEREC_MODEL_DIR=/models \
    FACEREC_ALLOW_DOWNLOAD=false \
    FACEREC_DEVICE=cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# `facerec models fetch` downloads to a temporary file and keeps it only if its SHA-256 matches
# (a supplied file is checked the same way); the download is cached across builds per hash. Then
# the service's own start-up path (hash check, torch.load(weights_only=True), strict
# load_state_dict, MTCNN) must load it, or the build fails here rather than the container later.
# Loading also exports the ONNX Runtime models (embedder, MTCNN) to /models/onnx, checked against
# torch: the image carries them, so a container starts without re-exporting (about 35 s).
RUN --mount=type=cache,target=/root/.cache/facerec-weights \
    --mount=type=bind,from=weights,target=/weights-supplied \
    if [ -f /weights-supplied/20180402-114759-vggface2.pt ]; then \
        source_dir=/weights-supplied; \
    else \
        source_dir="/root/.cache/facerec-weights/${WEIGHTS_SHA256}"; \
    fi \
    && facerec models fetch --dest "${source_dir}" \
    && install -D -m 0644 "${source_dir}/20180402-114759-vggface2.pt" /models/20180402-114759-vggface2.pt \
    && facerec models prepare

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
ARG WEIGHTS_SHA256
RUN groupadd --system --gid 10001 facerec \
    && useradd --system --uid 10001 --gid facerec --create-home --home-dir /home/facerec \
        --shell /usr/sbin/nologin facerec
# Owned by root and read-only to the service user: the service writes nothing to its own files.
COPY --from=build /app /app
COPY --from=models /models /models
ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    FACEREC_HOST=0.0.0.0 \
    FACEREC_PORT=8000 \
    FACEREC_WEIGHTS_PATH=/models/20180402-114759-vggface2.pt \
    FACEREC_WEIGHTS_SHA256=${WEIGHTS_SHA256} \
    FACEREC_MODEL_DIR=/models \
    FACEREC_ALLOW_DOWNLOAD=false
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# /readyz: the model is loaded, the database reachable and the schema current (503 otherwise).
# The slim image has no curl; the venv's Python does the request, and HTTP errors exit non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FACEREC_PORT', '8000'), timeout=4)"]
CMD ["facerec", "serve"]
