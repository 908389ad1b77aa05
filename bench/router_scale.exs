defmodule LsmIndex.Bench.RouterScale do
  @moduledoc """
  The templates-at-scale part of `mix bench --only router` (alone: `mix bench --only
  router_scale`): issue 24's rows, each time beside an ETS `:set` hit measured in the same
  run (`Report.ets_hit_ns/1`) and, where it finishes, `LsmIndex.Filter` with `:map`.

  Workload (`bench/workloads.exs`): the 10-column `todos` table, N shapes from six templates
  on `user_id = $1` over N/24 users (a user's 24 shapes are the candidates of a change of
  that user). Sizes: 1k, 10k, 100k and 1M shapes (`--quick`: 1k and 10k; `--sizes` chooses);
  the largest is the one the targets are read at.

  Rows, per size:
    * RSS Δ B/shape - VmRSS growth over registering the N shapes / N, in a VM of its own
      (`bench/router_scale_memory.exs`, `+MMmcs 0`), before and after read once RSS holds
      still (`Report.stable_memory/0`); the router's own counted bytes beside it when
      `metrics/1` reports any
    * add_shape µs - the same registration, one call per shape, / N; `add_shapes` - one call
      of all of them in another VM, when the router has `add_shapes/2`
    * per candidate - (time of `route_many` over inserts of known users − the same over
      inserts of users no shape has) / (the candidates the router's `metrics/1` counted over
      the first − over the second); batches of 100 changes, best of 3 passes each. The map
      filter (`affected_shapes/2` per change) is divided by the router's candidate count
    * per miss - `route_many` over the inserts no shape's user has: time / changes
    * stream - the workload's seeded stream (60% updates, 25% inserts, 15% deletes) in
      transactions of 10: µs per change (a line of the plot, beside hit, miss and the ETS hit)

  Scanned families (a router of their own, `bench/router_scale_families.exs`), reopen (a
  persistent router of the largest size, `bench/router_reopen.exs`), and a plot of µs per
  change against shapes (`router-scale.svg`, `--quick`: `router-scale-quick.svg`, beside the
  results).
  """

  import LsmIndex.Bench.Report,
    only: [
      progress: 1,
      fmt_f: 2,
      fmt_int: 1,
      markdown: 2,
      in_process: 1,
      ets_hit_ns: 1,
      ets_yardstick: 1
    ]

  alias LsmIndex.Bench.{Plot, RouterScaleFamilies, Workloads}
  alias LsmIndex.{Filter, ShapeRouter}

  # changes per route_many call of the hit and miss rows (the stream keeps its transactions
  # of 10): one NIF call's cost spread thin, the per-change cost left
  @batch 100
  @passes 3

  defp sizes(true) do
    %{
      counts: [1_000, 10_000],
      filter_max: 10_000,
      rows: 2_000,
      stream: 5_000,
      # RSS read once still in the quick run too: the VM gives back memory over its first
      # ~10 s (Report.stable_memory/0), which would swamp 10k shapes' growth
      settle: "stable",
      ets_samples: 20_000,
      families: RouterScaleFamilies.sizes(true)
    }
  end

  defp sizes(false) do
    %{
      counts: [1_000, 10_000, 100_000, 1_000_000],
      filter_max: 1_000_000,
      rows: 20_000,
      stream: 20_000,
      settle: "stable",
      ets_samples: 100_000,
      families: RouterScaleFamilies.sizes(false)
    }
  end

  @doc """
  Runs the part; `opts` as `mix bench` passes them (`:quick`, `:machine`, `:results`, and
  `:sizes` to choose the shape counts). `:standalone`: with its own header and machine line.
  """
  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    s = sizes(quick)
    s = if opts[:sizes], do: %{s | counts: Enum.sort(opts[:sizes])}, else: s
    n = List.last(s.counts)

    head =
      if opts[:standalone],
        do: [
          "# mix bench#{if quick, do: " --quick", else: ""} --only router_scale: " <>
            "the ShapeRouter at scale (issue 24)\n",
          opts[:machine]
        ],
        else: []

    title = "## Templates at scale (issue 24): six templates over `todos`, N/24 users\n"
    Enum.each(head ++ [title], &IO.puts/1)

    progress("## templates at scale: the ETS yardstick")
    ets = in_process(fn -> ets_hit_ns(s.ets_samples) end)
    yardstick = "Yardsticks (this run): #{ets_yardstick(ets)}.\n"
    IO.puts(yardstick)

    measured = for count <- s.counts, do: {count, size(count, s)}
    by_size = by_size_table(measured, ets)
    IO.puts(by_size)
    families = RouterScaleFamilies.run(s.families, ets)
    IO.puts(families.table)
    reopen = reopen(n)
    {_, largest} = List.last(measured)
    targets = targets_table(n, largest, families, reopen, ets)
    IO.puts(targets)

    svg =
      Path.join(
        Path.dirname(opts[:results]),
        "router-scale#{if quick, do: "-quick", else: ""}.svg"
      )

    plot = Plot.link(plot(svg, measured, ets), "route µs per change against shapes", svg)

    Enum.join(head ++ [title, yardstick, targets, by_size, families.table, plot], "\n")
  end

  # -- one size: memory and registration in VMs of their own, routes in a process --

  defp size(n, s) do
    progress("### #{fmt_int(n)} template shapes, #{fmt_int(Workloads.users(n))} users")
    map? = n <= s.filter_max

    %{
      router_mem: reading("router", n, s.settle),
      router_batch: reading("router_batch", n, "once"),
      router: in_process(fn -> routes(:router, n, s, nil) end)
    }
    |> then(fn m ->
      if map?,
        do:
          Map.merge(m, %{
            map_mem: reading("map", n, s.settle),
            map: in_process(fn -> routes(:map, n, s, m.router.cand_per_hit) end)
          }),
        else: Map.merge(m, %{map_mem: nil, map: nil})
    end)
  end

  defp reading(kind, n, settle) do
    progress("  #{kind}: registering #{fmt_int(n)} shapes in a VM of its own")
    flags = String.trim("#{System.get_env("ERL_FLAGS")} +MMmcs 0")
    env = [{"MIX_ENV", to_string(Mix.env())}, {"ERL_FLAGS", flags}]
    args = ["run", "--no-compile", "bench/router_scale_memory.exs", kind, "#{n}", settle]
    {out, status} = System.cmd("mix", args, env: env, stderr_to_stdout: true)

    case Regex.run(~r/^RESULT (\S+)$/m, out) do
      [_, b64] when status == 0 -> b64 |> Base.decode64!() |> :erlang.binary_to_term()
      _ -> raise "reading #{kind} #{n} failed (exit #{status}):\n#{out}"
    end
  end

  # ns per change of known users' inserts (hit), unknown users' (miss), the stream; the
  # router's candidates per change of each. `cand_per_hit`: the router's, for the map filter.
  defp routes(kind, n, s, cand_per_hit) do
    hits = Workloads.inserts(n, s.rows, :known)
    misses = Workloads.inserts(n, s.rows, :unknown)
    stream = Workloads.changes(n, s.stream)
    progress("  #{name(kind)}: building, #{fmt_int(n)} shapes")
    {route, candidates} = build(kind, n)

    # batches as each structure takes them: the router a list per call, the filter a change
    hit_batches = batches(kind, hits, @batch)
    miss_batches = batches(kind, misses, @batch)
    stream_batches = batches(kind, stream, Workloads.txn_size())

    # untimed: the answers (their sizes), the candidates counted
    progress("  #{name(kind)}: routing")
    c0 = candidates.()
    matched = hit_batches |> Enum.flat_map(route) |> Enum.map(&Enum.count/1) |> Enum.sum()
    c1 = candidates.()
    Enum.each(miss_batches, route)
    c2 = candidates.()

    progress("  #{name(kind)}: timing (best of #{@passes})")

    [hit, miss, stream_ns] =
      for batches <- [hit_batches, miss_batches, stream_batches] do
        Enum.min(for _ <- 1..@passes, do: timed(batches, route))
      end

    cand_hit = if c0, do: (c1 - c0) / s.rows, else: cand_per_hit
    cand_miss = if c0, do: (c2 - c1) / s.rows, else: 0.0

    %{
      hit_ns: hit / s.rows,
      miss_ns: miss / s.rows,
      stream_ns: stream_ns / length(stream),
      cand_per_hit: cand_hit,
      cand_per_miss: cand_miss,
      per_candidate_ns: (hit - miss) / s.rows / max(cand_hit - cand_miss, 1.0e-9),
      matched: matched / s.rows
    }
  end

  defp batches(:router, changes, size),
    do: changes |> Enum.map(&Workloads.router_change/1) |> Enum.chunk_every(size)

  defp batches(:map, changes, _size), do: Enum.map(changes, &[&1])

  defp timed(batches, route) do
    # the answers of the pass before collected: each pass starts on the same heap
    :erlang.garbage_collect()
    t0 = System.monotonic_time(:nanosecond)
    Enum.each(batches, route)
    System.monotonic_time(:nanosecond) - t0
  end

  # {route: a batch -> answers, candidates: the router's count so far (nil: not counted)}
  defp build(:router, n) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())

    for {id, sql, params} <- Workloads.template_shapes(n),
        do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)

    # measured idle: what compaction costs routes is the compaction section's subject
    :ok = ShapeRouter.wait_idle(r)
    {&ShapeRouter.route_many(r, &1), fn -> ShapeRouter.metrics(r).candidates end}
  end

  defp build(:map, n) do
    f =
      Workloads.template_shapes(n)
      |> Enum.map(&Workloads.filter_shape/1)
      |> Enum.reduce(Filter.new(index: :map), fn {id, shape}, f ->
        Filter.add_shape(f, id, shape)
      end)

    {fn [change] -> [Filter.affected_shapes(f, change)] end, fn -> nil end}
  end

  defp name(:router), do: "ShapeRouter"
  defp name(:map), do: "Filter :map"

  # -- reopen: a persistent router of the largest size, in a VM of its own --

  defp reopen(n) do
    progress("## reopen: a persistent router of #{fmt_int(n)} template shapes")
    args = ["run", "--no-compile", "bench/router_reopen.exs", "#{n}", "templates"]
    env = [{"MIX_ENV", to_string(Mix.env())}]
    {out, status} = System.cmd("mix", args, env: env, stderr_to_stdout: true)

    with 0 <- status,
         [_, add] <- Regex.run(~r/one at a time: ([\d.]+) s/, out),
         [_, bytes] <- Regex.run(~r/catalog (\d+) bytes/, out),
         [_, s] <- Regex.run(~r/reopened: ([\d.]+) s/, out) do
      %{add_s: String.to_float(add), catalog: String.to_integer(bytes), s: String.to_float(s)}
    else
      _ -> raise "bench/router_reopen.exs #{n} templates failed (exit #{status}):\n#{out}"
    end
  end

  # -- tables --

  defp targets_table(n, m, families, reopen, ets) do
    r = m.router
    p = m.map
    rm = m.router_mem
    counted = rm.counted |> Map.values() |> Enum.sum()
    x = fn ns -> fmt_f(ns / ets, 2) end
    map_cell = fn f -> if p, do: f.(p), else: "–" end

    lines = [
      ["bytes/shape, RSS Δ", fmt_f(rm.rss / n, 1), "–"] ++
        [if(m.map_mem, do: fmt_f(m.map_mem.rss / n, 1), else: "–"), "–"] ++
        if(rm.rss > 0, do: verdict(rm.rss / n <= 150, "≤ 150 B"), else: ["≤ 150 B", "– (noise)"]),
      [
        "bytes/shape, counted (`metrics/1`)",
        if(rm.counted == %{}, do: "– (none reported)", else: fmt_f(counted / n, 1)),
        "–",
        "–",
        "–",
        "",
        ""
      ],
      ["add_shape µs/shape (one call each)", fmt_f(rm.add_us / n, 2), x.(rm.add_us / n * 1000)] ++
        [
          if(m.map_mem, do: fmt_f(m.map_mem.add_us / n, 2), else: "–"),
          if(m.map_mem, do: x.(m.map_mem.add_us / n * 1000), else: "–")
        ] ++ verdict(rm.add_us / n <= 2, "≤ 2 µs"),
      add_shapes_line(m.router_batch, n, x),
      ["per candidate ns (#{fmt_f(r.cand_per_hit, 1)} per change)"] ++
        [fmt_f(r.per_candidate_ns, 0), x.(r.per_candidate_ns)] ++
        [map_cell.(&fmt_f(&1.per_candidate_ns, 0)), map_cell.(&x.(&1.per_candidate_ns))] ++
        verdict(r.per_candidate_ns <= 0.1 * ets, "≤ 0.1x ETS"),
      ["per miss ns (route_many, 10 columns)", fmt_f(r.miss_ns, 0), x.(r.miss_ns)] ++
        [map_cell.(&fmt_f(&1.miss_ns, 0)), map_cell.(&x.(&1.miss_ns))] ++
        verdict(r.miss_ns <= 0.15 * ets, "≤ 0.15x ETS"),
      families.target_line ++ verdict(families.all_ns <= 4 * ets, "≤ 4x ETS"),
      ["reopen s (persistent)", fmt_f(reopen.s, 3), "–", "–", "–"] ++
        verdict(reopen.s <= 1, "≤ 1 s")
    ]

    columns = ["row", "ShapeRouter", "× ETS", "Filter :map", "× ETS", "target", "met"]

    """
    ### Issue 24's targets at #{fmt_int(n)} shapes#{if n < 1_000_000, do: " (the targets are for 1M)", else: ""}

    #{markdown(columns, lines)}
    Reopen: #{fmt_int(n)} template shapes added to a persistent router one call each in \
    #{fmt_f(reopen.add_s, 2)} s, catalog #{fmt_int(reopen.catalog)} bytes \
    (`mix run bench/router_reopen.exs #{n} templates`). Per candidate: the map filter's time \
    over the router's candidate count (it counts none of its own).
    """
  end

  defp add_shapes_line(%{skipped: why}, _n, _x),
    do: ["add_shapes µs/shape (one call)", "– (#{why})", "–", "–", "–", "", ""]

  defp add_shapes_line(%{add_us: us}, n, x),
    do:
      ["add_shapes µs/shape (one call)", fmt_f(us / n, 2), x.(us / n * 1000), "–", "–"] ++
        verdict(us / n <= 2, "≤ 2 µs")

  defp verdict(met, target), do: [target, if(met, do: "yes", else: "no")]

  defp by_size_table(measured, ets) do
    lines =
      for {n, m} <- measured,
          {label, r, mem} <- [
            {"ShapeRouter", m.router, m.router_mem},
            {"Filter :map", m.map, m.map_mem}
          ],
          r != nil do
        [
          fmt_int(n),
          label,
          fmt_f(mem.rss / n, 1),
          fmt_f(mem.add_us / n, 2),
          fmt_f(r.cand_per_hit, 1),
          fmt_f(r.matched, 1),
          fmt_f(r.per_candidate_ns, 0),
          fmt_f(r.per_candidate_ns / ets, 2),
          fmt_f(r.miss_ns, 0),
          fmt_f(r.miss_ns / ets, 2),
          fmt_f(r.hit_ns / 1000, 2),
          fmt_f(r.stream_ns / 1000, 2),
          fmt_f(r.stream_ns / ets, 1)
        ]
      end

    columns = [
      "shapes",
      "structure",
      "RSS Δ B/shape",
      "add_shape µs",
      "candidates/hit",
      "matches/hit",
      "per candidate ns",
      "× ETS",
      "per miss ns",
      "× ETS",
      "hit µs/change",
      "stream µs/change",
      "× ETS"
    ]

    """
    ### By shape count

    #{markdown(columns, lines)}
    Hit: inserts of users some shape has (their 24 shapes the candidates), miss: of users \
    none has, both through `route_many` in batches of #{@batch} (the map filter: \
    `affected_shapes/2` per change), best of #{@passes} passes over the same changes; stream: \
    the workload's changes in transactions of #{Workloads.txn_size()}. RSS Δ and add_shape: \
    each structure registered in a VM of its own (noisy below 100k shapes).
    """
  end

  # -- the plot: µs per change against shapes --

  defp plot(svg, measured, ets) do
    series = [
      {"ETS :set hit (the yardstick)", fn _ -> ets end},
      {"ShapeRouter, hit (~24 candidates)", fn m -> m.router.hit_ns end},
      {"ShapeRouter, miss", fn m -> m.router.miss_ns end},
      {"ShapeRouter, workload stream", fn m -> m.router.stream_ns end},
      {"Filter :map, workload stream", fn m -> m.map && m.map.stream_ns end}
    ]

    Plot.lines(svg,
      title: "ShapeRouter: route cost against template shapes (six templates, N/24 users)",
      xlabel: "shapes",
      ylabel: "µs per change",
      log: "xy",
      xtics: :counts,
      series:
        for {title, f} <- series do
          {title, for({n, m} <- measured, do: {n, f.(m) && f.(m) / 1000})}
        end
    )
  end
end
