"""anyjob's benchmarks: each compares anyjob with what a user would write instead, in one run."""
