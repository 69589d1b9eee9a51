"""The lab: a simulated cloud (Nova's compute API over HTTP, IPMI BMCs over UDP) that
Lazarus's production code talks to through the same protocols as to a real cloud.

Modules: state and cloud (state and rules), usage (host figures: Placement's allocations and
each host's resource tracker), evacuation (Nova's evacuation stages), scheduler (destination
choice), aggregates (host aggregates' rules), nova_api / resource_api / aggregate_api /
actions / views (the HTTP API), control (the /lab control API), bmc (IPMI simulators),
topology (what a lab contains), runner (one process running it all), manifest (the files it
writes), testing (helpers for tests), cli (`lazarus lab`).
Importing this package does no I/O.
"""
