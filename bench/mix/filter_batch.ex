defmodule LsmIndex.Bench.FilterBatch do
  @moduledoc false
  # `LsmIndex.Filter`'s batched calls (issue 22) for the bench and the demo, with a fallback
  # while the filter lacks them: `affected_shapes_many/2` maps `affected_shapes/2`,
  # `add_shapes/2` reduces `add_shape/3` (the same answers; one call per change or shape).
  # Delete this module and call `LsmIndex.Filter` directly once both are in lib/. It is
  # compiled (bench/mix is in elixirc_paths for dev and test), not a bench script, so that
  # demo/ can call it too.

  alias LsmIndex.Filter

  # called through apply/3 with a variable name: no warning while the filter lacks them
  @many :affected_shapes_many
  @add_many :add_shapes

  @doc "Whether `LsmIndex.Filter` has `affected_shapes_many/2` and `add_shapes/2` (no fallback)."
  @spec native?() :: %{affected_shapes_many: boolean(), add_shapes: boolean()}
  def native? do
    Code.ensure_loaded!(Filter)

    %{
      affected_shapes_many: function_exported?(Filter, @many, 2),
      add_shapes: function_exported?(Filter, @add_many, 2)
    }
  end

  @doc "`Filter.affected_shapes_many/2`, else `affected_shapes/2` of each change."
  @spec affected_shapes_many(Filter.t(), [Filter.change()]) :: [MapSet.t()]
  def affected_shapes_many(filter, changes) do
    if exported?(@many),
      do: apply(Filter, @many, [filter, changes]),
      else: Enum.map(changes, &Filter.affected_shapes(filter, &1))
  end

  @doc "`Filter.add_shapes/2`, else `add_shape/3` of each `{id, shape}`."
  @spec add_shapes(Filter.t(), [{term(), Filter.shape()}]) :: Filter.t()
  def add_shapes(filter, shapes) do
    if exported?(@add_many),
      do: apply(Filter, @add_many, [filter, shapes]),
      else: Enum.reduce(shapes, filter, fn {id, shape}, f -> Filter.add_shape(f, id, shape) end)
  end

  # `function_exported?/3` is false for a module not loaded yet (the first call)
  defp exported?(fun) do
    function_exported?(Filter, fun, 2) or
      (Code.ensure_loaded?(Filter) and function_exported?(Filter, fun, 2))
  end
end
