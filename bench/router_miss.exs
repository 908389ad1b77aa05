# The per-miss row of issue 24 taken apart: `route_many` over inserts of users no shape has
# (10-column `todos` rows), beside an ETS `:set` hit of the same run, for routers that read
# more or fewer of a row's columns. One VM, no memory readings: quick to repeat A/B.
#
#   mix run bench/router_miss.exs [SHAPES] [ROWS]   (default 10,000; the workload's six
#                                                    templates; ROWS: a subset of the rows
#                                                    below by number, e.g. 1,7)
#
# Columns, ns per change (and x the ETS hit): `route_many` of the change terms (list); the
# same changes through `route_many_packed` of a binary packed before the clock starts (packed:
# what a caller with the binary pays, issue 25's per-miss target); `pack_changes` + packed
# route (pack+route: from the same maps, the packing timed).
#
# Rows:
#   * six templates        - the workload (`bench/workloads.exs`): 6 of 10 columns referenced
#   * + all columns        - plus 1,000 shapes of a seventh template reading the other four
#   * user_id only         - `user_id = $1` shapes only: 1 column referenced (the probe's)
#   * six templates, 1-key rows - the workload's router, rows holding only `user_id`
#   * six templates, updates - the workload's router, updates of the miss rows (`priority`
#     changed)
#   * six templates, hits - the workload's router, inserts of known users (~24 candidates:
#     what reading every cell costs beside the misses)
#   * six templates, 1% hits - the misses with one change in a hundred of a known user
#
# Shapes are registered with `add_shapes/2` (at 1M, ~3 s a router).
#
# Each: batches of 100 changes per `route_many` call, best of 7 passes over 2,000 changes.
Code.require_file("bench/report.exs")
Code.require_file("bench/workloads.exs")

defmodule LsmIndex.Bench.RouterMiss do
  alias LsmIndex.Bench.{Report, Workloads}
  alias LsmIndex.ShapeRouter

  @rows 2_000
  @batch 100
  @passes 7
  @seventh "user_id = $1 AND id > 0 AND project_id <> 7 AND " <>
             "created_at > '2023-01-01 00:00:00+00' AND NOT done"

  def run(n, only) do
    ets = Report.in_process(fn -> Report.ets_hit_ns(50_000) end)
    IO.puts("#{Report.ets_yardstick(ets)}; #{n} shapes; load #{load()}")
    misses = Workloads.inserts(n, @rows, :unknown) |> Enum.map(&Workloads.router_change/1)
    hits = Workloads.inserts(n, @rows, :known) |> Enum.map(&Workloads.router_change/1)
    narrow = for {:insert, row} <- misses, do: {:insert, Map.take(row, ["user_id"])}
    updates = for {:insert, row} <- misses, do: {:update, row, %{row | "priority" => "5"}}
    shapes = Workloads.template_shapes(n)
    users = Workloads.users(n)
    seventh = for i <- 0..999, do: {n + i, @seventh, ["#{rem(i, users)}"]}
    only_user = for {id, _sql, [u | _]} <- shapes, do: {id, "user_id = $1", [u]}
    one_percent = Enum.zip_with(misses, hits, fn m, h -> {m, h} end)

    one_percent =
      for {{m, h}, i} <- Enum.with_index(one_percent), do: if(rem(i, 100) == 0, do: h, else: m)

    rows = [
      {"six templates (6 of 10 columns referenced)", shapes, misses},
      {"+ 1k shapes reading the other 4 (10 of 10)", shapes ++ seventh, misses},
      {"user_id = $1 only (1 of 10)", only_user, misses},
      {"six templates, rows of user_id only", shapes, narrow},
      {"six templates, updates (priority changed)", shapes, updates},
      {"six templates, hits (known users)", shapes, hits},
      {"six templates, 1% hits", shapes, one_percent}
    ]

    IO.puts(
      "  #{String.pad_trailing("ns/change (x ETS)", 46)} #{String.pad_leading("list", 15)}" <>
        "#{String.pad_leading("packed", 15)}#{String.pad_leading("pack+route", 15)}"
    )

    for {{label, shapes, changes}, i} <- Enum.with_index(rows, 1), only == [] or i in only do
      [list, packed, both] = Report.in_process(fn -> miss_ns(shapes, changes) end)
      cell = fn ns -> String.pad_leading("#{fmt(ns)} (#{fmt(ns / ets)})", 15) end
      IO.puts("  #{String.pad_trailing(label, 46)} #{cell.(list)}#{cell.(packed)}#{cell.(both)}")
    end
  end

  # ns per change: route_many of the terms, route_many_packed of prebuilt binaries, and
  # pack_changes + route_many_packed (each best of @passes); the answers checked equal first
  defp miss_ns(shapes, changes) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())

    shapes
    |> Enum.map(fn {id, sql, params} -> {id, sql, params} end)
    |> Enum.chunk_every(100_000)
    |> Enum.each(&(:ok = ShapeRouter.add_shapes(r, &1)))

    :ok = ShapeRouter.wait_idle(r)
    batches = Enum.chunk_every(changes, @batch)
    packed = Enum.map(batches, &ShapeRouter.pack_changes(r, &1))
    listed = Enum.map(batches, &ShapeRouter.route_many(r, &1))
    ^listed = Enum.map(packed, &ShapeRouter.route_many_packed(r, &1))

    [
      fn -> Enum.each(batches, &ShapeRouter.route_many(r, &1)) end,
      fn -> Enum.each(packed, &ShapeRouter.route_many_packed(r, &1)) end,
      fn ->
        Enum.each(batches, &ShapeRouter.route_many_packed(r, ShapeRouter.pack_changes(r, &1)))
      end
    ]
    |> Enum.map(fn pass -> best_ns(pass) / length(changes) end)
  end

  defp best_ns(pass) do
    Enum.min(
      for _ <- 1..@passes do
        :erlang.garbage_collect()
        t0 = System.monotonic_time(:nanosecond)
        pass.()
        System.monotonic_time(:nanosecond) - t0
      end
    )
  end

  defp fmt(x), do: :erlang.float_to_binary(x / 1, decimals: 2)

  defp load, do: File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")
end

{n, only} =
  case System.argv() do
    [n, rows | _] ->
      {String.to_integer(n), rows |> String.split(",") |> Enum.map(&String.to_integer/1)}

    [n] ->
      {String.to_integer(n), []}

    [] ->
      {10_000, []}
  end

LsmIndex.Bench.RouterMiss.run(n, only)
