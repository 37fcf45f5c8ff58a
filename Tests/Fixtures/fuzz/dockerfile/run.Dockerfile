# escape=\
ARG base_image
FROM ${base_image}
ARG build_id=0
USER root
RUN apt-get update && \
    apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
ENV PATH="/opt/tools/bin:${PATH}" HOME=/home/cnb
LABEL io.example.tools="curl jq" other=value
COPY --chown=1000:1000 tools/ /opt/tools/
ADD archive.tar.gz /opt/
WORKDIR /workspace
SHELL ["/bin/bash", "-c"]
USER 1000:1000
