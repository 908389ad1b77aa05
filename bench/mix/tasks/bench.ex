defmodule Mix.Tasks.Bench do
  @shortdoc "Equality indexes side by side, background compaction, the ShapeRouter, the Filter, a memory soak, subquery shapes"
  @moduledoc """
  Runs `bench/equality.exs`: builds the map `EqualityIndex`, an ETS `:set`, a raw `LsmIndex`
  and an `LsmEqualityIndex` over the same keys, in one run, and prints one table per size and
  shape mix (build time, lookup hit/miss p50/p99, transaction batches of 10/100 keys, churn
  throughput, memory per key; transactions of 10 / 100 / 256 keys per key, list and packed
  `lookup_many` beside the ETS hit), with the machine it ran on. Then `bench/compaction.exs`:
  lookup latency with compaction idle vs running on one index, sustained batched churn,
  write amplification and compaction throughput. Then `bench/router.exs`: the ShapeRouter vs
  `LsmIndex.Filter` (`:map`) with 1k / 100k / 1M shapes, then issue 24's rows
  (`bench/router_scale.exs`: six templates at 1k to 1M shapes — bytes, add_shape, per
  candidate and per miss beside an ETS hit, scanned range/LIKE/ILIKE families, reopen, a plot
  `router-scale.svg`). Then `bench/filter.exs`:
  `LsmIndex.Filter` with `:map` and `:lsm` indexes against the ShapeRouter on the same
  template shapes and changes (`bench/workloads.exs`) at 10k / 100k / 1M shapes (µs per
  change, transaction p50/p99, registration, heap and RSS per shape; a plot of µs per
  change against shapes, SVG by gnuplot), and a sweep of 100 to 10k shapes for the
  `:auto` threshold. Last `bench/memory.exs`, a churn
  soak: a 10M-key index churned (add/remove/drop_handle) at full speed for 10 minutes, the
  VM's RSS against the index's counted bytes sampled every second (ratio min/median/max,
  drift slope; the series as CSV and an SVG plot drawn by gnuplot, installed from Debian when
  missing and possible). The full run includes the soak (10 of its ~35 minutes); `--quick`
  runs it for 20 s on 1M keys. `bench/subquery.exs`: subquery shapes over two tables
  (issue 23) — view memory per value and per (view, value) pair against an ETS
  `ordered_set` of `{shape, value}` rows (one VM per reading), moves through
  `route_many(moves: true)`, one crossing fanned out to 100k shapes, and outer routes, beside
  an ETS hit and a memory-latency probe of the same run. Tables also go to `bench/results/`.

      mix bench                          # 100k, 1M and 10M keys, compaction at 10M, router,
                                         # filter, memory soak (~35 minutes, ~6 GiB, without
                                         # the filter section)
      mix bench --quick                  # 100k / 200k / 1M keys, 10k / 20k shapes, fewer
                                         # samples, a 20 s soak: a smoke check (CI, ~1
                                         # minute, ~1.5 for the filter section, ~1 for
                                         # the router's, its scale part included)
      mix bench --sizes 100000,1000000   # chosen sizes (equality section)
      mix bench --only compaction        # one section: equality | batch | compaction |
                                         # router | router_scale | filter | memory | subquery
      mix bench --only batch             # issue 25: lookups by batch size at 1M and 10M keys
                                         # beside the memory probe and an ETS hit (~3 min)
      mix bench --only router_scale --sizes 1000,100000   # issue 24's rows alone (part of
                                         # router), at chosen shape counts (default 1k to 1M,
                                         # --quick 1k and 10k): bench/results/router-scale.md
      mix bench --only subquery          # issue 23's targets: ~5 minutes (12 VMs of one
                                         # memory reading each, ~1.5 GiB); --quick ~45 s
      mix bench --only memory --minutes 30   # the soak for 30 minutes (default 10, quick 20 s)
      mix bench --only memory --rate 500000  # the soak paced at 500k add/remove ops/s
                                         # (default: full speed with back-pressure)
      mix bench --only compaction --persistent   # the compaction section on an index
                                         # opened in a temporary directory (segments
                                         # mapped from files): bench/results/compaction-persistent.md
      mix bench --replot [--only router] [--quick]   # no measuring: draws the section
                                         # plots again from the results files there are

  Every section writes a plot beside its table (SVG, drawn by gnuplot: `bench/plot.exs`,
  `bench/plots.exs`): latency against keys or shapes for the size sweeps, throughput against
  batch size for the batch rows (`equality-batch.svg`, `router-batch.svg`, `subquery.svg`),
  lookup latency by percentile for compaction, beside the filter, router-scale and memory
  sections' own. When gnuplot is missing it is installed from Debian (`gnuplot-nox`) if the
  bench runs as root; otherwise each results file notes that its plot was skipped.
  """
  use Mix.Task

  @impl true
  def run(args) do
    {opts, _rest} =
      OptionParser.parse!(args,
        strict: [
          quick: :boolean,
          sizes: :string,
          only: :string,
          persistent: :boolean,
          minutes: :float,
          rate: :integer,
          replot: :boolean
        ]
      )

    only = opts[:only]

    unless only in [
             nil,
             "equality",
             "compaction",
             "router",
             "router_scale",
             "filter",
             "memory",
             "subquery",
             "batch"
           ],
           do:
             Mix.raise(
               "--only takes equality, batch, compaction, router, router_scale, filter, " <>
                 "memory or subquery, got: #{only}"
             )

    unless opts[:minutes] == nil or opts[:minutes] > 0,
      do: Mix.raise("--minutes takes a positive number, got: #{opts[:minutes]}")

    unless opts[:rate] == nil or opts[:rate] > 0,
      do:
        Mix.raise("--rate takes a positive number of operations per second, got: #{opts[:rate]}")

    # app.start (unlike compile + loadpaths) puts the consolidated protocols on the code path:
    # unconsolidated Index.Protocol dispatch made the map builds ~15x slower
    Mix.Task.run("app.start")
    Code.require_file("bench/report.exs")
    Code.require_file("bench/equality_txn.exs")
    Code.require_file("bench/plot.exs")
    Code.require_file("bench/plots.exs")
    Code.require_file("bench/equality.exs")
    Code.require_file("bench/batch.exs")
    Code.require_file("bench/compaction.exs")
    Code.require_file("bench/router.exs")
    Code.require_file("bench/workloads.exs")
    Code.require_file("bench/router_scale_families.exs")
    Code.require_file("bench/router_scale.exs")
    Code.require_file("bench/filter.exs")
    Code.require_file("bench/memory.exs")
    Code.require_file("bench/subquery_workload.exs")
    Code.require_file("bench/subquery.exs")
    quick = opts[:quick] || false

    if opts[:replot],
      do: replot(only, quick, opts[:persistent] || false),
      else: bench(opts, quick)
  end

  defp bench(opts, quick) do
    only = opts[:only]

    sizes =
      cond do
        opts[:sizes] -> opts[:sizes] |> String.split(",") |> Enum.map(&String.to_integer/1)
        opts[:quick] -> [100_000]
        true -> [100_000, 1_000_000, 10_000_000]
      end

    # defined by the scripts just loaded, so not known at compile time
    if only in [nil, "equality"],
      do: apply(LsmIndex.Bench.Equality, :run, [[sizes: sizes, quick: quick]])

    # router_scale runs as part of router, and alone only when asked for
    for {section, module} <- [
          batch: LsmIndex.Bench.Batch,
          compaction: LsmIndex.Bench.Compaction,
          router: LsmIndex.Bench.Router,
          router_scale: LsmIndex.Bench.RouterScale,
          filter: LsmIndex.Bench.Filter,
          memory: LsmIndex.Bench.Memory,
          subquery: LsmIndex.Bench.Subquery
        ],
        only == Atom.to_string(section) or (only == nil and section != :router_scale) do
      machine = apply(LsmIndex.Bench.Equality, :machine, [])
      persistent = section == :compaction and (opts[:persistent] || false)
      # the results' path without extension: the memory section writes its .csv and .svg
      # there, the filter section its .svg
      results =
        Path.join(
          "bench/results",
          "#{String.replace(to_string(section), "_", "-")}" <>
            "#{if persistent, do: "-persistent", else: ""}#{if quick, do: "-quick", else: ""}"
        )

      run_opts = [quick: quick, machine: machine, persistent: persistent, results: results]
      run_opts = run_opts ++ Keyword.take(opts, [:minutes, :rate])
      # --sizes also chooses router_scale's shape counts (alone only: within the router
      # section the counts are its own)
      run_opts =
        if section == :router_scale and opts[:sizes],
          do: run_opts ++ [sizes: sizes, standalone: true],
          else: run_opts ++ [standalone: section == :router_scale]

      table = apply(module, :run, [run_opts])
      file = results <> ".md"
      # a plot per section beside its table (bench/plots.exs; some sections draw their own)
      File.write!(file, table <> apply(LsmIndex.Bench.Plots, :section, [section, results, table]))
      IO.puts("written to #{file}")
    end
  end

  # Draws the plots of the results files there are (of `only`'s section, or all) from their
  # tables, appending to each the link of a plot it does not name yet: no measuring.
  defp replot(only, quick, persistent) do
    sections = ~w(equality compaction router subquery)a

    for section <- sections, only in [nil, Atom.to_string(section)] do
      suffix =
        "#{if persistent and section == :compaction, do: "-persistent", else: ""}" <>
          "#{if quick, do: "-quick", else: ""}"

      results = Path.join("bench/results", "#{section}#{suffix}")
      file = results <> ".md"

      with {:ok, text} <- File.read(file) do
        links = apply(LsmIndex.Bench.Plots, :section, [section, results, text])

        new =
          for line <- String.split(links, "\n"),
              line != "",
              not String.contains?(text, line),
              do: line

        if new != [],
          do: File.write!(file, Enum.join([String.trim_trailing(text), "" | new], "\n") <> "\n")

        IO.puts("#{file}: plotted#{if new == [], do: "", else: ", links added"}")
      else
        _ -> IO.puts("#{file}: not there, nothing to plot")
      end
    end
  end
end
