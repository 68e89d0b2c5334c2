# syntax=docker/dockerfile:1
#
# One image for every ClipMix process. The default command runs the public
# gateway; the same image runs any other service by command, e.g.
#   docker run clipmix:local python -m services.jobs
#   docker run clipmix:local python -m services.runtime.migrate
#   docker run clipmix:local clipmix-admin keys revoke KEY_ID
#
# Build from the repository root:  docker build -t clipmix:local .

ARG PYTHON_IMAGE=python:3.11-slim

# --- build stage: install the project and its pinned dependencies into a venv
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/clipmix
ENV PATH=/opt/clipmix/bin:$PATH

WORKDIR /src
# Pinned dependencies first, in their own layer, so a code-only change reuses it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (console scripts such as clipmix-admin, SQL migrations as package data).
COPY services ./services
RUN pip install --no-deps . \
 && pip check

# --- runtime stage: the venv only, no build tools, no source tree, non-root
FROM ${PYTHON_IMAGE} AS runtime

ARG CLIPMIX_UID=10001
RUN groupadd --system --gid ${CLIPMIX_UID} clipmix \
 && useradd --system --uid ${CLIPMIX_UID} --gid clipmix \
      --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin clipmix

COPY --from=build /opt/clipmix /opt/clipmix

ENV PATH=/opt/clipmix/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLIPMIX_HOST=0.0.0.0

# Run from a directory without the source tree so `python -m services.*`
# always imports the installed package.
WORKDIR /tmp
# The jobs service's result store (CLIPMIX_JOBS_ARTIFACT_DIR in deploy/): owned by the service user,
# so a fresh named volume mounted here starts with the right owner.
RUN mkdir -p /var/lib/clipmix/artifacts && chown ${CLIPMIX_UID}:${CLIPMIX_UID} /var/lib/clipmix/artifacts
USER ${CLIPMIX_UID}:${CLIPMIX_UID}

# gateway, jobs, billing, webhooks, status, provider simulator (each process uses one of these)
EXPOSE 8080 8081 8082 8083 8084 8090

# Services handle SIGTERM themselves (graceful shutdown); orchestrators send it first.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "services.gateway"]
