defmodule LsmIndex.Filter.EqualityIndex do
  @moduledoc """
  The reference equality index: an Elixir map `key => %{shape_id => and_where}`, as the sync
  service keeps it (its keys are the filter's value keys). Every key lives on the BEAM heap
  (tens of bytes each); the `LsmIndex.Filter.LsmEqualityIndex` keeps them in Rust instead.
  """

  defstruct values: %{}

  @typedoc "A map-backed equality index."
  @type t :: %__MODULE__{values: %{term() => %{term() => term()}}}

  @doc "An empty index."
  @spec new() :: t
  def new, do: %__MODULE__{}

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

    def all_shape_ids(%{values: values}) do
      for {_value, shapes} <- values, {shape_id, _} <- shapes, into: MapSet.new(), do: shape_id
    end
  end
end
