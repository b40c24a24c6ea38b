"""Joining Ray: the cluster at RAY_ADDRESS, or a fresh local one."""

from __future__ import annotations

import logging

import ray

from veles.config import Settings


def connect(settings: Settings) -> None:
    """Initialise Ray once per process in the `veles` namespace.

    With no RAY_ADDRESS a new local cluster is started (`address="local"`, never "auto", which
    could attach to a stale cluster left by another run).
    """
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=settings.ray_namespace,
                 logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=settings.ray_num_cpus, include_dashboard=False,
                 namespace=settings.ray_namespace, logging_level=logging.WARNING, log_to_driver=False)


def gcs_address() -> str:
    """The address other processes use to join the cluster this process is connected to."""
    return str(ray.get_runtime_context().gcs_address)
