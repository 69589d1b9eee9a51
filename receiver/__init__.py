"""Lazarus: instance high availability for OpenStack, driven by Prometheus alerts.

Importing this package does no I/O; `receiver.bootstrap` wires adapters from settings.
"""

__version__ = "0.1.0"
