"""An owner killed and not yet reaped (a zombie) is dead: its units are taken over at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from dreamnodes.runlog.owner import _owner_of, alive


def test_a_killed_owner_not_yet_reaped_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = _owner_of(child.pid)
        assert alive(owner, None, time.time())
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(owner, time.time() + 30, time.time()):  # a lease does not keep it alive
            assert time.monotonic() < deadline, "a zombie owner still counts as alive"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert not alive(owner, time.time() + 30, time.time())
