# One reusable grading image for every assignment of the course (the rubrics, references and
# templates are inside the package). Build:
#   docker build -t mlp-grader .
#   docker build -t mlp-grader --build-arg FETCH_DATA=mnist,cifar100 .   # datasets baked in
#   docker build -t mlp-grader --build-arg WHEELHOUSE=wheelhouse .       # offline: no package index
# Run (see docs/ta-guide.md, "Docker"):
#   docker run --rm --network none --memory 4g -v "$PWD/submissions:/submissions:ro" \
#       -v "$PWD/out:/out" -v mlp-grader-cache:/cache mlp-grader grade /submissions --out /out
# (/cache: the reference's outputs, kept between runs in the named volume; without it every
# `docker run --rm` computes them again)
FROM python:3.11-slim

# Comma-separated datasets to download at build time (mnist, cifar100); empty: none. At run
# time the container has no network, so a dataset that is not baked in is not available
# (pset4 then says so and uses its offline stand-in; --dataset mnist refuses to).
ARG FETCH_DATA=""
# A folder of wheels inside the build context (`pip wheel --wheel-dir wheelhouse . setuptools`
# on a machine with the index): the package is then installed from it alone, with no index, as
# on a cluster without internet. Empty: the usual online `pip install`.
ARG WHEELHOUSE=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLP_GRADER_DATA=/opt/mlp-grader/data \
    MLP_GRADER_CACHE=/cache \
    MPLCONFIGDIR=/tmp/matplotlib

# bubblewrap: the strongest sandbox level, when the container runtime allows user namespaces
# (`mlp-grader doctor` says). Under Docker's default seccomp profile it does not, and the
# landlock level is used (no package needed: Linux 5.13+, Docker 23+); the process level only
# where the kernel has no Landlock. Every report names the level and what it does not stop.
# Versions float with the Debian release of the base image, on purpose.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY grader ./grader
COPY grader_course ./grader_course
COPY reference ./reference
COPY rubrics ./rubrics
COPY student_template ./student_template
# The build context is mounted (not copied) so that a wheelhouse never ends up in a layer.
RUN --mount=type=bind,target=/context \
    if [ -n "$WHEELHOUSE" ]; then \
        pip install --no-cache-dir --no-index --find-links "/context/$WHEELHOUSE" . ; \
    else \
        pip install --no-cache-dir . ; \
    fi \
    && rm -rf /src \
    && useradd --create-home --uid 10001 --user-group grader \
    && mkdir -p /opt/mlp-grader/data /cache \
    && chown grader /opt/mlp-grader/data /cache

# Non-root (numeric, so `docker run --user` and Kubernetes can check it); `--user "$(id -u)"`
# works too, for an output folder owned by the host user: the data folder is world-readable.
USER 10001
WORKDIR /home/grader
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The download caches (OpenML's, CIFAR's archive) are dropped: only the prepared files stay.
RUN for name in ${FETCH_DATA//,/ }; do mlp-grader data fetch "$name"; done \
    && rm -rf /opt/mlp-grader/data/openml /opt/mlp-grader/data/cifar-100-python.tar.gz \
    && chmod -R a+rX /opt/mlp-grader/data

ENTRYPOINT ["mlp-grader"]
CMD ["--help"]
