# Reopen time of a persistent ShapeRouter with 1M shapes (DESIGN.md, "Persistent routers"):
#   mix run bench/router_reopen.exs [SHAPES]
alias LsmIndex.ShapeRouter

n = System.argv() |> List.first("1000000") |> String.to_integer()
cols = [{"id", :int8}, {"user_id", :int8}, {"status", :text}]
dir = Path.join(System.tmp_dir!(), "router_reopen_#{System.unique_integer([:positive])}")
{:ok, r} = ShapeRouter.new("bench", "todos", cols, path: dir)

{us, _} =
  :timer.tc(fn ->
    for i <- 0..(n - 1) do
      residual = if rem(i, 3) == 0, do: " AND status IN ('open', 'late')", else: ""
      :ok = ShapeRouter.add_shape(r, i, "user_id = #{i}#{residual}")
    end
  end)

size = File.stat!(Path.join(dir, "shapes.log")).size
IO.puts("added #{n} shapes one at a time: #{Float.round(us / 1.0e6, 2)} s; catalog #{size} bytes")
:ok = ShapeRouter.close(r)
{us, {:ok, r}} = :timer.tc(fn -> ShapeRouter.new("bench", "todos", cols, path: dir) end)
IO.puts("reopened: #{Float.round(us / 1.0e6, 2)} s")
[5] = ShapeRouter.route(r, {:insert, %{"user_id" => "5", "status" => "open"}})
:ok = ShapeRouter.close(r)
File.rm_rf!(dir)
