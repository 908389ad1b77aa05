# Every test's own timeout is a hang guard, not a speed check: the suite must pass on a busy
# machine (two test runs on two cores), so the default is minutes rather than ExUnit's 60 s.
ExUnit.start(timeout: 600_000)
