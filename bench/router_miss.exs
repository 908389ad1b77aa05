# The per-miss row of issue 24 taken apart: `route_many` over inserts of users no shape has
# (10-column `todos` rows), beside an ETS `:set` hit of the same run, for routers that read
# more or fewer of a row's columns. One VM, no memory readings: quick to repeat A/B.
#
#   mix run bench/router_miss.exs [SHAPES]      (default 10,000; the workload's six templates)
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

  def run(n) do
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

    rows = [
      {"six templates (6 of 10 columns referenced)", shapes, misses},
      {"+ 1k shapes reading the other 4 (10 of 10)", shapes ++ seventh, misses},
      {"user_id = $1 only (1 of 10)", only_user, misses},
      {"six templates, rows of user_id only", shapes, narrow},
      {"six templates, updates (priority changed)", shapes, updates},
      {"six templates, hits (known users)", shapes, hits}
    ]

    for {label, shapes, changes} <- rows do
      ns = Report.in_process(fn -> miss_ns(shapes, changes) end)
      IO.puts("  #{String.pad_trailing(label, 46)} #{fmt(ns)} ns/change  #{fmt(ns / ets)}x ETS")
    end
  end

  defp miss_ns(shapes, changes) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())
    for {id, sql, params} <- shapes, do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)
    :ok = ShapeRouter.wait_idle(r)
    batches = Enum.chunk_every(changes, @batch)
    Enum.each(batches, &ShapeRouter.route_many(r, &1))

    best =
      Enum.min(
        for _ <- 1..@passes do
          :erlang.garbage_collect()
          t0 = System.monotonic_time(:nanosecond)
          Enum.each(batches, &ShapeRouter.route_many(r, &1))
          System.monotonic_time(:nanosecond) - t0
        end
      )

    best / length(changes)
  end

  defp fmt(x), do: :erlang.float_to_binary(x / 1, decimals: 2)

  defp load, do: File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")
end

n =
  case System.argv() do
    [n | _] -> String.to_integer(n)
    [] -> 10_000
  end

LsmIndex.Bench.RouterMiss.run(n)
