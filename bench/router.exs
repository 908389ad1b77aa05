defmodule LsmIndex.Bench.Router do
  @moduledoc """
  `mix bench --only router`: `LsmIndex.ShapeRouter` against `LsmIndex.Filter` with `:map`
  indexes, on the same shapes and changes, in one run.

  Shapes (per size N): 90% `user_id = v` on distinct values, 10% in groups of 8 sharing a
  value (fan-out), every third of them with `AND status IN ('open', 'late')`; plus 5 shapes
  without an indexable conjunct (evaluated on every change). Changes are inserts of 5-column
  records (Postgres text).

  Columns:
    * build - adding every shape, one call each (SQL text for both); for the router, until
      its index's background compaction is idle
    * miss / hit / fan-out - one `route` (`affected_shapes`) call, ns, p50 and p99: a
      `user_id` no shape has, one with 1 shape, one with 8 shapes (each call timed alone;
      the timer's cost is in the header)
    * 1% / 10% - changes of which that share hit a shape: changes/s through `route` one at a
      time, and through `route_many` in transactions of 100 (`Filter`: one call per change)

  The row "ShapeRouter, no scans" is the same router after removing its 5 unindexable
  shapes: every change evaluates those, so the difference is their cost.

  A second table per size runs a realistic mix over an app's `todos` table (int8 keys, an
  enum status, int2 priority, timestamptz, text, numeric): 40% `user_id = $1`, 20%
  `project_id IN ($1, $2) AND status IN ('open', 'late')`, 15% `lower(email) = $1`, 15%
  `user_id = a OR project_id = b`, 10% `project_id = $1 AND created_at >= '2024-01-01' AND
  priority BETWEEN 2 AND 4`, plus 5 unindexable shapes (arithmetic on numeric, ILIKE,
  a timestamp range, `length()`, `coalesce()`). Miss: no shape's user, project or email;
  hit: one user's shape; fan-out: a project (the shapes of a project and its neighbour).

  Then `bench/router_scale.exs` (`LsmIndex.Bench.RouterScale`, alone: `mix bench --only
  router_scale`): issue 24's rows over the six templates of `bench/workloads.exs` at up to 1M
  shapes, beside an ETS hit of the same run, and a plot.
  """

  import LsmIndex.Bench.Report,
    only: [progress: 1, fmt_f: 2, fmt_int: 1, markdown: 2, in_process: 1]

  alias LsmIndex.{Filter, ShapeRouter}

  @table {"public", "todos"}
  @cols [
    {"id", :int8},
    {"user_id", :int8},
    {"status", :text},
    {"score", :float8},
    {"note", :text}
  ]
  @unindexed [
    "status <> 'archived' AND score > 100",
    "note LIKE 'urgent%'",
    "user_id > 4000000000 OR score < -1000",
    "NOT (status IN ('open', 'late', 'done'))",
    "note ILIKE '%zzz%' AND score IS NOT NULL"
  ]
  @realistic_cols [
    {"id", :int8},
    {"user_id", :int8},
    {"project_id", :int8},
    {"status", {:enum, ["open", "late", "done", "archived"]}},
    {"priority", :int2},
    {"created_at", :timestamptz},
    {"email", :text},
    {"title", :text},
    {"price", :numeric}
  ]
  @realistic_unindexed [
    "price * 1.2 > 100000",
    "title ILIKE '%urgent%'",
    "priority > 4 AND created_at < '2020-01-01 00:00:00+00'",
    "length(title) > 200",
    "coalesce(price, 0) < 0"
  ]
  @fanout 8
  @fanout_base 1_000_000_000
  @txn 100

  @doc "Changes per `route_many` call of the throughput columns (`bench/plots.exs`)."
  def txn_size, do: @txn

  def run(opts) do
    quick = Keyword.fetch!(opts, :quick)
    sizes = if quick, do: [1_000, 10_000], else: [1_000, 100_000, 1_000_000]
    samples = if quick, do: 5_000, else: 50_000
    stream = if quick, do: 20_000, else: 200_000

    header =
      "# mix bench#{if quick, do: " --quick", else: ""} --only router: ShapeRouter vs Filter (:map)\n"

    IO.puts(header <> "\n" <> opts[:machine])

    tables =
      for n <- sizes do
        table = bench(n, samples, stream)
        IO.puts(table)
        table
      end

    # issue 24's rows: template shapes at scale (bench/router_scale.exs)
    scale = apply(LsmIndex.Bench.RouterScale, :run, [opts])
    Enum.join([header, opts[:machine] | tables] ++ [scale], "\n")
  end

  defp bench(n, samples, stream) do
    Enum.map_join([:synthetic, :realistic], "\n", &bench(&1, n, samples, stream))
  end

  defp bench(workload, n, samples, stream) do
    title =
      case workload do
        :synthetic ->
          "## #{fmt_int(n)} shapes (+ #{length(@unindexed)} unindexable)"

        :realistic ->
          "## #{fmt_int(n)} shapes, realistic mix (+ #{length(@realistic_unindexed)} unindexable)"
      end

    progress(title)

    rows =
      for kind <- [:router, :filter],
          row <- in_process(fn -> measure(workload, kind, n, samples, stream) end),
          do: row

    columns = [
      "structure",
      "build s",
      "miss p50/p99 ns",
      "hit p50/p99 ns",
      if(workload == :synthetic,
        do: "fan-out #{@fanout} p50/p99 ns",
        else: "fan-out (a project) p50/p99 ns"
      ),
      "1% route/s",
      "1% route_many/s",
      "10% route/s",
      "10% route_many/s"
    ]

    lines =
      for r <- rows do
        [
          r.name,
          if(r.build_s, do: fmt_f(r.build_s, 2), else: "–"),
          "#{r.miss.p50} / #{r.miss.p99}",
          "#{r.hit.p50} / #{r.hit.p99}",
          "#{r.fanout.p50} / #{r.fanout.p99}",
          fmt_int(r.one.route),
          if(r.one.many, do: fmt_int(r.one.many), else: "–"),
          fmt_int(r.ten.route),
          if(r.ten.many, do: fmt_int(r.ten.many), else: "–")
        ]
      end

    notes = for r <- rows, r.note != nil, do: "- #{r.name}: #{r.note}"
    Enum.join([title, "", markdown(columns, lines) | notes], "\n") <> "\n"
  end

  # -- shapes --

  # {id, sql, params}: ids 0..n-1, then the unindexable ones
  defp shapes(:synthetic, n), do: for({id, sql} <- shapes(n), do: {id, sql, []})

  defp shapes(:realistic, n) do
    indexed =
      for id <- 0..(n - 1) do
        p = div(id, 8)

        case rem(id, 20) do
          r when r < 8 ->
            {id, "user_id = $1", ["#{id}"]}

          r when r < 12 ->
            {id, "project_id IN ($1, $2) AND status IN ('open', 'late')", ["#{p}", "#{p + 1}"]}

          r when r < 15 ->
            {id, "lower(email) = $1", ["user#{id}@example.com"]}

          r when r < 18 ->
            {id, "user_id = #{id} OR project_id = #{@fanout_base + id}", []}

          _ ->
            {id, "project_id = $1 AND created_at >= '2024-01-01' AND priority BETWEEN 2 AND 4",
             ["#{p}"]}
        end
      end

    unindexed =
      @realistic_unindexed |> Enum.with_index(n) |> Enum.map(fn {sql, id} -> {id, sql, []} end)

    indexed ++ unindexed
  end

  # {id, sql}: ids 0..n-1, then the unindexable ones
  defp shapes(n) do
    singles = div(n * 9, 10)

    indexed =
      for id <- 0..(n - 1) do
        value = if id < singles, do: id, else: @fanout_base + div(id - singles, @fanout)
        residual = if rem(id, 3) == 0, do: " AND status IN ('open', 'late')", else: ""
        {id, "user_id = #{value}#{residual}"}
      end

    unindexed = @unindexed |> Enum.with_index(n) |> Enum.map(fn {sql, id} -> {id, sql} end)
    indexed ++ unindexed
  end

  defp singles(n), do: div(n * 9, 10)
  defp fanout_values(n), do: max(div(n - singles(n), @fanout), 1)

  defp record(user_id, i) do
    %{
      "id" => Integer.to_string(i),
      "user_id" => Integer.to_string(user_id),
      "status" => "open",
      "score" => "1.5",
      "note" => "row #{rem(i, 100)}"
    }
  end

  defp miss_value(i), do: 2_000_000_000 + i
  defp hit_value(n), do: :rand.uniform(singles(n)) - 1
  defp fanout_value(n), do: @fanout_base + :rand.uniform(fanout_values(n)) - 1

  defp realistic_record(user_id, project_id, email, i) do
    %{
      "id" => Integer.to_string(i),
      "user_id" => Integer.to_string(user_id),
      "project_id" => Integer.to_string(project_id),
      "status" => Enum.at(["open", "late", "done", "archived"], rem(i, 4)),
      "priority" => Integer.to_string(rem(i, 5)),
      "created_at" => "2024-03-0#{rem(i, 9) + 1} 10:00:00+00",
      "email" => email,
      "title" => "task #{i}",
      "price" => "12.50"
    }
  end

  # the record of a change: :miss (no shape's user, project or email), :hit (one user's
  # shape), :fanout (a project's shapes)
  defp record_of(:synthetic, :miss, _n, i), do: record(miss_value(i), i)
  defp record_of(:synthetic, :hit, n, i), do: record(hit_value(n), i)
  defp record_of(:synthetic, :fanout, n, i), do: record(fanout_value(n), i)

  defp record_of(:realistic, :miss, _n, i),
    do: realistic_record(2_000_000_000 + i, 3_000_000_000 + i, "nobody#{i}@example.org", i)

  defp record_of(:realistic, :hit, n, i) do
    # an id whose shape is `user_id = $1`
    id = (:rand.uniform(max(div(n, 20), 1)) - 1) * 20 + :rand.uniform(8) - 1
    realistic_record(id, 3_000_000_000 + i, "nobody#{i}@example.org", i)
  end

  defp record_of(:realistic, :fanout, n, i),
    do: realistic_record(2_000_000_000 + i, :rand.uniform(max(div(n, 8), 1)), "n#{i}@x.org", i)

  defp changes(workload, n, count, share) do
    for i <- 1..count do
      kind = if :rand.uniform() < share, do: :hit, else: :miss
      {:insert, record_of(workload, kind, n, i)}
    end
  end

  # -- one structure --

  defp measure(workload, kind, n, samples, stream) do
    :rand.seed(:exsss, {1, 2, 3})
    progress("  #{kind}: building")
    {build_us, built} = :timer.tc(fn -> build(workload, kind, n) end)
    name = if kind == :router, do: "ShapeRouter", else: "Filter :map"
    row = routes(workload, name, built, n, samples, stream)
    row = %{row | build_s: build_us / 1.0e6, note: built.note.()}

    case built.drop_scans do
      nil ->
        [row]

      drop_scans ->
        # the same router without its unindexable shapes: what they cost every change
        drop_scans.()
        [row, routes(workload, "ShapeRouter, no scans", built, n, samples, stream)]
    end
  end

  defp routes(workload, name, %{route: route, many: many}, n, samples, stream) do
    progress("  #{name}: latency")
    miss = latency(route, samples, &record_of(workload, :miss, n, &1))
    hit = latency(route, samples, &record_of(workload, :hit, n, &1))
    fanout = latency(route, samples, &record_of(workload, :fanout, n, &1))
    progress("  #{name}: throughput")
    one = throughput(route, many, changes(workload, n, stream, 0.01))
    ten = throughput(route, many, changes(workload, n, stream, 0.10))

    %{
      name: name,
      build_s: nil,
      miss: miss,
      hit: hit,
      fanout: fanout,
      one: one,
      ten: ten,
      note: nil
    }
  end

  # route: one change; many: a transaction (nil: none); note: a line for after the table;
  # drop_scans: removes the unindexable shapes (nil: not measured)
  defp build(workload, :router, n) do
    {:ok, r} = ShapeRouter.new("bench", @table, cols(workload))

    for {id, sql, params} <- shapes(workload, n),
        do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)

    # measured idle: what the index's background compaction costs routes is the compaction
    # section's subject
    :ok = ShapeRouter.wait_idle(r)

    %{
      route: fn change -> ShapeRouter.route(r, change) end,
      many: fn changes -> ShapeRouter.route_many(r, changes) end,
      note: fn -> metrics_note(ShapeRouter.metrics(r)) end,
      drop_scans: fn ->
        for {_sql, id} <- Enum.with_index(unindexed(workload), n),
            do: :ok = ShapeRouter.remove_shape(r, id)
      end
    }
  end

  defp build(workload, :filter, n) do
    cols = Map.new(cols(workload))

    f =
      Enum.reduce(shapes(workload, n), Filter.new(index: :map), fn {id, sql, params}, f ->
        Filter.add_shape(f, id, %{table: @table, columns: cols, where: sql, params: params})
      end)

    %{
      route: fn {:insert, rec} -> Filter.affected_shapes(f, {:insert, @table, rec}) end,
      many: nil,
      note: fn -> nil end,
      drop_scans: nil
    }
  end

  defp cols(:synthetic), do: @cols
  defp cols(:realistic), do: @realistic_cols
  defp unindexed(:synthetic), do: @unindexed
  defp unindexed(:realistic), do: @realistic_unindexed

  # the router's own counters, over everything this process routed
  defp metrics_note(m) do
    "#{fmt_int(m.changes_routed)} changes: presence filter passed #{fmt_f(m.presence_hit_rate * 100, 1)}% " <>
      "(#{fmt_int(m.presence_passes)} of #{fmt_int(m.presence_probes)} probes), " <>
      "false positives #{fmt_f(m.prefilter_false_positive_rate * 100, 2)}%, " <>
      "#{fmt_f(m.candidates_per_change, 3)} candidates and " <>
      "#{fmt_f(m.predicate_evaluations / max(m.changes_routed, 1), 2)} evaluations per change; " <>
      "in-NIF route time mean #{fmt_f(m.mean_route_ns, 0)} ns, p50 <= #{m.p50_route_ns}, p99 <= #{m.p99_route_ns}"
  end

  defp latency(route, samples, record_of) do
    changes = for i <- 1..samples, do: {:insert, record_of.(i)}

    times =
      for c <- changes do
        t0 = System.monotonic_time(:nanosecond)
        route.(c)
        System.monotonic_time(:nanosecond) - t0
      end

    sorted = times |> Enum.sort() |> List.to_tuple()
    at = fn p -> elem(sorted, min(tuple_size(sorted) - 1, trunc(p * tuple_size(sorted)))) end
    %{p50: at.(0.5), p99: at.(0.99)}
  end

  defp throughput(route, many, changes) do
    count = length(changes)
    {us, _} = :timer.tc(fn -> Enum.each(changes, route) end)

    many_rate =
      if many do
        txns = Enum.chunk_every(changes, @txn)
        {us, _} = :timer.tc(fn -> Enum.each(txns, many) end)
        round(count / (us / 1.0e6))
      end

    %{route: round(count / (us / 1.0e6)), many: many_rate}
  end
end
