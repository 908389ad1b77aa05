defprotocol LsmIndex.Filter.Index.Protocol do
  @moduledoc """
  The contract of an equality index inside `LsmIndex.Filter`: `value => shapes`, one index per
  (table, column), as the sync service's `Index.Protocol`.

  `value` is a canonical value of the column's type (`LsmIndex.Filter.ColumnType`), never `nil`.
  Each entry carries the shape's residual WHERE (`and_where`, `nil` when none), checked on the
  candidates a lookup returns. A `(value, shape_id, and_where)` entry is added at most once and
  removed with the same arguments; the filter guarantees it. Functions return the new index;
  an implementation may share mutable state (a NIF resource) between versions, so callers keep
  only the latest one.
  """

  @doc "Whether no shape is indexed."
  @spec empty?(t) :: boolean()
  def empty?(index)

  @doc "Routes `value` to `shape_id` when `and_where` also holds."
  @spec add_shape(t, term(), term(), LsmIndex.Filter.Expr.t()) :: t
  def add_shape(index, value, shape_id, and_where)

  @doc "Undoes one `add_shape/4` with the same arguments."
  @spec remove_shape(t, term(), term(), LsmIndex.Filter.Expr.t()) :: t
  def remove_shape(index, value, shape_id, and_where)

  @doc "`add_shape/4` for every value of `values` (distinct), in one step."
  @spec add_shape_many(t, [term()], term(), LsmIndex.Filter.Expr.t()) :: t
  def add_shape_many(index, values, shape_id, and_where)

  @doc "`remove_shape/4` for every value of `values`, in one step."
  @spec remove_shape_many(t, [term()], term(), LsmIndex.Filter.Expr.t()) :: t
  def remove_shape_many(index, values, shape_id, and_where)

  @doc """
  The shapes whose value equals `record[field]` and whose residual is true on `record`.
  `record` is parsed (`LsmIndex.Filter.Expr.row/0`); `shapes` is the filter's shape table,
  passed as the service's protocol does (the residual lives in the entry, so neither
  implementation here needs it).
  """
  @spec affected_shapes(t, String.t(), LsmIndex.Filter.Expr.row(), map()) :: MapSet.t()
  def affected_shapes(index, field, record, shapes)

  @doc "Every shape id in the index."
  @spec all_shape_ids(t) :: MapSet.t()
  def all_shape_ids(index)
end
