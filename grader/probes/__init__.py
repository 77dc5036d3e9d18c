"""What runs inside the sandbox: the runner that starts each task and the probe functions that
call the student's code. Standard library and NumPy only; nothing here imports the grader."""
