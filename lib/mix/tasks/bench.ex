defmodule Mix.Tasks.Bench do
  @shortdoc "Equality indexes side by side, background compaction, the ShapeRouter"
  @moduledoc """
  Runs `bench/equality.exs`: builds the map `EqualityIndex`, an ETS `:set`, a raw `LsmIndex`
  and an `LsmEqualityIndex` over the same keys, in one run, and prints one table per size and
  shape mix (build time, lookup hit/miss p50/p99, transaction batches of 10/100 keys, churn
  throughput, memory per key), with the machine it ran on. Then `bench/compaction.exs`:
  lookup latency with compaction idle vs running on one index, sustained batched churn,
  write amplification and compaction throughput. Then `bench/router.exs`: the ShapeRouter vs
  `LsmIndex.Filter` (`:map`) with 1k / 100k / 1M shapes. Tables also go to `bench/results/`.

      mix bench                          # 100k, 1M and 10M keys, compaction at 10M, router
                                         # (~20 minutes, ~6 GiB)
      mix bench --quick                  # 100k / 200k keys, fewer samples: a smoke check (CI)
      mix bench --sizes 100000,1000000   # chosen sizes (equality section)
      mix bench --only compaction        # one section: equality | compaction | router
      mix bench --only compaction --persistent   # the compaction section on an index
                                         # opened in a temporary directory (segments
                                         # mapped from files): bench/results/compaction-persistent.md
  """
  use Mix.Task

  @impl true
  def run(args) do
    {opts, _rest} =
      OptionParser.parse!(args,
        strict: [quick: :boolean, sizes: :string, only: :string, persistent: :boolean]
      )

    only = opts[:only]

    unless only in [nil, "equality", "compaction", "router"],
      do: Mix.raise("--only takes equality, compaction or router, got: #{only}")

    # app.start (unlike compile + loadpaths) puts the consolidated protocols on the code path:
    # unconsolidated Index.Protocol dispatch made the map builds ~15x slower
    Mix.Task.run("app.start")
    Code.require_file("bench/report.exs")
    Code.require_file("bench/equality.exs")
    Code.require_file("bench/compaction.exs")
    Code.require_file("bench/router.exs")
    quick = opts[:quick] || false

    sizes =
      cond do
        opts[:sizes] -> opts[:sizes] |> String.split(",") |> Enum.map(&String.to_integer/1)
        opts[:quick] -> [100_000]
        true -> [100_000, 1_000_000, 10_000_000]
      end

    # defined by the scripts just loaded, so not known at compile time
    if only in [nil, "equality"],
      do: apply(LsmIndex.Bench.Equality, :run, [[sizes: sizes, quick: quick]])

    for {section, module} <- [
          compaction: LsmIndex.Bench.Compaction,
          router: LsmIndex.Bench.Router
        ],
        only in [nil, Atom.to_string(section)] do
      machine = apply(LsmIndex.Bench.Equality, :machine, [])
      persistent = section == :compaction and (opts[:persistent] || false)
      table = apply(module, :run, [[quick: quick, machine: machine, persistent: persistent]])

      file =
        Path.join(
          "bench/results",
          "#{section}#{if persistent, do: "-persistent", else: ""}#{if quick, do: "-quick", else: ""}.md"
        )

      File.write!(file, table)
      IO.puts("written to #{file}")
    end
  end
end
