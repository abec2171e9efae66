"""The benchmark: a versioned protocol (tasks, corpora, filters, probes, seeds) run over several
upstreams, resumably, into a leaderboard (:mod:`s3prl_mi_probe.report.leaderboard`)."""
