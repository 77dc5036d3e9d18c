"""mlp-grader: a sandboxed, reproducible autograder for neural-network homework.

The public surface is grader.api (the CLI, grader.cli, only calls it). The subpackages, lowest
first: sandbox and probes (confinement, and what runs inside it), kinds (what a check is),
notebooks, assignments, reporting, grading (one submission), batching (a course), delivery (what
goes to students and Gradescope); the modules at this level are what they all share. See
docs/architecture.md.
"""
__version__ = "0.2.0"
