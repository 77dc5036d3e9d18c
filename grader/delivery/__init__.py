"""What leaves the TA's hands: the student template generated from the reference (template),
the student kit with its public self-check (release, selfcheck) and the Gradescope autograder
(gradescope)."""
