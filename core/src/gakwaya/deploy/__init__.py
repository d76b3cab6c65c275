"""Projects, environments and apps; deployments, releases and the pipeline that
turns a git commit into running containers (ARCHITECTURE §4).

The pipeline is kernel code; every step that touches git, Docker or a proxy goes
through a provider protocol of :mod:`gakwaya_sdk.providers`, supplied by plugins
(``gakwaya-git``, ``gakwaya-dockerfile``, ``gakwaya-docker``, ``gakwaya-portproxy``).
"""
