"""A course's late-work rules: the `[late]` policy (rubric table, course file), individual
extensions, where each submission's time comes from (an LMS export, a git clone, Canvas's LATE
marker), the late-day bank, and the one decision per student that turns them into a penalty on
the total (never on a check's points)."""
