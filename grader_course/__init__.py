"""Data-only package: the course material (reference, template, rubrics) inside the wheel."""
