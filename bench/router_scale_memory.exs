# One reading of the templates-at-scale rows of `mix bench --only router`
# (bench/router_scale.exs runs each in a VM of its own: memory an earlier build freed and a VM
# kept would be reused by the next one and hide its growth). Prints `RESULT <base64 of a
# term>`: the VM's RSS growth over registering N template shapes (bench/workloads.exs), once
# settled, and how long registering took.
#
#   mix run bench/router_scale_memory.exs router N SETTLE
#     a ShapeRouter, `add_shape/4` one call each; plus the byte counters `metrics/1`
#     reports (its keys ending in `_bytes`, none yet)
#   mix run bench/router_scale_memory.exs router_batch N SETTLE
#     a ShapeRouter, every shape in one `add_shapes/2` call, `[{id, where_sql, params}]`
#     (when the router has it: else `%{skipped: reason}`)
#   mix run bench/router_scale_memory.exs map N SETTLE
#     `LsmIndex.Filter` with `index: :map`, `add_shape/3` one call each
#
# SETTLE: `once` (`Report.settled_memory/0`: 1 s idle, every process collected) or `stable`
# (`Report.stable_memory/0`: until RSS holds still). The shapes are made before the baseline
# and held until after the last reading, so they are in both.
Code.require_file("bench/report.exs")
Code.require_file("bench/workloads.exs")

defmodule LsmIndex.Bench.RouterScaleMemory do
  @moduledoc false
  import LsmIndex.Bench.Report, only: [stable_memory: 0, settled_memory: 0]
  alias LsmIndex.Bench.Workloads
  alias LsmIndex.{Filter, ShapeRouter}

  def run([kind, n, settle]) do
    n = String.to_integer(n)
    settle = if settle == "stable", do: &stable_memory/0, else: &settled_memory/0
    shapes = Workloads.template_shapes(n)
    warm()
    result = measure(kind, n, shapes, settle)
    # held until here: the shapes' list is in the baseline and in every reading
    ^n = length(shapes)
    result
  end

  # code loaded, the NIF and its pools started, before the baseline
  defp warm do
    {:ok, r} = ShapeRouter.new("warm", Workloads.table(), Workloads.columns())
    [{id, sql, params}] = Workloads.template_shapes(1)
    :ok = ShapeRouter.add_shape(r, id, sql, params: params)
    _ = ShapeRouter.metrics(r)
    :ok = ShapeRouter.close(r)
    {id, shape} = Workloads.filter_shape({id, sql, params})
    f = Filter.add_shape(Filter.new(index: :map), id, shape)
    Filter.affected_shapes(f, hd(Workloads.inserts(1, 1, :known)))
  end

  defp measure("router", n, shapes, settle) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())
    before = settle.()

    {us, :ok} =
      :timer.tc(fn ->
        Enum.each(shapes, fn {id, sql, params} ->
          :ok = ShapeRouter.add_shape(r, id, sql, params: params)
        end)
      end)

    :ok = ShapeRouter.wait_idle(r)
    now = settle.()
    m = ShapeRouter.metrics(r)

    counted =
      for {k, v} <- m, String.ends_with?(Atom.to_string(k), "_bytes"), into: %{}, do: {k, v}

    check(n, m.shapes_indexed + m.shapes_scanned)
    %{rss: now.rss - before.rss, add_us: us, counted: counted, metrics: m}
  end

  defp measure("router_batch", n, shapes, settle) do
    {:ok, r} = ShapeRouter.new("bench", Workloads.table(), Workloads.columns())

    if function_exported?(ShapeRouter, :add_shapes, 2) do
      before = settle.()
      # the router has no add_shapes/2 as this is written: this is the form its shapes come in
      {us, reply} = :timer.tc(fn -> apply(ShapeRouter, :add_shapes, [r, shapes]) end)
      :ok = ShapeRouter.wait_idle(r)
      now = settle.()
      m = ShapeRouter.metrics(r)

      case {reply, m.shapes_indexed + m.shapes_scanned} do
        {ok, ^n} when ok in [:ok, {:ok, n}] -> %{rss: now.rss - before.rss, add_us: us}
        {reply, held} -> %{skipped: "add_shapes/2 gave #{inspect(reply)}, #{held} shapes held"}
      end
    else
      %{skipped: "ShapeRouter has no add_shapes/2"}
    end
  rescue
    e -> %{skipped: "add_shapes/2 raised #{Exception.message(e)}"}
  end

  defp measure("map", n, shapes, settle) do
    shapes = Enum.map(shapes, &Workloads.filter_shape/1)
    before = settle.()

    {us, f} =
      :timer.tc(fn ->
        Enum.reduce(shapes, Filter.new(index: :map), fn {id, shape}, f ->
          Filter.add_shape(f, id, shape)
        end)
      end)

    :ok = Filter.wait_idle(f)
    now = settle.()
    check(n, MapSet.size(Filter.all_shape_ids(f)))
    %{rss: now.rss - before.rss, add_us: us}
  end

  defp check(n, n), do: :ok
  defp check(n, held), do: raise("registered #{n} shapes, the structure holds #{held}")
end

Code.ensure_loaded!(LsmIndex.ShapeRouter)
result = LsmIndex.Bench.RouterScaleMemory.run(System.argv())
IO.puts("RESULT " <> Base.encode64(:erlang.term_to_binary(result)))
