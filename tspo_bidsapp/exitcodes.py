"""Exit codes (BIDS-Apps execution conventions) and the errors that carry them.

Every error the command line can report derives from :class:`BidsAppError`; ``main()``
turns it into a one-paragraph message on stderr and returns its ``exit_code``.
"""

from __future__ import annotations

from pathlib import Path

EX_OK = 0
EX_INVALID_BIDS = 16  # the input dataset is not valid BIDS (or a sidecar is unusable)
EX_BAD_ANALYSIS_LEVEL = 17  # analysis level is not "participant" or "group"
EX_NOTHING_SELECTED = 18  # the filters (participant/session/tracer labels) select nothing
EX_USAGE = 64  # bad command-line usage
EX_MISSING_INPUT = 66  # a required input (T1w, PET, directory) is missing
EX_FAILED = 1  # the workflow ran and some node failed


class BidsAppError(Exception):
    """An error with a BIDS-Apps exit code and, where known, the file and field at fault."""

    exit_code: int = EX_FAILED

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        self.path = None if path is None else Path(path)
        self.field = field
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class UsageError(BidsAppError):
    exit_code = EX_USAGE


class AnalysisLevelError(BidsAppError):
    exit_code = EX_BAD_ANALYSIS_LEVEL


class InvalidBIDSError(BidsAppError):
    exit_code = EX_INVALID_BIDS


class NothingSelectedError(BidsAppError):
    exit_code = EX_NOTHING_SELECTED


class MissingInputError(BidsAppError):
    exit_code = EX_MISSING_INPUT


class InputProblems(InvalidBIDSError):
    """Several problems found while validating the input; reported together.

    ``problems`` holds ``(path, field, message)`` triples; the exit code is the most
    specific one among the errors collected (16 unless every problem is a missing input).
    """

    def __init__(self, errors: list[BidsAppError]):
        self.errors = list(errors)
        self.problems = [(e.path, e.field, e.message) for e in self.errors]
        codes = {e.exit_code for e in self.errors}
        self.exit_code = codes.pop() if len(codes) == 1 else EX_INVALID_BIDS
        lines = [f"{len(self.errors)} problem(s) in the input dataset:"]
        lines += [f"  - {e}" for e in self.errors]
        Exception.__init__(self, "\n".join(lines))
        self.path, self.field, self.message = None, None, "\n".join(lines)
