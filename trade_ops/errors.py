"""Errors of the trade-ops library, and the exit code each one maps to at the CLI edge.

    TradeOpsError                 base; never raised itself
    ├── UsageError (exit 2)       bad input: unknown service, bad flag value, bad SLO expression
    ├── StackFileError (exit 2)   a stack or scenario file that cannot be read or parsed
    ├── RunDirError (exit 3)      run directory missing, not writable, or holding no stack
    ├── PortInUseError (exit 3)   a port the stack needs is taken; nothing was started
    ├── StartupError (exit 3)     a process could not start or never became ready
    └── Interrupted (exit 130)    Ctrl-C; the message says what was undone

Check failures (unhealthy service, SLO breach) are results, not exceptions: commands
return ExitCode.FAILED for them, and ExitCode.INVALID for a measurement that is not valid
(the bench generator could not keep its schedule: its figures are shown, not trusted).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ExitCode",
    "Interrupted",
    "PortInUseError",
    "RunDirError",
    "StackFileError",
    "StartupError",
    "TradeOpsError",
    "UsageError",
]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a check failed: unhealthy, SLO breached, expectation not met
    USAGE = 2  # the user asked for something that does not make sense
    CANNOT_RUN = 3  # startup failure, nothing reachable
    INVALID = 4  # the measurement is not valid (bench: the generator's lag could change the verdict)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after printing what was done so far


class TradeOpsError(Exception):
    exit_code: ExitCode = ExitCode.CANNOT_RUN

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail  # e.g. a log tail, shown under the message


class UsageError(TradeOpsError):
    exit_code = ExitCode.USAGE


class StackFileError(TradeOpsError):
    exit_code = ExitCode.USAGE


class RunDirError(TradeOpsError):
    exit_code = ExitCode.CANNOT_RUN


class PortInUseError(TradeOpsError):
    exit_code = ExitCode.CANNOT_RUN


class StartupError(TradeOpsError):
    exit_code = ExitCode.CANNOT_RUN


class Interrupted(TradeOpsError):
    exit_code = ExitCode.INTERRUPTED
