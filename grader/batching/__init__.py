"""Grading a course: submissions taken in from any layout (folders, zips, a Canvas export),
one submission graded into its folder whatever happens (jobs), the local pool of forked workers
(pool) or a Dask cluster (cluster, cluster_config), and the folder run that ties them together
with reuse of valid earlier results (folder)."""
