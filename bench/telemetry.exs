# The cost of LsmIndex.Telemetry's hooks (`mix run bench/telemetry.exs`): spans off (the
# :persistent_term flag false: the host has no :telemetry), then on with a stand-in
# :telemetry whose execute/3 does one ETS lookup, as the real one does with no handler
# attached (defined here unless a real one is loaded), route/2 sampled 1 in 100 and then
# every call. Best of 5 loops of 200,000 calls each, ns per call; indicative only (a loop's
# own cost is the first row; other work on the machine moves every figure).

alias LsmIndex.{ShapeRouter, Telemetry}

n = 200_000
{:ok, router} = ShapeRouter.new("t", {"public", "todos"}, [{"id", :int8}, {"user_id", :int8}])
for i <- 1..1000, do: :ok = ShapeRouter.add_shape(router, i, "user_id = #{i}")
change = {:insert, %{"id" => "1", "user_id" => "7"}}
{:ok, index} = LsmIndex.new()
:ok = LsmIndex.add_many(index, for(i <- 1..10_000, do: {i, rem(i, 100)}))
keys = Enum.to_list(1..10)
noop = fn _, _ -> :ok end

time = fn label, f ->
  for _ <- 1..2, do: Enum.each(1..div(n, 10), fn _ -> f.() end)
  runs = for _ <- 1..5, do: elem(:timer.tc(fn -> Enum.each(1..n, fn _ -> f.() end) end), 0)
  ns = Enum.min(runs) * 1000 / n

  IO.puts(
    String.pad_trailing(label, 48) <>
      String.pad_leading(:erlang.float_to_binary(ns, decimals: 1), 8) <> " ns"
  )
end

run = fn ->
  time.("a no-op called directly (the loop)", fn -> noop.(router, change) end)

  time.("Telemetry.route/3 hook around the no-op", fn -> Telemetry.route(router, change, noop) end)

  time.("Telemetry.lookup_many/3 hook around the no-op", fn ->
    Telemetry.lookup_many(index, keys, noop)
  end)

  time.("Native.router_route/2 (no hook)", fn ->
    LsmIndex.Native.router_route(router.ref, change)
  end)

  time.("ShapeRouter.route/2", fn -> ShapeRouter.route(router, change) end)
  time.("LsmIndex.lookup_many/2, 10 keys", fn -> LsmIndex.lookup_many(index, keys) end)

  time.("ShapeRouter.route_many/2, 10 changes", fn ->
    ShapeRouter.route_many(router, List.duplicate(change, 10))
  end)
end

IO.puts("-- spans off")
:persistent_term.put(:lsm_index_telemetry, false)
run.()

unless Code.ensure_loaded?(:telemetry) do
  :ets.new(:telemetry_stand_in, [:named_table, :public, :set, read_concurrency: true])

  Code.compile_string("""
  defmodule :telemetry do
    def execute(event, _measurements, _metadata) do
      _ = :ets.lookup(:telemetry_stand_in, event)
      :ok
    end
  end
  """)
end

Application.put_env(:lsm_index, :telemetry_route_sample, 100)
true = Telemetry.refresh()
IO.puts("-- spans on, route/2 sampled 1 in 100")
run.()

Application.put_env(:lsm_index, :telemetry_route_sample, 1)
true = Telemetry.refresh()
IO.puts("-- spans on, every route/2 spanned")
time.("Telemetry.route/3 hook around the no-op", fn -> Telemetry.route(router, change, noop) end)
time.("ShapeRouter.route/2", fn -> ShapeRouter.route(router, change) end)
