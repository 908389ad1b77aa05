defmodule LsmIndex.Bench.RouterScaleFamilies do
  @moduledoc """
  The scanned families of `mix bench --only router` (issue 24): shapes no equality index
  serves, each family in a router of its own and then all three in one, over the workload's
  10-column `todos` rows (`bench/workloads.exs`) whose `priority` and `title` are drawn for
  these shapes. Sizes (`--quick`: 1/10 of each):

    * range - 10k `priority > a AND priority < a + 11` (10 values wide), `a` uniform over a
      domain of 5 × shapes (±25,000 at 10k: int2), so a change's priority falls in ~2 ranges
    * prefix - 10k `title LIKE 'p%'`, `p` 2 to 6 random lowercase letters (a fifth of each
      length); titles open with 8 random lowercase letters: ~3 matches per change at 10k
      (the 2-letter prefixes: 2,000 over 676)
    * infix - 1k `title ILIKE '%x%'`, `x` 3 to 5 random lowercase letters; titles are
      `<8 lowercase letters> <6 letters, each upper case 1 time in 2> <number>`: ILIKE folds
      the second word; ~0.25 matches per change at 1k

  Each router routes the same changes through `route_many/2` in batches of 100, best of 3
  passes: µs per change and × an ETS hit, the matches per change it answered (the
  selectivity, as measured), and how many of its shapes `metrics/1` says are scanned. The
  map filter (`affected_shapes/2`, one pass over the first 1/10 of the changes) runs beside
  and must answer as the router does: a difference raises, naming the change.
  """

  import LsmIndex.Bench.Report,
    only: [progress: 1, fmt_f: 2, fmt_int: 1, markdown: 2, in_process: 1]

  alias LsmIndex.Bench.Workloads
  alias LsmIndex.{Filter, ShapeRouter}

  @batch 100
  @passes 3
  # matches per change the range family is laid out for
  @range_k 2
  @range_width 10
  # the widest domain int2 holds around 0
  @int2_domain 65_000

  @doc "The family sizes and changes: full, or `--quick` (1/10)."
  def sizes(true), do: %{range: 1_000, prefix: 1_000, infix: 100, rows: 1_000, filter_rows: 100}

  def sizes(false),
    do: %{range: 10_000, prefix: 10_000, infix: 1_000, rows: 2_000, filter_rows: 200}

  @doc """
  Measures every family and all three together: `%{table: markdown, all_ns: ns per change of
  the three together, target_line: the targets table's row}`.
  """
  def run(s, ets) do
    domain = min(s.range * @range_width / @range_k, @int2_domain) |> round()
    st = :rand.seed_s(:exsss, {24, 7, 1})
    {range, st} = range_shapes(s.range, domain, st)
    {prefix, st} = pattern_shapes(s.prefix, s.range, 2..6, "title LIKE '~s%'", st)
    {infix, st} = pattern_shapes(s.infix, s.range + s.prefix, 3..5, "title ILIKE '%~s%'", st)
    {changes, _} = changes(s.rows, domain, st)
    family = fn id -> family(id, s) end

    rows =
      for {name, shapes} <- [
            {"range", range},
            {"prefix", prefix},
            {"infix", infix},
            {"all three", range ++ prefix ++ infix}
          ] do
        progress("## scanned families: #{name}, #{fmt_int(length(shapes))} shapes")
        router = in_process(fn -> measure_router(shapes, changes, family) end)
        filter_changes = Enum.take(changes, s.filter_rows)
        want = Enum.take(router.answers, s.filter_rows)
        map_ns = in_process(fn -> measure_map(name, shapes, filter_changes, want) end)
        Map.merge(router, %{name: name, shapes: length(shapes), map_ns: map_ns})
      end

    all = List.last(rows)

    %{
      table: table(rows, s, domain, ets),
      all_ns: all.ns,
      target_line: [
        "scanned families µs/change (#{fmt_int(all.shapes)} shapes)",
        fmt_f(all.ns / 1000, 2),
        fmt_f(all.ns / ets, 1),
        fmt_f(all.map_ns / 1000, 2),
        fmt_f(all.map_ns / ets, 1)
      ]
    }
  end

  # -- shapes and changes --

  defp range_shapes(count, domain, st) do
    low = -div(domain, 2)

    Enum.map_reduce(0..(count - 1)//1, st, fn i, st ->
      {a, st} = :rand.uniform_s(domain - @range_width, st)
      a = low + a - 1
      {{i, "priority > #{a} AND priority < #{a + @range_width + 1}", []}, st}
    end)
  end

  defp pattern_shapes(count, first_id, lengths, format, st) do
    lengths = Enum.to_list(lengths)

    Enum.map_reduce(0..(count - 1)//1, st, fn i, st ->
      {literal, st} = letters(Enum.at(lengths, rem(i, length(lengths))), st)
      {{first_id + i, :io_lib.format(format, [literal]) |> IO.iodata_to_binary(), []}, st}
    end)
  end

  defp changes(count, domain, st) do
    low = -div(domain, 2)

    Workloads.inserts(24, count, :known)
    |> Enum.map_reduce(st, fn {:insert, table, row}, st ->
      {p, st} = :rand.uniform_s(domain, st)
      {first, st} = letters(8, st)
      {second, st} = letters(6, st)
      {second, st} = mixed_case(second, st)
      {n, st} = :rand.uniform_s(10_000, st)
      title = "#{first} #{second} #{n}"
      {{:insert, table, %{row | "priority" => "#{low + p - 1}", "title" => title}}, st}
    end)
  end

  defp letters(k, st) do
    {chars, st} = Enum.map_reduce(1..k, st, fn _, st -> :rand.uniform_s(26, st) end)
    {chars |> Enum.map(&(&1 + ?a - 1)) |> List.to_string(), st}
  end

  defp mixed_case(word, st) do
    {chars, st} =
      word
      |> String.to_charlist()
      |> Enum.map_reduce(st, fn c, st ->
        {r, st} = :rand.uniform_s(2, st)
        {if(r == 1, do: c - 32, else: c), st}
      end)

    {List.to_string(chars), st}
  end

  defp family(id, s) do
    cond do
      id < s.range -> :range
      id < s.range + s.prefix -> :prefix
      true -> :infix
    end
  end

  # -- one router, one map filter --

  defp measure_router(shapes, changes, family) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())

    {us, _} =
      :timer.tc(fn ->
        for {id, sql, params} <- shapes,
            do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)
      end)

    :ok = ShapeRouter.wait_idle(r)
    batches = changes |> Enum.map(&Workloads.router_change/1) |> Enum.chunk_every(@batch)
    answers = Enum.flat_map(batches, &ShapeRouter.route_many(r, &1))

    best =
      Enum.min(
        for _ <- 1..@passes do
          :erlang.garbage_collect()
          t0 = System.monotonic_time(:nanosecond)
          Enum.each(batches, &ShapeRouter.route_many(r, &1))
          System.monotonic_time(:nanosecond) - t0
        end
      )

    per_family = answers |> List.flatten() |> Enum.frequencies_by(family)

    %{
      ns: best / length(changes),
      answers: answers,
      matches: Map.new(per_family, fn {f, k} -> {f, k / length(changes)} end),
      scanned: ShapeRouter.metrics(r).shapes_scanned,
      register_s: us / 1.0e6
    }
  end

  defp measure_map(name, shapes, changes, want) do
    f =
      shapes
      |> Enum.map(&Workloads.filter_shape/1)
      |> Enum.reduce(Filter.new(index: :map), fn {id, shape}, f ->
        Filter.add_shape(f, id, shape)
      end)

    :erlang.garbage_collect()
    t0 = System.monotonic_time(:nanosecond)
    got = Enum.map(changes, &Filter.affected_shapes(f, &1))
    ns = System.monotonic_time(:nanosecond) - t0

    for {{change, w}, g} <- Enum.zip(Enum.zip(changes, want), got),
        Enum.sort(w) != Enum.sort(Enum.to_list(g)) do
      raise "#{name}: the router and Filter :map disagree on #{inspect(change, limit: 20)}: " <>
              "router #{inspect(Enum.sort(w))}, Filter :map #{inspect(Enum.sort(Enum.to_list(g)))}"
    end

    ns / length(changes)
  end

  # -- the table --

  defp table(rows, s, domain, ets) do
    lines =
      for r <- rows do
        matches =
          [:range, :prefix, :infix]
          |> Enum.filter(&Map.has_key?(r.matches, &1))
          |> Enum.map_join(" + ", &fmt_f(r.matches[&1], 2))

        [
          r.name,
          fmt_int(r.shapes),
          fmt_int(r.scanned),
          if(matches == "", do: "0", else: matches),
          fmt_f(r.register_s, 2),
          fmt_f(r.ns / 1000, 2),
          fmt_f(r.ns / ets, 1),
          fmt_f(r.map_ns / 1000, 2),
          fmt_f(r.map_ns / ets, 1)
        ]
      end

    columns = [
      "family",
      "shapes",
      "scanned",
      "matches/change",
      "register s",
      "ShapeRouter µs/change",
      "× ETS",
      "Filter :map µs/change",
      "× ETS"
    ]

    """
    ### Scanned families (a router each, then one of all three)

    #{markdown(columns, lines)}
    Range: `priority > a AND priority < a + #{@range_width + 1}`, `a` and the changes' \
    priority uniform over #{fmt_int(domain)} values (laid out for #{@range_k} matches per \
    change); prefix: `title LIKE 'p%'`, 2-6 letters; infix: `title ILIKE '%x%'`, 3-5 letters. \
    #{fmt_int(s.rows)} inserts of 10-column rows through `route_many` in batches of #{@batch}, \
    best of #{@passes}; Filter :map: `affected_shapes/2` over the first #{fmt_int(s.filter_rows)}, \
    checked against the router's answers. Matches/change: per family, as the router answered. \
    Scanned: `metrics/1`'s `shapes_scanned`.
    """
  end
end
