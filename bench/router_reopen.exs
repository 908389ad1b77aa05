# Reopen time of a persistent ShapeRouter with 1M shapes (DESIGN.md, "Persistent routers"):
#   mix run bench/router_reopen.exs [SHAPES] [simple|templates]
# simple (default): `user_id = i`, a third of them `AND status IN ('open', 'late')`, over 3
# columns; templates: the six templates of bench/workloads.exs over its 10-column `todos`
# (issue 24; `mix bench --only router` runs it so). The shapes are made before the clock
# starts; each is added in a call of its own. The close writes the router snapshot
# (`router.snap`), which the first reopen restores; the second reopen, with the snapshot
# removed, replays the whole catalog (as every reopen did before the snapshot).
Code.require_file("bench/workloads.exs")
alias LsmIndex.Bench.Workloads
alias LsmIndex.ShapeRouter

{n, kind} =
  case System.argv() do
    [] -> {1_000_000, "simple"}
    [n] -> {String.to_integer(n), "simple"}
    [n, kind | _] when kind in ["simple", "templates"] -> {String.to_integer(n), kind}
  end

{cols, shapes, probe} =
  case kind do
    "simple" ->
      shapes =
        for i <- 0..(n - 1) do
          residual = if rem(i, 3) == 0, do: " AND status IN ('open', 'late')", else: ""
          {i, "user_id = #{i}#{residual}", []}
        end

      {[{"id", :int8}, {"user_id", :int8}, {"status", :text}], shapes,
       {:insert, %{"user_id" => "5", "status" => "open"}}}

    "templates" ->
      [change] = Workloads.inserts(n, 1, :known)
      {Workloads.columns(), Workloads.template_shapes(n), Workloads.router_change(change)}
  end

dir = Path.join(System.tmp_dir!(), "router_reopen_#{System.unique_integer([:positive])}")
{:ok, r} = ShapeRouter.new("bench", "todos", cols, path: dir)

{us, _} =
  :timer.tc(fn ->
    for {id, sql, params} <- shapes, do: :ok = ShapeRouter.add_shape(r, id, sql, params: params)
  end)

size = File.stat!(Path.join(dir, "shapes.log")).size
IO.puts("added #{n} shapes one at a time: #{Float.round(us / 1.0e6, 3)} s; catalog #{size} bytes")
routed = ShapeRouter.route(r, probe)
:ok = ShapeRouter.close(r)
{us, {:ok, r}} = :timer.tc(fn -> ShapeRouter.new("bench", "todos", cols, path: dir) end)
IO.puts("reopened: #{Float.round(us / 1.0e6, 3)} s")
# the reopened router routes as the one closed did
^routed = ShapeRouter.route(r, probe)
if kind == "simple", do: [5] = routed
if routed == [], do: raise("the probe change routed to no shape")
:ok = ShapeRouter.close(r)
File.rm!(Path.join(dir, "router.snap"))
{us, {:ok, r}} = :timer.tc(fn -> ShapeRouter.new("bench", "todos", cols, path: dir) end)
IO.puts("reopened without the snapshot (whole catalog replayed): #{Float.round(us / 1.0e6, 3)} s")
^routed = ShapeRouter.route(r, probe)
:ok = ShapeRouter.close(r)
File.rm_rf!(dir)
