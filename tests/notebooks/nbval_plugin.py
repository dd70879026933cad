"""nbval settings for the notebooks, as a pytest plugin (kept out of notebooks/, the learner's folder).

Run from the repository root:
``python -m pytest -p tests.notebooks.nbval_plugin --nbval-lax --nbval-current-env
--nbval-sanitize-with tests/notebooks/nbval-sanitize.cfg notebooks/``

stderr is not compared: it carries library warnings that differ between environments
(Binder, CI, a laptop), while what a notebook teaches is in its stdout and rich outputs.
"""


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)
