defmodule LsmIndex.Filter.LsmEqualityIndex do
  @moduledoc """
  The equality index of `LsmIndex.Filter.Index.Protocol` on an `LsmIndex` NIF resource: every
  value lives in Rust; the BEAM side holds only what the filter reads back (residuals and
  the names of interned shape ids), nothing for the common shape.

  Keys are the filter's value keys (binaries; any term works: `LsmIndex` keys). A shape is a
  `u32` handle in Rust. A shape id that is an integer in `0..2^31-1` is its own handle; any
  other shape id is interned to a handle from `2^31` up, recycled once the shape is gone. The
  index is made with `count_handles: true`, so Rust counts the keys routed to each handle
  (`LsmIndex.handle_count/2`): `empty?/1`, `all_shape_ids/1`, and whether a shape is present
  or just lost its last key are asked of it. The struct keeps a shape's residual when it has
  one (returned with it by `candidates/2`) and the interning of a non-integer id, both
  forgotten with the shape's last key; an integer shape without a residual costs nothing on
  the BEAM (`bench/filter_memory.exs`: 1M such shapes, 0 bytes here, ~1 byte of counts in
  Rust each; the per-shape key count map this struct kept before cost ~30 bytes a shape).
  Nothing is kept per key either, so one shape with 100,000 `IN` values costs at most one
  entry here.

  A shape id has one residual in this index (the filter gives each shape one plan); adding it
  with another raises `ArgumentError`.

  ## Options (`new/1`)

  `:type`, `:key` and `:eval`: how `affected_shapes/4` reads its column of a record and
  checks the residuals, as `LsmIndex.Filter.Index.Affected` describes (`new(type: t)` is the
  host's `Index.new("=", t)`); the filter's own path needs none of them. Every other option
  goes to `LsmIndex.new/1` (with `count_handles: true`).

  ## Single-use values

  The struct wraps a mutable resource: each write (`add_shape`, `remove_shape`,
  `drop_shape/3`) returns the updated struct and supersedes the one it was given. A
  superseded copy would answer from the resource's current keys and its own old shape table,
  so it is refused: every call on it raises `ArgumentError` (`:lsm` filters are single-use
  values; keep only the latest). The check is one atomic read: the resource's generation
  (an `:atomics` counter made with it and shared by every copy, bumped by each write) against
  the generation the struct was made at.
  """

  @identity_limit 2_147_483_648
  @max_handle 4_294_967_295

  alias LsmIndex.Filter.Index.Affected

  @enforce_keys [:index, :generations]
  defstruct [
    :index,
    :generations,
    affected: nil,
    generation: 0,
    residuals: %{},
    interned: %{},
    names: %{},
    free: [],
    next: @identity_limit
  ]

  @typedoc "An LSM-backed equality index."
  @type t :: %__MODULE__{
          index: LsmIndex.t(),
          generations: :atomics.atomics_ref(),
          affected: Affected.t() | nil,
          generation: non_neg_integer(),
          residuals: %{term() => term()},
          interned: %{term() => LsmIndex.handle()},
          names: %{LsmIndex.handle() => term()},
          free: [LsmIndex.handle()],
          next: LsmIndex.handle()
        }

  @doc """
  An empty index: `:type`, `:key` and `:eval` of `opts` as the moduledoc says, the others
  for `LsmIndex.new/1` (with `count_handles: true`).
  """
  @spec new(keyword()) :: t
  def new(opts \\ []) do
    {own, opts} = Keyword.split(opts, Affected.option_names())
    affected = Affected.new!(own)

    case LsmIndex.new(Keyword.put(opts, :count_handles, true)) do
      {:ok, index} ->
        %__MODULE__{
          index: index,
          generations: :atomics.new(1, signed: false),
          affected: affected
        }

      {:error, {reason, message}} ->
        raise LsmIndex.Error, reason: reason, message: message
    end
  end

  @doc "An index holding `entries` (`{key, shape_id, and_where}`), built with batched writes."
  @spec from_entries(Enumerable.t(), keyword()) :: t
  def from_entries(entries, opts \\ []) do
    entries
    |> Enum.group_by(fn {_v, shape_id, and_where} -> {shape_id, and_where} end, &elem(&1, 0))
    |> Enum.reduce(new(opts), fn {{shape_id, and_where}, values}, acc ->
      LsmIndex.Filter.Index.Protocol.add_shape_many(acc, values, shape_id, and_where)
    end)
  end

  @doc "Number of distinct keys (counted in Rust)."
  @spec key_count(t) :: non_neg_integer()
  def key_count(%__MODULE__{} = idx), do: LsmIndex.size(current!(idx).index)

  @doc false
  # `idx` itself when it is the latest copy (one atomic read); raises for a superseded one.
  def current!(%__MODULE__{generations: gens, generation: gen} = idx) do
    if :atomics.get(gens, 1) == gen, do: idx, else: stale!()
  end

  @doc false
  # Claims the next generation for a write from `idx` (the latest copy, else it raises):
  # every other copy is superseded from here on, even if the write then fails.
  def advance!(%__MODULE__{generations: gens, generation: gen} = idx) do
    case :atomics.compare_exchange(gens, 1, gen, gen + 1) do
      :ok -> %{idx | generation: gen + 1}
      _ -> stale!()
    end
  end

  defp stale!,
    do:
      raise(
        ArgumentError,
        "this #{inspect(__MODULE__)} was superseded by a later add_shape/remove_shape: " <>
          ":lsm filters are single-use values (keep only the latest: each write returns " <>
          "the one to use next)"
      )

  @doc """
  Removes every value of shape `shape_id` at once by dropping its handle in Rust
  (`LsmIndex.drop_handle/2`), so the caller needs no list of the values. An unknown shape
  leaves the index as it is.
  """
  @spec drop_shape(t, term(), term()) :: t
  def drop_shape(%__MODULE__{} = idx, shape_id, _and_where) do
    if present?(current!(idx), shape_id) do
      idx = advance!(idx)
      ok!(LsmIndex.drop_handle(idx.index, handle_of(idx, shape_id)))
      forget(idx, shape_id)
    else
      idx
    end
  end

  @doc """
  `candidates/2` of the protocol for many keys in one NIF call (a transaction's rows): one
  list of `{shape_id, and_where}` per key, in order; a `nil` key has none.
  """
  @spec candidates_many(t, [term()]) :: [[{term(), term()}]]
  def candidates_many(%__MODULE__{} = idx, keys) do
    current!(idx)

    # a nil key is looked up as a key no index holds
    idx.index
    |> LsmIndex.lookup_many(keys)
    |> Enum.map(&candidates_of(idx, &1))
  end

  @doc false
  # The shapes of `handles` with their residuals (a handle being recycled has no shape).
  def candidates_of(idx, handles) do
    for handle <- handles,
        shape_id = shape_of(idx, handle),
        shape_id != nil,
        do: {shape_id, Map.get(idx.residuals, shape_id)}
  end

  @doc false
  # The handle of `shape_id` about to be routed from more keys with `and_where`: its residual
  # recorded and its id interned if new.
  def acquire(%__MODULE__{} = idx, shape_id, and_where) do
    case idx.residuals do
      %{^shape_id => ^and_where} -> :ok
      %{^shape_id => _} -> another_residual!(shape_id)
      # known without a residual, or not known: Rust says which
      _ when and_where != nil -> if present?(idx, shape_id), do: another_residual!(shape_id)
      _ -> :ok
    end

    idx = if and_where == nil, do: idx, else: put_in(idx.residuals[shape_id], and_where)

    idx =
      if identity?(shape_id) or Map.has_key?(idx.interned, shape_id),
        do: idx,
        else: intern(idx, shape_id)

    {handle_of(idx, shape_id), idx}
  end

  defp another_residual!(shape_id),
    do:
      raise(ArgumentError, "shape #{inspect(shape_id)} is already indexed with another residual")

  @doc false
  # Whether some key is routed to `shape_id`. A shape with a residual or an interned id is
  # known here (both are forgotten with its last key); an identity one is asked of Rust.
  def present?(idx, shape_id) do
    cond do
      Map.has_key?(idx.residuals, shape_id) -> true
      identity?(shape_id) -> LsmIndex.handle_count(idx.index, shape_id) > 0
      true -> Map.has_key?(idx.interned, shape_id)
    end
  end

  @doc false
  # `idx` after some of `shape_id`'s keys were removed: its residual and interning forgotten
  # if that was the last (Rust counts the keys of each handle).
  def release(%__MODULE__{} = idx, shape_id) do
    cond do
      not Map.has_key?(idx.residuals, shape_id) and not Map.has_key?(idx.interned, shape_id) ->
        idx

      LsmIndex.handle_count(idx.index, handle_of(idx, shape_id)) > 0 ->
        idx

      true ->
        forget(idx, shape_id)
    end
  end

  # `idx` without the residual and interning of `shape_id`, which no key is routed to any
  # more: its handle (if interned) goes back to the free list.
  defp forget(idx, shape_id) do
    idx = %{idx | residuals: Map.delete(idx.residuals, shape_id)}

    case Map.pop(idx.interned, shape_id) do
      {nil, _} ->
        idx

      {handle, interned} ->
        names = Map.delete(idx.names, handle)
        %{idx | interned: interned, names: names, free: [handle | idx.free]}
    end
  end

  @doc false
  def handle_of(_idx, shape_id)
      when is_integer(shape_id) and shape_id >= 0 and shape_id < @identity_limit,
      do: shape_id

  def handle_of(idx, shape_id), do: Map.fetch!(idx.interned, shape_id)

  @doc false
  def shape_of(_idx, handle) when handle < @identity_limit, do: handle
  def shape_of(idx, handle), do: Map.get(idx.names, handle)

  defp identity?(shape_id),
    do: is_integer(shape_id) and shape_id >= 0 and shape_id < @identity_limit

  defp intern(idx, shape_id) do
    {handle, idx} =
      case idx do
        %{free: [h | rest]} -> {h, %{idx | free: rest}}
        %{next: next} when next <= @max_handle -> {next, %{idx | next: next + 1}}
        _ -> raise LsmIndex.Error, reason: :too_large, message: "more than 2^31 interned shapes"
      end

    %{
      idx
      | interned: Map.put(idx.interned, shape_id, handle),
        names: Map.put(idx.names, handle, shape_id)
    }
  end

  @doc false
  def ok!(:ok), do: :ok

  def ok!({:error, {reason, message}}),
    do: raise(LsmIndex.Error, reason: reason, message: message)

  defimpl LsmIndex.Filter.Index.Protocol do
    alias LsmIndex.Filter.LsmEqualityIndex

    def empty?(idx), do: LsmIndex.distinct_handles(LsmEqualityIndex.current!(idx).index) == 0

    def add_shape(idx, value, shape_id, and_where),
      do: add_shape_many(idx, [value], shape_id, and_where)

    def remove_shape(idx, value, shape_id, and_where),
      do: remove_shape_many(idx, [value], shape_id, and_where)

    def add_shape_many(idx, [], _shape_id, _and_where), do: LsmEqualityIndex.current!(idx)

    def add_shape_many(idx, values, shape_id, and_where) do
      idx = LsmEqualityIndex.advance!(idx)
      {handle, idx} = LsmEqualityIndex.acquire(idx, shape_id, and_where)

      LsmEqualityIndex.ok!(
        write(idx.index, values, handle, &LsmIndex.add/3, &LsmIndex.add_many/2)
      )

      idx
    end

    def remove_shape_many(idx, [], _shape_id, _and_where), do: LsmEqualityIndex.current!(idx)

    def remove_shape_many(idx, values, shape_id, _and_where) do
      if LsmEqualityIndex.present?(LsmEqualityIndex.current!(idx), shape_id) do
        idx = LsmEqualityIndex.advance!(idx)
        handle = LsmEqualityIndex.handle_of(idx, shape_id)

        LsmEqualityIndex.ok!(
          write(idx.index, values, handle, &LsmIndex.remove/3, &LsmIndex.remove_many/2)
        )

        LsmEqualityIndex.release(idx, shape_id)
      else
        idx
      end
    end

    defp write(index, [value], handle, one, _many), do: one.(index, value, handle)

    defp write(index, values, handle, _one, many),
      do: many.(index, Enum.map(values, &{&1, handle}))

    def candidates(idx, key),
      do:
        LsmEqualityIndex.candidates_of(
          LsmEqualityIndex.current!(idx),
          LsmIndex.lookup(idx.index, key)
        )

    def affected_shapes(idx, field, record, shapes) do
      idx = LsmEqualityIndex.current!(idx)

      LsmIndex.Filter.Index.Affected.affected(
        idx.affected,
        field,
        record,
        shapes,
        &LsmEqualityIndex.candidates_of(idx, LsmIndex.lookup(idx.index, &1)),
        fn -> all_shape_ids(idx) end
      )
    end

    # every handle some key holds, by name (Rust keeps the handles' key counts)
    def all_shape_ids(idx) do
      idx = LsmEqualityIndex.current!(idx)

      for h <- LsmIndex.handles(idx.index),
          into: MapSet.new(),
          do: LsmEqualityIndex.shape_of(idx, h)
    end
  end
end
