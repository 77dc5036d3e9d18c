"""The notebook step of grading: the one notebook reader (reading), the rubric's notebook
settings (config), the template's cells matched against the student's (matching), the written
answers (answers), the numbers the saved outputs claim (claims), values read without executing
(values), the sandboxed Jupyter kernel (kernel), the data and figures it needs and makes
(staging, figures), and the step that puts them together (step)."""
