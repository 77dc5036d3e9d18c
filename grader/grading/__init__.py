"""Grading one submission: the engine (plan every check's probe tasks, run them in the sandbox
against the student's code and once against the reference, score in the parent), the parent's
side of the probe protocol, which heavy libraries a probe preloads, and the reference outputs
kept on disk between runs. Student code never runs in this package's process."""
