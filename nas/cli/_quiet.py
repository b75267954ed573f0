"""TensorFlow's native start-up chatter, filtered out of the CLI's standard error.

TensorFlow's shared libraries write to file descriptor 2 from C++ before its logging is set up, so neither
``TF_CPP_MIN_LOG_LEVEL`` nor Python's logging reaches them: "All log messages before absl::InitializeLog() ...",
``cudart_stub`` and ``cpu_feature_guard`` notices, and on a machine without a GPU an ``E0000 ... failed call to
cuInit`` line that reads like an error. The CLI points descriptor 2 at a pipe and forwards every line that is not
such a notice; Python's own ``sys.stderr`` (progress bars, errors, tracebacks) keeps the original stream and its
terminal. ``nas --verbose`` or ``NAS_NATIVE_LOGS=1`` leaves everything as it was.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

__all__ = ["NOISE", "filter_native_stderr"]

NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"  # native INFO and WARNING lines (absl's format)
    r"|E\d{4} [\d:. ]+\d+ (cuda_\w+|gpu_\w+)\.cc:\d+\] .*(cuInit|CUDA|cuda)"  # no GPU on a CPU machine: not an error
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
)


def filter_native_stderr() -> None:
    """Filter descriptor 2 of this process (and of the processes it starts) through :data:`NOISE` until exit."""
    if os.environ.get("NAS_NATIVE_LOGS") == "1":
        return
    try:
        sys.stderr.flush()
        keep = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (closed, embedded interpreter): leave it alone
        return
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(keep, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                      errors="backslashreplace", closefd=False)

    def forward() -> None:
        with open(read, "rb", closefd=True) as pipe:
            for line in pipe:
                if not NOISE.match(line.decode("utf-8", "replace")):
                    os.write(keep, line)

    thread = threading.Thread(target=forward, name="nas-native-stderr", daemon=True)
    thread.start()

    def restore() -> None:
        os.dup2(keep, 2)  # closes this process's end of the pipe: the thread drains it and ends
        thread.join(timeout=2.0)

    atexit.register(restore)
