"""Reliability reproductions (issue 16): bounded, loopback only, run by the normal pytest run.

The gateway's fixtures are the gateway tests' own (the mock provider and the gateway, in process
or on loopback sockets); other rooms add theirs below.
"""

from tests.gateway.conftest import make_env, socket_env  # noqa: F401  (fixtures)
from tests.guard.conftest import clock, private_redis  # noqa: F401  (the guard's fixtures)
