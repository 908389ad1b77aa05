defmodule LsmIndex.Filter.EqualityIndex do
  @moduledoc """
  The reference equality index: an Elixir map `key => %{shape_id => and_where}`, as the sync
  service keeps it (its keys are the filter's value keys). Every key lives on the BEAM heap
  (tens of bytes each); the `LsmIndex.Filter.LsmEqualityIndex` keeps them in Rust instead.
  `LsmIndex.Filter` with `index: :map` keeps one per indexed column of each table.

  ## Options (`new/1`)

  `:type`, `:key` and `:eval`: how `affected_shapes/4` reads its column of a record and
  checks the residuals, as `LsmIndex.Filter.Index.Affected` describes (`new(type: t)` is the
  host's `Index.new("=", t)`). The filter's own path (`candidates/2`) needs none of them:
  `new()` is its index.
  """

  alias LsmIndex.Filter.Index.Affected

  defstruct values: %{}, affected: nil

  @typedoc "A map-backed equality index."
  @type t :: %__MODULE__{
          values: %{term() => %{term() => term()}},
          affected: Affected.t() | nil
        }

  @doc "An empty index; `opts`: `:type`, `:key`, `:eval` (see the moduledoc)."
  @spec new(keyword()) :: t
  def new(opts \\ []), do: %__MODULE__{affected: Affected.new!(opts)}

  @doc "Number of distinct keys."
  @spec key_count(t) :: non_neg_integer()
  def key_count(%__MODULE__{values: values}), do: map_size(values)

  @doc "Every `{key, shape_id, and_where}` entry (used to migrate to another index)."
  @spec entries(t) :: [{term(), term(), term()}]
  def entries(%__MODULE__{values: values}) do
    for {value, shapes} <- values,
        {shape_id, and_where} <- shapes,
        do: {value, shape_id, and_where}
  end

  defimpl LsmIndex.Filter.Index.Protocol do
    def empty?(%{values: values}), do: values == %{}

    def add_shape(%{values: values} = index, value, shape_id, and_where) do
      shapes = Map.get(values, value, %{})
      %{index | values: Map.put(values, value, Map.put(shapes, shape_id, and_where))}
    end

    def remove_shape(%{values: values} = index, value, shape_id, _and_where) do
      case values do
        %{^value => shapes} ->
          shapes = Map.delete(shapes, shape_id)

          values =
            if shapes == %{}, do: Map.delete(values, value), else: Map.put(values, value, shapes)

          %{index | values: values}

        _ ->
          index
      end
    end

    def add_shape_many(index, values, shape_id, and_where),
      do: Enum.reduce(values, index, &add_shape(&2, &1, shape_id, and_where))

    def remove_shape_many(index, values, shape_id, and_where),
      do: Enum.reduce(values, index, &remove_shape(&2, &1, shape_id, and_where))

    # the entry's own map: shape_id => and_where
    def candidates(%{values: values}, key), do: Map.get(values, key, %{})

    def affected_shapes(%{values: values, affected: conf} = index, field, record, shapes) do
      Affected.affected(conf, field, record, shapes, &Map.get(values, &1, %{}), fn ->
        all_shape_ids(index)
      end)
    end

    def all_shape_ids(%{values: values}) do
      for {_value, shapes} <- values, {shape_id, _} <- shapes, into: MapSet.new(), do: shape_id
    end
  end
end
