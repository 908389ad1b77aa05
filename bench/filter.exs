defmodule LsmIndex.Bench.Filter do
  @moduledoc """
  `mix bench --only filter`: `LsmIndex.Filter` with `index: :map` and `index: :lsm` against
  `LsmIndex.ShapeRouter`, on the same template shapes and changes (`bench/workloads.exs`:
  a 10-column `todos` table, six templates, ~24 candidates per change at every size; a
  seeded stream of 20,000 changes in transactions of 10), in one run, at 10k, 100k and 1M
  shapes (`--quick`: 10k and 20k).

  Rows, each structure built and measured in its own process (which exits before the next
  starts, so memory deltas are its own):
    * Filter :map - `affected_shapes/2` per change
    * Filter :lsm - `affected_shapes/2` per change, and (same filter) `affected_shapes_many/2`
      per transaction
    * ShapeRouter - `route_many/2` per transaction

  Before timing, each structure routes the whole stream once and its answers must equal
  the map filter's, change by change (the `:lsm` filter's both ways); a difference raises,
  naming the change. Columns:
    * µs/change - the timed pass over the stream (after that untimed one): its time / 20,000
    * txn p50 / p99 µs - per transaction of 10 changes, over the same pass
    * × :map - µs/change over the map filter's
    * candidates/change - the router's `candidates_per_change` metric (an update's old
      and new row each count: ~24 per row, ~38 per change)
    * register s - every shape added, one `add_shape` call each (the router: then its
      compaction waited for); `add_shapes s` - one `Filter.add_shapes/2` call of all of
      them, in a process of its own ("–" while the filter has no `add_shapes/2`)
    * heap B/shape - the structure's term (`:erts_debug.flat_size/1` x word size) / shapes:
      the BEAM heap a process holding it keeps (shared subterms counted at each use)
    * RSS Δ B/shape - growth of the VM's resident memory over registration, every process
      garbage collected, 1 s idle before each reading / shapes (noisy below 100k: the
      allocators keep and reuse freed carriers)

  The `:auto` sweep: 10, 30, 100, 300, 1k, 3k and 10k shapes, the map and `:lsm` filters only, µs
  per change as the best of three timed passes; the first size from which `:lsm` is no
  slower than the map (at that size and every larger one of the sweep) is stated under it.

  Written to `bench/results/filter.md` (`--quick`: `filter-quick.md`) with a plot of
  µs/change against shapes (log x) beside it, `filter.svg`, drawn by gnuplot (the bench
  installs Debian's `gnuplot-nox` when missing and it runs as root; otherwise no plot).
  """

  import LsmIndex.Bench.Report,
    only: [
      progress: 1,
      fmt_f: 2,
      fmt_int: 1,
      markdown: 2,
      in_process: 1,
      settled_memory: 0
    ]

  alias LsmIndex.{Filter, ShapeRouter}
  alias LsmIndex.Bench.{Plot, Workloads}

  @sweep [10, 30, 100, 300, 1_000, 3_000, 10_000]
  @sweep_passes 3
  # the per-table cost: this many tables of each of these shape counts
  @tables 1_000
  @table_shapes [1, 10, 30, 100]
  # progress lines during registration, every this many shapes (from 100k shapes on)
  @progress_every 100_000

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    machine = Keyword.fetch!(opts, :machine)
    results = Keyword.fetch!(opts, :results)
    sizes = if quick, do: [10_000, 20_000], else: [10_000, 100_000, 1_000_000]

    header =
      "# mix bench#{if quick, do: " --quick", else: ""} --only filter: " <>
        "Filter :map vs Filter :lsm vs ShapeRouter\n"

    IO.puts(header <> "\n" <> machine)

    measured =
      for n <- sizes do
        {table, rows} = bench(n)
        IO.puts(table)
        {n, table, rows}
      end

    sweep = sweep()
    IO.puts(sweep)

    plot = Plot.link(plot(results, measured), "µs per change against shapes", results <> ".svg")

    Enum.join(
      [header, machine, workload_note() | Enum.map(measured, &elem(&1, 1))] ++
        [plot, sweep],
      "\n"
    )
  end

  defp workload_note do
    """
    Workload (`bench/workloads.exs`): the `todos` table (10 columns), six templates on \
    `user_id = $1`, N/24 users; 20,000 seeded changes (60% updates, 25% inserts, 15% deletes, \
    ~1% of rows with no shape's user) in transactions of #{Workloads.txn_size()}.
    """
  end

  # -- one size: every structure over the same shapes and changes --

  defp bench(n) do
    title = "## #{fmt_int(n)} shapes, #{fmt_int(Workloads.users(n))} users"
    progress(title)

    {map_rows, reference} = in_process(fn -> measure(:map, n, nil, []) end)
    {lsm_rows, nil} = in_process(fn -> measure(:lsm, n, reference, []) end)
    {router_rows, nil} = in_process(fn -> measure(:router, n, reference, []) end)

    batched = Map.new([:map, :lsm], &{&1, in_process(fn -> add_shapes_time(&1, n) end)})

    rows = map_rows ++ lsm_rows ++ router_rows
    map_us = hd(map_rows).mean_us
    matched = Enum.sum(Enum.map(reference, &length/1)) / length(reference)

    columns = [
      "structure",
      "µs/change",
      "txn p50 µs",
      "txn p99 µs",
      "× :map",
      "candidates/change",
      "register s",
      "add_shapes s",
      "heap B/shape",
      "RSS Δ B/shape"
    ]

    lines =
      for r <- rows do
        [
          r.name,
          fmt_f(r.mean_us, 2),
          fmt_f(r.p50_us, 1),
          fmt_f(r.p99_us, 1),
          fmt_f(r.mean_us / map_us, 2),
          if(r.candidates, do: fmt_f(r.candidates, 1), else: "–"),
          if(r.register_s, do: fmt_f(r.register_s, 2), else: "–"),
          if(r.register_s && batched[r.mode], do: fmt_f(batched[r.mode], 2), else: "–"),
          if(r.heap, do: fmt_f(r.heap / n, 1), else: "–"),
          if(r.rss, do: fmt_f(r.rss / n, 1), else: "–")
        ]
      end

    table =
      Enum.join(
        [
          title,
          "",
          markdown(columns, lines),
          "#{fmt_f(matched, 2)} shapes affected per change (mean); the `:lsm` batched row " <>
            "is the filter of the row above it; the router counts an update's candidates " <>
            "for its old and its new row.\n"
        ],
        "\n"
      )

    {table, rows}
  end

  # {rows, the answers (the map filter's only: the reference)}
  defp measure(mode, n, reference, opts) do
    passes = Keyword.get(opts, :passes, 1)
    sweep = Keyword.get(opts, :sweep, false)
    changes = Workloads.changes(n)
    txns = Workloads.transactions(changes)
    before = if sweep, do: nil, else: settled_memory()
    progress("  #{name(mode)}: registering #{fmt_int(n)} shapes")
    {register_us, built} = :timer.tc(fn -> build(mode, n) end)
    progress("  #{name(mode)}: registered in #{fmt_f(register_us / 1.0e6, 2)} s")
    rss = if sweep, do: nil, else: settled_memory().rss - before.rss
    heap = if sweep, do: nil, else: heap_bytes(built.term)

    progress("  #{name(mode)}: answers")

    answers =
      for {label, route} <- built.routes do
        answers = txns |> Enum.flat_map(route) |> Enum.map(&sorted/1)
        check!(name(mode) <> label, changes, reference, answers)
        answers
      end

    progress("  #{name(mode)}: timing")

    rows =
      for {{label, route}, i} <- Enum.with_index(built.routes) do
        times = best_pass(txns, route, passes)
        sorted = times |> Enum.sort() |> List.to_tuple()
        at = fn p -> elem(sorted, min(tuple_size(sorted) - 1, trunc(p * tuple_size(sorted)))) end
        first = i == 0

        %{
          mode: mode,
          name: name(mode) <> label,
          mean_us: Enum.sum(times) / length(changes) / 1_000,
          p50_us: at.(0.5) / 1_000,
          p99_us: at.(0.99) / 1_000,
          candidates: built.candidates.(),
          register_s: if(first, do: register_us / 1.0e6),
          heap: if(first, do: heap),
          rss: if(first, do: rss)
        }
      end

    {rows, if(mode == :map, do: hd(answers))}
  end

  defp name(:map), do: "Filter :map"
  defp name(:lsm), do: "Filter :lsm"
  defp name(:router), do: "ShapeRouter"

  # the per-transaction times (ns) of the pass with the least total
  defp best_pass(txns, route, passes) do
    1..passes
    |> Enum.map(fn _ ->
      # the answers' garbage collected first: each pass starts on the same heap
      :erlang.garbage_collect()

      for txn <- txns do
        t0 = System.monotonic_time(:nanosecond)
        route.(txn)
        System.monotonic_time(:nanosecond) - t0
      end
    end)
    |> Enum.min_by(&Enum.sum/1)
  end

  defp sorted(%MapSet{} = ids), do: ids |> MapSet.to_list() |> Enum.sort()
  defp sorted(ids) when is_list(ids), do: Enum.sort(ids)

  defp check!(_name, _changes, nil, _answers), do: :ok
  defp check!(_name, _changes, same, same), do: :ok

  defp check!(name, changes, reference, answers) do
    if length(answers) != length(reference),
      do: raise("#{name} gave #{length(answers)} answers for #{length(reference)} changes")

    {change, {want, got}} =
      changes
      |> Enum.zip(Enum.zip(reference, answers))
      |> Enum.find(fn {_change, {want, got}} -> want != got end)

    raise "#{name} disagrees with Filter :map on #{inspect(change, limit: 20)}: " <>
            "Filter :map #{inspect(want)}, #{name} #{inspect(got)}"
  end

  # term: what the caller holds; routes: [{label, fun(txn) -> [answer per change]}];
  # candidates: the router's candidates per change (the :lsm filter's from its table's
  # router; nil for the map filter)
  defp build(:router, n) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())

    each_shape(Workloads.template_shapes(n), n, fn {id, sql, params} ->
      :ok = ShapeRouter.add_shape(r, id, sql, params: params)
    end)

    # measured idle: what compaction costs routes is the compaction section's subject
    :ok = ShapeRouter.wait_idle(r)

    %{
      term: r,
      routes: [
        {" (route_many)",
         fn txn -> ShapeRouter.route_many(r, Enum.map(txn, &Workloads.router_change/1)) end}
      ],
      candidates: fn -> ShapeRouter.metrics(r).candidates_per_change end
    }
  end

  defp build(mode, n) do
    f =
      Workloads.template_shapes(n)
      |> Enum.map(&Workloads.filter_shape/1)
      |> each_shape(n, Filter.new(index: mode), fn {id, shape}, f ->
        Filter.add_shape(f, id, shape)
      end)

    per_change =
      {" (affected_shapes)", fn txn -> Enum.map(txn, &Filter.affected_shapes(f, &1)) end}

    many = {" (affected_shapes_many)", &Filter.affected_shapes_many(f, &1)}
    routes = if mode == :lsm, do: [per_change, many], else: [per_change]
    # measured idle, as the router
    :ok = Filter.wait_idle(f)

    candidates = fn ->
      case Filter.metrics(f, Workloads.table()) do
        nil -> nil
        m -> m.candidates_per_change
      end
    end

    %{term: f, routes: routes, candidates: candidates}
  end

  defp add_shapes_time(mode, n) do
    shapes = Workloads.template_shapes(n) |> Enum.map(&Workloads.filter_shape/1)
    progress("  #{name(mode)}: add_shapes of #{fmt_int(n)} shapes")
    {us, f} = :timer.tc(fn -> Filter.add_shapes(Filter.new(index: mode), shapes) end)
    ids = MapSet.size(Filter.all_shape_ids(f))
    if ids != n, do: raise("#{name(mode)}: add_shapes registered #{ids} of #{n} shapes")
    us / 1.0e6
  end

  # Enum.each / Enum.reduce over the shapes with a progress line every @progress_every
  defp each_shape(shapes, n, fun) do
    each_shape(shapes, n, nil, fn shape, nil ->
      fun.(shape)
      nil
    end)
  end

  defp each_shape(shapes, n, acc, fun) do
    shapes
    |> Enum.with_index(1)
    |> Enum.reduce(acc, fn {shape, i}, acc ->
      if n >= @progress_every and rem(i, @progress_every) == 0,
        do: progress("    #{fmt_int(i)} / #{fmt_int(n)} shapes")

      fun.(shape, acc)
    end)
  end

  defp heap_bytes(term) do
    progress("  measuring the term's size")
    :erts_debug.flat_size(term) * :erlang.system_info(:wordsize)
  end

  # -- the :auto threshold sweep --

  defp sweep do
    progress("## the :auto sweep: #{Enum.map_join(@sweep, ", ", &fmt_int/1)} shapes")

    points =
      for n <- @sweep do
        opts = [passes: @sweep_passes, sweep: true]
        {[map], reference} = in_process(fn -> measure(:map, n, nil, opts) end)
        {[lsm, many], nil} = in_process(fn -> measure(:lsm, n, reference, opts) end)
        {n, map.mean_us, lsm.mean_us, many.mean_us, many.name}
      end

    many_name = points |> hd() |> elem(4) |> String.replace_prefix("Filter :lsm ", "")

    lines =
      for {n, map, lsm, many, _} <- points do
        [
          fmt_int(n),
          fmt_f(map, 2),
          fmt_f(lsm, 2),
          fmt_f(lsm / map, 2),
          fmt_f(many, 2),
          fmt_f(many / map, 2)
        ]
      end

    columns = [
      "shapes",
      ":map µs/change",
      ":lsm µs/change",
      ":lsm / :map",
      ":lsm #{many_name} µs/change",
      "/ :map"
    ]

    """
    ## The `:auto` threshold: small sizes (best of #{@sweep_passes} passes)

    #{markdown(columns, lines)}
    #{crossover(points, 2, "`affected_shapes/2` per change")}
    #{crossover(points, 3, "`affected_shapes_many/2` per transaction")}

    #{table_cost()}
    """
  end

  # What a table costs in each engine when a filter has many small ones: @tables tables of
  # k shapes each, RSS growth per table once it holds still, each reading in a VM of its own
  # (bench/table_cost.exs: freed memory a VM keeps would hide the next reading's growth). The
  # router set's cost per table is its router and shape index; the map's a parser and maps.
  defp table_cost do
    progress("## the cost of a table: #{@tables} tables of #{inspect(@table_shapes)} shapes")

    lines =
      for k <- @table_shapes do
        [map, lsm] = for mode <- [:map, :lsm], do: table_kib(mode, k)
        [fmt_int(k), fmt_f(map, 1), fmt_f(lsm, 1), fmt_f(lsm / map, 2)]
      end

    """
    ### The cost of a table (#{@tables} tables, RSS growth per table)

    #{markdown(["shapes per table", ":map KiB/table", ":lsm KiB/table", ":lsm / :map"], lines)}
    """
  end

  defp table_kib(mode, k) do
    args = ["run", "--no-compile", "bench/table_cost.exs", "#{mode}", "#{k}", "#{@tables}"]
    env = [{"MIX_ENV", to_string(Mix.env())}]
    {out, 0} = System.cmd("mix", args, env: env, stderr_to_stdout: true)
    [_, bytes] = Regex.run(~r/RSS_GROWTH (-?\d+)/, out)
    String.to_integer(bytes) / @tables / 1024
  end

  # the first size from which :lsm (element `at` of each point) is no slower than :map at
  # that size and every larger one
  defp crossover(points, at, what) do
    from =
      points
      |> Enum.reverse()
      |> Enum.take_while(fn point -> elem(point, at) <= elem(point, 1) end)
      |> List.last()

    case from do
      nil ->
        "- #{what}: Filter :lsm is slower than :map at #{fmt_int(elem(List.last(points), 0))} shapes."

      {n, _, _, _, _} ->
        "- #{what}: Filter :lsm is no slower than :map from **#{fmt_int(n)} shapes** on."
    end
  end

  # -- the plot: µs per change against shapes, one line per structure --

  defp plot(results, measured) do
    names = measured |> hd() |> elem(2) |> Enum.map(& &1.name)

    series =
      for {name, i} <- Enum.with_index(names) do
        {name, for({n, _table, rows} <- measured, do: {n, Enum.at(rows, i).mean_us})}
      end

    Plot.lines(results <> ".svg",
      title: "LsmIndex.Filter vs ShapeRouter: template shapes, ~24 candidates per change",
      xlabel: "shapes",
      ylabel: "µs per change (mean)",
      log: "x",
      xtics: :counts,
      series: series
    )
  end
end
