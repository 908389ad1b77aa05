defmodule LsmIndex.Filter.LsmEqualityIndex do
  @moduledoc """
  The equality index of `LsmIndex.Filter.Index.Protocol` on an `LsmIndex` NIF resource: every
  value lives in Rust; the BEAM side holds only per-shape state.

  Each distinct `{shape_id, and_where}` is interned to a `u32` handle with a count of the values
  routed to it; the handle is recycled when that count drops to zero (by then every key of it
  has been removed). So the struct's size grows with the number of shapes, never with the number
  of values: one shape with a million `IN` values costs one handle here.

  The struct wraps a mutable resource: functions return the updated struct, and older copies
  see the resource's current keys with their own (stale) handle table; keep the latest.
  """

  alias LsmIndex.Filter.Where

  @enforce_keys [:index]
  defstruct [:index, handles: %{}, entries: %{}, free: [], next: 0, shape_refs: %{}]

  @typedoc "An LSM-backed equality index."
  @type t :: %__MODULE__{
          index: LsmIndex.t(),
          handles: %{{term(), Where.t()} => {LsmIndex.handle(), pos_integer()}},
          entries: %{LsmIndex.handle() => {term(), Where.t()}},
          free: [LsmIndex.handle()],
          next: non_neg_integer(),
          shape_refs: %{term() => pos_integer()}
        }

  @doc "An empty index; `opts` go to `LsmIndex.new/1`."
  @spec new(keyword()) :: t
  def new(opts \\ []) do
    case LsmIndex.new(opts) do
      {:ok, index} -> %__MODULE__{index: index}
      {:error, {reason, message}} -> raise LsmIndex.Error, reason: reason, message: message
    end
  end

  @doc "An index holding `entries` (`{value, shape_id, and_where}`), built with batched writes."
  @spec from_entries(Enumerable.t(), keyword()) :: t
  def from_entries(entries, opts \\ []) do
    entries
    |> Enum.group_by(fn {_v, shape_id, and_where} -> {shape_id, and_where} end, &elem(&1, 0))
    |> Enum.reduce(new(opts), fn {{shape_id, and_where}, values}, acc ->
      LsmIndex.Filter.Index.Protocol.add_shape_many(acc, values, shape_id, and_where)
    end)
  end

  @doc "Number of distinct values (counted in Rust)."
  @spec key_count(t) :: non_neg_integer()
  def key_count(%__MODULE__{index: index}), do: LsmIndex.size(index)

  @doc false
  # Interns {shape_id, and_where}, counting `n` more values routed to it.
  def acquire(%__MODULE__{} = idx, shape_id, and_where, n) do
    key = {shape_id, and_where}

    case idx.handles do
      %{^key => {handle, refs}} ->
        {handle, %{idx | handles: Map.put(idx.handles, key, {handle, refs + n})}}

      _ ->
        {handle, idx} = new_handle(idx)

        idx = %{
          idx
          | handles: Map.put(idx.handles, key, {handle, n}),
            entries: Map.put(idx.entries, handle, key),
            shape_refs: Map.update(idx.shape_refs, shape_id, 1, &(&1 + 1))
        }

        {handle, idx}
    end
  end

  @doc false
  # Counts `n` values fewer for {shape_id, and_where}; frees its handle at zero.
  def release(%__MODULE__{} = idx, shape_id, and_where, n) do
    key = {shape_id, and_where}

    case idx.handles do
      %{^key => {handle, refs}} when refs > n ->
        {handle, %{idx | handles: Map.put(idx.handles, key, {handle, refs - n})}}

      %{^key => {handle, _refs}} ->
        shape_refs =
          case idx.shape_refs do
            %{^shape_id => 1} -> Map.delete(idx.shape_refs, shape_id)
            %{^shape_id => k} -> Map.put(idx.shape_refs, shape_id, k - 1)
          end

        idx = %{
          idx
          | handles: Map.delete(idx.handles, key),
            entries: Map.delete(idx.entries, handle),
            free: [handle | idx.free],
            shape_refs: shape_refs
        }

        {handle, idx}

      _ ->
        {nil, idx}
    end
  end

  @doc """
  Removes every value of `{shape_id, and_where}` at once by dropping its handle in Rust
  (`LsmIndex.drop_handle/2`), so the caller needs no list of the values.
  """
  @spec drop_shape(t, term(), Where.t()) :: t
  def drop_shape(%__MODULE__{} = idx, shape_id, and_where) do
    case idx.handles do
      %{{^shape_id, ^and_where} => {handle, refs}} ->
        {^handle, idx} = release(idx, shape_id, and_where, refs)
        ok!(LsmIndex.drop_handle(idx.index, handle))
        idx

      _ ->
        idx
    end
  end

  defp new_handle(%{free: [h | rest]} = idx), do: {h, %{idx | free: rest}}

  defp new_handle(%{next: next} = idx) when next <= 4_294_967_295,
    do: {next, %{idx | next: next + 1}}

  defp new_handle(_idx),
    do: raise(LsmIndex.Error, reason: :too_large, message: "more than 2^32 live handles")

  @doc false
  def ok!(:ok), do: :ok

  def ok!({:error, {reason, message}}),
    do: raise(LsmIndex.Error, reason: reason, message: message)

  defimpl LsmIndex.Filter.Index.Protocol do
    alias LsmIndex.Filter.{LsmEqualityIndex, Where}

    def empty?(idx), do: idx.shape_refs == %{}

    def add_shape(idx, value, shape_id, and_where) do
      {handle, idx} = LsmEqualityIndex.acquire(idx, shape_id, and_where, 1)
      LsmEqualityIndex.ok!(LsmIndex.add(idx.index, value, handle))
      idx
    end

    def remove_shape(idx, value, shape_id, and_where) do
      case LsmEqualityIndex.release(idx, shape_id, and_where, 1) do
        {nil, idx} ->
          idx

        {handle, idx} ->
          LsmEqualityIndex.ok!(LsmIndex.remove(idx.index, value, handle))
          idx
      end
    end

    def add_shape_many(idx, [], _shape_id, _and_where), do: idx

    def add_shape_many(idx, values, shape_id, and_where) do
      {handle, idx} = LsmEqualityIndex.acquire(idx, shape_id, and_where, length(values))
      LsmEqualityIndex.ok!(LsmIndex.add_many(idx.index, Enum.map(values, &{&1, handle})))
      idx
    end

    def remove_shape_many(idx, [], _shape_id, _and_where), do: idx

    def remove_shape_many(idx, values, shape_id, and_where) do
      case LsmEqualityIndex.release(idx, shape_id, and_where, length(values)) do
        {nil, idx} ->
          idx

        {handle, idx} ->
          pairs = Enum.map(values, &{&1, handle})
          LsmEqualityIndex.ok!(LsmIndex.remove_many(idx.index, pairs))
          idx
      end
    end

    def affected_shapes(idx, field, record, _shapes) do
      case Map.get(record, field) do
        nil ->
          MapSet.new()

        value ->
          for handle <- LsmIndex.lookup(idx.index, value),
              {shape_id, and_where} <- [Map.get(idx.entries, handle)],
              Where.matches?(and_where, record),
              into: MapSet.new(),
              do: shape_id
      end
    end

    def all_shape_ids(idx), do: idx.shape_refs |> Map.keys() |> MapSet.new()
  end
end
