"""Reproduction tooling, apart from the science modules: the ``asdtheory`` command line
(:mod:`~asdtheory.repro.cli`), the claim verdicts (:mod:`~asdtheory.repro.claims`), the run
mode (:mod:`~asdtheory.repro.runmode`), executing notebooks from clean kernels
(:mod:`~asdtheory.repro.notebook_run`), checking them against their stored outputs
(:mod:`~asdtheory.repro.notebook_check`), the claims report (:mod:`~asdtheory.repro.verify`)
and the benchmark runner (:mod:`~asdtheory.repro.bench`)."""
