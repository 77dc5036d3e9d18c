"""One base class for every error the grader raises on purpose, so callers can catch them all."""


class GraderError(Exception):
    """A problem the user can fix: bad input, missing data, an unknown assignment."""


class RubricError(GraderError):
    """The rubric file is malformed or refers to something that does not exist."""


class DataUnavailable(GraderError):
    """The requested dataset is not on this machine and may not be fetched."""
