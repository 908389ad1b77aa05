defprotocol LsmIndex.Filter.Index.Protocol do
  @moduledoc """
  The contract of an equality index inside `LsmIndex.Filter`: `key => shapes`, one index per
  (table, column), after the sync service's `Index.Protocol`.

  A `key` is the value key of a column value (a binary from the core's key encoder,
  `LsmIndex.Filter.Predicate`), never `nil`. Each entry carries the shape's residual
  (`and_where`: a compiled residual, `nil` when none), an opaque term the index only stores
  and returns. Unlike the service's `affected_shapes/4`, a lookup returns the candidates with
  their residuals rather than evaluating them: the filter evaluates every candidate of a
  record, from all its indexes and scans, in one call to the Rust engine. A
  `(key, shape_id, and_where)` entry is added at most once and removed with the same
  arguments; the filter guarantees it. Functions return the new index; an implementation may
  share mutable state (a NIF resource) between versions, so callers keep only the latest one.
  """

  @doc "Whether no shape is indexed."
  @spec empty?(t) :: boolean()
  def empty?(index)

  @doc "Routes `key` to `shape_id` when `and_where` also holds."
  @spec add_shape(t, term(), term(), term()) :: t
  def add_shape(index, key, shape_id, and_where)

  @doc "Undoes one `add_shape/4` with the same arguments."
  @spec remove_shape(t, term(), term(), term()) :: t
  def remove_shape(index, key, shape_id, and_where)

  @doc "`add_shape/4` for every key of `keys` (distinct), in one step."
  @spec add_shape_many(t, [term()], term(), term()) :: t
  def add_shape_many(index, keys, shape_id, and_where)

  @doc "`remove_shape/4` for every key of `keys`, in one step."
  @spec remove_shape_many(t, [term()], term(), term()) :: t
  def remove_shape_many(index, keys, shape_id, and_where)

  @doc """
  The shapes routed from `key`, each with its residual: `{shape_id, and_where}` pairs (a map
  `shape_id => and_where` is such an enumerable), to be checked by the caller.
  """
  @spec candidates(t, term()) :: Enumerable.t()
  def candidates(index, key)

  @doc "Every shape id in the index."
  @spec all_shape_ids(t) :: MapSet.t()
  def all_shape_ids(index)
end
