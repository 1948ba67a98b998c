# syntax=docker/dockerfile:1
#
# One image for every process of the platform: the five services and the gateway.
# The process is chosen by the command (docker-compose.yml `command:`, or the Kubernetes
# container `args:`); without one the image runs the gateway.
#
#   docker build -t retail-scrm .
#   docker run --rm retail-scrm uvicorn --factory services.coupon.main:create_app \
#       --host 0.0.0.0 --port 8104

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve nothing, install exactly what uv.lock says -------------------------
FROM ${PYTHON_IMAGE} AS builder

# uv comes from PyPI through pip, pinned to the version that writes this uv.lock format.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /app
COPY pyproject.toml uv.lock ./
# --frozen: install the lock as committed, never re-resolve. The dev group (tests, linters)
# and the embedded group (local broker and store for laptops and CI) stay out of production.
# `package = false`: the project itself is not installed; the code runs from /app.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-group embedded

# --- runtime: the interpreter, the virtualenv and the code, nothing else ----------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="retail-scrm" \
      org.opencontainers.image.description="Retail customer platform: services and API gateway"

ENV PATH=/app/.venv/bin:$PATH \
    VIRTUAL_ENV=/app/.venv \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /app/.venv /app/.venv
COPY servicekit/ servicekit/
COPY contracts/ contracts/
COPY services/ services/
COPY gateway/ gateway/
# Compiled once here, as root, so a read-only container does not recompile on every start.
# The files stay owned by root: the app user can read the code but not change it.
RUN python -m compileall -q -j 0 servicekit contracts services gateway

USER 10001:10001

EXPOSE 8080 8101 8102 8103 8104 8105

# Liveness only (readiness, /readyz, is for orchestrators). The port is read from the
# running command line (`--port N`, also under `init: true`), so the same check fits
# every service; without one it is the gateway's 8080.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; a = open('/proc/1/cmdline', 'rb').read().split(b'\\0'); p = a[a.index(b'--port') + 1].decode() if b'--port' in a else '8080'; u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4)"]

CMD ["uvicorn", "--factory", "gateway.main:create_app", "--host", "0.0.0.0", "--port", "8080"]
