"""Check kinds only one assignment needs (`grader.assignments.<probe>.KINDS`), scored in the
parent like the generic kinds of grader/kinds/; their probe side is grader/probes/<probe>.py."""
