"""One base class for every error the grader raises on purpose, so callers can catch them all."""


class GraderError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown assignment."""


class RubricError(GraderError):
    """The rubric file is malformed or refers to something that does not exist."""


class DataUnavailable(GraderError):
    """The requested dataset is not on this machine and may not be fetched."""


class MachineBusy(GraderError):
    """The machine could not start a process or thread for the probe (EAGAIN for longer than the
    runner waits): other work held the process limit, so the submission is not graded rather
    than charged, and the next run grades it again (batching/jobs.py, RETRY_ERRORS)."""

    PREFIX = "not graded: the machine could not start a process"

    def __init__(self, where: str) -> None:
        super().__init__(f"{self.PREFIX} ({where}) for {PATIENCE_WORDS}: the process limit of the "
                         f"grading user was full with other work, no fault of this submission; the next "
                         f"run grades it again")


PATIENCE_WORDS = "30 seconds"  # probes/runner.py, PATIENCE
