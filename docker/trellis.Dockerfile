# trellis itself, for Ray workers (a head and workers, `docker/compose.yml`) and Kubernetes (KubeRay,
# `docker/kuberay.yaml`): Debian's Python 3.11, bubblewrap for the sandbox, git, trellis with the ray
# and docker extras in /opt/trellis; it runs as the user `trellis` (uid 1000), not as root.
#
#   docker build -f docker/trellis.Dockerfile -t trellis .
#   docker run --rm --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       --security-opt systempaths=unconfined trellis trellis tasks solve reverse_string
#
# bubblewrap needs user namespaces and its own /proc inside the container: the three options above
# (Podman: `--security-opt seccomp=unconfined --security-opt unmask=ALL`), or in Kubernetes a pod whose
# container is unconfined the same way (docker/kuberay.yaml). Without them use `--sandbox docker`
# from a machine with an engine, or run the worker privileged.
#
# BASE is any Debian bookworm image (the default, or one made with debootstrap); EXTRAS picks trellis's
# extras. Wheels put in docker/wheels/ (a prebuilt llama-cpp-python, say) are installed first:
#   pip wheel --no-deps llama-cpp-python==0.3.36 -w docker/wheels
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG EXTRAS=ray,docker
# llama.cpp, when built here, is built for named x86-64 instruction sets, not for this machine's CPU:
# the image runs on other machines, and a virtual machine may list a feature (AMX) it does not run
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev build-essential cmake \
        bubblewrap git ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --shell /bin/bash trellis \
    && python3 -m venv /opt/trellis
COPY docker/wheels/ /tmp/wheels/
COPY pyproject.toml README.md /tmp/trellis/
COPY trellis /tmp/trellis/trellis
COPY agents /tmp/trellis/agents
COPY search /tmp/trellis/search
COPY envs /tmp/trellis/envs
COPY train /tmp/trellis/train
COPY cli /tmp/trellis/cli
# behind a proxy that re-signs TLS, pass its CA bundle: --secret id=pip-cert,src=/path/to/ca.pem
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
    && if ls /tmp/wheels/*.whl >/dev/null 2>&1; then /opt/trellis/bin/pip install --no-cache-dir /tmp/wheels/*.whl; fi \
    && /opt/trellis/bin/pip install --no-cache-dir "/tmp/trellis[${EXTRAS}]" \
    && rm -rf /tmp/trellis /tmp/wheels

# where compose's shared volumes are mounted: made here so that they belong to the user
RUN mkdir -p /runs /cache && chown trellis:trellis /runs /cache

ENV PATH=/opt/trellis/bin:$PATH \
    PYTHONUNBUFFERED=1
USER trellis
WORKDIR /home/trellis
CMD ["trellis", "--help"]
