"""Views of results, for the TA: the one rendering leaf (render: the Jinja environment and its
filters), the report per submission, the class summary, the gradebooks (ours and Canvas's), the
similarity flags, the figures, students' written answers as HTML, and the manual scores sheet.
Nothing here imports at package level: the student self-check must not pull in jinja2."""
