# One image for the receiver (`lazarus serve`) and the worker (`lazarus worker`).
# The install steps are the ones `make venv` runs: a venv with the package from pyproject.toml.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY receiver ./receiver
RUN python -m venv /opt/lazarus \
 && /opt/lazarus/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/lazarus/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
# Mount points exist in the image, owned by lazarus, so that fresh volumes are writable by it
# (deploy/compose.yaml: lab state, the webhook token; the metrics dir is a tmpfs or emptyDir).
RUN useradd --system --uid 10001 --home-dir /var/lib/lazarus lazarus \
 && mkdir -p /var/lib/lazarus/lab /run/lazarus/metrics /run/lazarus/token \
 && chown -R lazarus /var/lib/lazarus /run/lazarus
COPY --from=build /opt/lazarus /opt/lazarus
ENV PATH=/opt/lazarus/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LAZARUS_SERVE__BIND=0.0.0.0:8080 \
    PROMETHEUS_MULTIPROC_DIR=/run/lazarus/metrics
USER lazarus
EXPOSE 8080
# `lazarus serve` wipes PROMETHEUS_MULTIPROC_DIR at start; `lazarus worker` does not use it.
ENTRYPOINT ["lazarus"]
CMD ["serve"]
