# A before/after harness for one core change: the ShapeRouter and the :lsm filter over N
# template shapes (bench/workloads.exs), µs per change of nine passes (min, median, all) over the 20k-change stream.
# Build one side, run, build the other, run:  N=1000000 mix run bench/filter_ab.exs
Code.require_file("bench/workloads.exs")
alias LsmIndex.Bench.Workloads
alias LsmIndex.{Filter, ShapeRouter}
n = String.to_integer(System.get_env("N", "1000000"))
changes = Workloads.changes(n)
txns = Workloads.transactions(changes)
{:ok, r} = ShapeRouter.new("b", Workloads.table(), Workloads.columns())

for {id, sql, params} <- Workloads.template_shapes(n),
    do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)

:ok = ShapeRouter.wait_idle(r)
rtx = Enum.map(txns, fn t -> Enum.map(t, &Workloads.router_change/1) end)

time = fn fun ->
  for _ <- 1..9 do
    {us, _} = :timer.tc(fn -> Enum.each(rtx, fun) end)
    Float.round(us / length(changes), 2)
  end
  |> Enum.sort()
  |> then(&"min #{hd(&1)} median #{Enum.at(&1, 4)} (#{Enum.join(&1, " ")})")
end

IO.puts("router route_many µs/change: #{time.(&ShapeRouter.route_many(r, &1))}")

f =
  Workloads.template_shapes(n)
  |> Enum.map(&Workloads.filter_shape/1)
  |> then(&Filter.add_shapes(Filter.new(index: :lsm), &1))

:ok = Filter.wait_idle(f)

time2 = fn fun ->
  for _ <- 1..9 do
    {us, _} = :timer.tc(fn -> Enum.each(txns, fun) end)
    Float.round(us / length(changes), 2)
  end
  |> Enum.sort()
  |> then(&"min #{hd(&1)} median #{Enum.at(&1, 4)} (#{Enum.join(&1, " ")})")
end

IO.puts("filter :lsm many µs/change: #{time2.(&Filter.affected_shapes_many(f, &1))}")
