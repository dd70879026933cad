"""nbval settings for the notebooks (run: pytest --nbval-lax --nbval-current-env notebooks/).

stderr is not compared: it carries library warnings that differ between environments
(Binder, CI, a laptop), while what a notebook teaches is in its stdout and rich outputs.
"""


def pytest_collectstart(collector):
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)
