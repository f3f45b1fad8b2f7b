"""Imported only by the sweep's fork server (`sweep.worker_context`), never by the lab itself.

It loads what every worker needs once (torch, the trainer, the sweep's worker functions), then moves all of it
out of the garbage collector's reach (`gc.freeze`, as the gc module's documentation advises before forking):
the workers, forks of this server, share those pages instead of copying the ones a collection touches, and
the server exits in about 0.1 s instead of 0.4 s (the final collections over every object torch made).
"""

import gc
import signal

from tui_lab.signals import die_with_parent

# The server belongs to the sweep that started it. Ctrl-C, a hang-up or a kill sent to the sweep's process group
# are the sweep's to handle (it stops its workers and finishes their runs); the server ends with the sweep,
# whatever ends it: SIGKILL from the kernel when its parent is gone, and its workers, which ask for SIGTERM when
# the server is gone, then finish their runs and leave (sweep._worker_main). Before torch: a Ctrl-C while it
# loads would otherwise kill the server and fail the sweep.
for _sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
    if _sig is not None:
        signal.signal(_sig, signal.SIG_IGN)
die_with_parent(signal.SIGKILL)

import tui_lab.core.trainer  # noqa: E402 - torch, the models, the probes
import tui_lab.sweep  # noqa: E402, F401 - the workers' entry points

gc.freeze()
