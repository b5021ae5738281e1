# tspo-bidsapp container image (BIDS-App).
#
#   docker build -t tspo-bidsapp:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -u "$(id -u):$(id -g)" \
#       -v /data/bids:/data:ro -v /data/out:/out tspo-bidsapp:0.1.0 /data /out participant
#
# Without -w the work folder is /tmp/tspo-bidsapp-work (the root is read-only): in memory and
# lost with the container. Mount one (-v /scratch/work:/work ... -w /work) to resume a run.
#
# Two stages: the builder compiles what has no wheel (surfa) into a virtual environment
# holding the exact dependency set of constraints.txt; the runtime stage carries only
# Debian's python3 and that environment. SAMSEG's atlas ships inside the samseg wheel and
# the MNI152 templates inside nilearn, so nothing is downloaded at run time.
#
# Where TLS is intercepted by a local certificate authority, pass its certificate as an
# optional build secret (it is not stored in the image):
#   podman build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t tspo-bidsapp .

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       ca-certificates gcc g++ python3 python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN python3 -m venv /opt/venv
WORKDIR /src

# Dependencies first (their own layer, reused while only the package's code changes):
# the project's declared dependencies, resolved to the exact versions of constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

# The package itself (not editable).
COPY README.md ./
COPY tspo_bidsapp ./tspo_bidsapp
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install -c constraints.txt . \
    && pip check

# Leaner: test suites of the large scientific packages, TensorFlow's C++ headers (287 MB,
# only for compiling extensions), pip itself, stale bytecode.
# Then byte-compile everything once, as the root filesystem is read-only at run time.
RUN SP=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
    && for pkg in numpy scipy pandas sklearn matplotlib statsmodels networkx prov samseg; do \
         find "$SP/$pkg" -type d -name tests -prune -exec rm -rf {} + ; \
       done \
    && rm -rf "$SP/tensorflow/include" \
    && pip uninstall -y -q pip \
    && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} + \
    && python -m compileall -q -j 2 --invalidation-mode unchecked-hash /opt/venv/lib \
    && chmod -R a+rX /opt/venv


FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
              /var/log/dpkg.log /var/log/apt
COPY --from=builder /opt/venv /opt/venv

# Run-time environment: read-only root filesystem, arbitrary uid, no network.
# HOME and every cache point at /tmp (mount a writable tmpfs there); nipype's version
# check is off. OMP_NUM_THREADS and friends are set per run from --omp-nthreads.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/.cache \
    NILEARN_DATA=/tmp/nilearn_data \
    NIPYPE_NO_ET=1 \
    TSPO_BIDSAPP_MPL_CACHE=/opt/matplotlib \
    TSPO_BIDSAPP_CONTAINER=tspo-bidsapp:${VERSION} \
    LANG=C.UTF-8

# matplotlib's font list, built once; each run copies it into MPLCONFIGDIR (a fresh /tmp).
RUN MPLCONFIGDIR=/opt/matplotlib python -c "import matplotlib.font_manager" \
    && ls /opt/matplotlib/fontlist-*.json && chmod -R a+rX /opt/matplotlib

# Fail the build if the installed application cannot start or find its offline data.
RUN tspo-bidsapp --version \
    && python -c "import ants, samseg, os; from nilearn import datasets; \
datasets.load_mni152_template(resolution=1); \
atlas = os.path.join(os.path.dirname(samseg.__file__), 'atlas'); \
assert os.listdir(atlas), atlas" \
    && python -c "import importlib.util as u; u.find_spec('tensorflow') is None or __import__('tensorflow')" \
    && rm -rf /tmp/* /tmp/.[!.]*
# (The checks above write caches under /tmp as root; podman copies an image's /tmp into the
# --tmpfs mounted there, so they must not stay in the image: the run-time user could not write.)

LABEL org.opencontainers.image.title="tspo-bidsapp" \
      org.opencontainers.image.description="BIDS-App: quantitative TSPO PET + MRI in multiple sclerosis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /tmp
ENTRYPOINT ["tspo-bidsapp"]
CMD ["--help"]
