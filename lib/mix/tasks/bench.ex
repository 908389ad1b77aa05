defmodule Mix.Tasks.Bench do
  @shortdoc "Equality indexes side by side: map, ETS, LsmIndex, LsmEqualityIndex"
  @moduledoc """
  Runs `bench/equality.exs`: builds the map `EqualityIndex`, an ETS `:set`, a raw `LsmIndex`
  and an `LsmEqualityIndex` over the same keys, in one run, and prints one table per size and
  shape mix (build time, lookup hit/miss p50/p99, transaction batches of 10/100 keys, churn
  throughput, memory per key), with the machine it ran on. The table also goes to
  `bench/results/`.

      mix bench                          # 100k, 1M and 10M keys (several minutes, ~6 GiB)
      mix bench --quick                  # 100k keys, fewer samples: a smoke check (CI)
      mix bench --sizes 100000,1000000   # chosen sizes
  """
  use Mix.Task

  @impl true
  def run(args) do
    {opts, _rest} = OptionParser.parse!(args, strict: [quick: :boolean, sizes: :string])
    # app.start (unlike compile + loadpaths) puts the consolidated protocols on the code path:
    # unconsolidated Index.Protocol dispatch made the map builds ~15x slower
    Mix.Task.run("app.start")
    Code.require_file("bench/equality.exs")

    sizes =
      cond do
        opts[:sizes] -> opts[:sizes] |> String.split(",") |> Enum.map(&String.to_integer/1)
        opts[:quick] -> [100_000]
        true -> [100_000, 1_000_000, 10_000_000]
      end

    # defined by the script just loaded, so not known at compile time
    apply(LsmIndex.Bench.Equality, :run, [[sizes: sizes, quick: opts[:quick] || false]])
  end
end
