defmodule Mix.Tasks.Demo do
  @shortdoc "End to end: a throwaway PostgreSQL, logical replication, N shapes, every one checked"
  @moduledoc """
  Runs `LsmIndex.Demo.Driver` (see its moduledoc and DESIGN.md, "End to end"): starts a
  throwaway PostgreSQL 15 cluster with `wal_level = logical`, registers the shapes, runs a
  write workload while streaming the replication slot (pgoutput, the streaming protocol),
  routes every transaction, adds and removes shapes while it runs, keeps each shape's rows,
  checks every shape against PostgreSQL and prints the summary. Exits 1 when a shape is
  inconsistent.

      mix demo                              # 100,000 shapes, 45 s of writes, the router
      mix demo --rate 0 --seconds 20        # the writer as fast as it goes
      mix demo --shapes 2000 --seconds 10   # a small one
      mix demo --via filter-lsm             # LsmIndex.Filter (:lsm) instead; filter-map: (:map)
      mix demo --state-dir DIR              # persistent routers + durable shape log; run it
                                            # again on DIR after a kill and it resumes

  `./run demo` installs what is missing first (Elixir, PostgreSQL) and runs this.
  """
  use Mix.Task

  @impl true
  def run(args) do
    # app.start puts the consolidated protocols on the code path (the filter's index protocol)
    Mix.Task.run("app.start")

    case LsmIndex.Demo.Driver.main(args) do
      0 -> :ok
      status -> exit({:shutdown, status})
    end
  end
end
